"""Stand-in for torchvision in the benchmark's reference environment (bench/setup_reference.sh).

d2l==1.0.3 imports torchvision at the top of d2l/torch.py, but there is no CPU torchvision
wheel for torch 2.13 here, and the RNN chapters never use it. This package satisfies the
import lines (``import torchvision``, ``from torchvision import transforms``) and fails
loudly if anything actually uses it, so it can never change a measured result.
"""

from . import datasets, io, transforms  # noqa: F401

__version__ = "0.0.0+bench-stub"


def __getattr__(name):
    raise AttributeError(f"torchvision.{name}: torchvision is a stand-in in the benchmark's "
                         "reference environment (bench/ref_stubs); the RNN code never uses it")
