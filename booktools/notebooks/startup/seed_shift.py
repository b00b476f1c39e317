"""Kernel startup file: shift every seed by D2L_SEED_SHIFT (the perturbation run's seed variants).

`tools/perturb.py` copies this file into the IPython startup folder of the kernels it starts
and sets D2L_SEED_SHIFT=k. Every seeding call of the chapters and of d2l_lib then uses
seed + k: `random.seed`, `np.random.seed`, `torch.manual_seed` (hence `d2l.set_seed`),
`torch.cuda.manual_seed_all` and `torch.Generator(...).manual_seed` (hence the data modules'
`seed=`). A claim that holds only for the seeds the page happens to use fails under a shift.
Unset or 0: nothing is changed. A nested call (torch.manual_seed seeding CUDA) shifts once.
"""

import functools
import os
import random
import threading

SHIFT = int(os.environ.get("D2L_SEED_SHIFT", "0") or 0)
_inside = threading.local()


def _shifted(seed):
    if getattr(_inside, "depth", 0) or isinstance(seed, bool) or not isinstance(seed, int):
        return seed
    return seed + SHIFT


def _wrap(seed_function, position=0):
    """`seed_function` with its seed argument (at `position`, or `seed=`) shifted."""

    @functools.wraps(seed_function)
    def seed_with_shift(*args, **kwargs):
        if len(args) > position:
            args = args[:position] + (_shifted(args[position]),) + args[position + 1:]
        elif "seed" in kwargs:
            kwargs["seed"] = _shifted(kwargs["seed"])
        _inside.depth = getattr(_inside, "depth", 0) + 1
        try:
            return seed_function(*args, **kwargs)
        finally:
            _inside.depth -= 1

    return seed_with_shift


def install():
    import numpy as np
    import torch

    random.seed = _wrap(random.seed)
    np.random.seed = _wrap(np.random.seed)
    torch.manual_seed = torch.random.manual_seed = _wrap(torch.random.manual_seed)
    torch.cuda.manual_seed_all = _wrap(torch.cuda.manual_seed_all)

    base = torch._C.Generator

    class _AnyGenerator(type(base)):
        def __instancecheck__(cls, obj):  # torch.default_generator is still a Generator
            return isinstance(obj, base)

    class Generator(base, metaclass=_AnyGenerator):
        manual_seed = _wrap(base.manual_seed, position=1)  # (self, seed)

    torch.Generator = Generator


if SHIFT:
    install()
