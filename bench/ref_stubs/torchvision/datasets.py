"""Stand-in for torchvision.datasets (see bench/ref_stubs/torchvision/__init__.py)."""


def __getattr__(name):
    raise AttributeError(f"torchvision.datasets.{name}: torchvision is a stand-in in the benchmark's "
                         "reference environment (bench/ref_stubs); the RNN code never uses it")
