"""d2l_lib: the library of the book *Recurrent Neural Networks in PyTorch*.

Every function and class here is written in a chapter of the book and saved from it
with a ``#@save`` mark; ``make lib`` regenerates ``d2l_lib/core.py`` from the chapters.
This file is hand-written: it only re-exports the generated names.

    import d2l_lib as d2l
    trainer = d2l.Trainer(max_epochs=10)
"""

__version__ = "0.1.0"

from .core import *  # noqa: E402,F401,F403  (the saved names, listed in core.__all__)
from .core import __all__  # noqa: E402,F401
