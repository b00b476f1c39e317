"""The code saved from the chapters of *Recurrent Neural Networks in PyTorch*.

The header down to the GENERATED line is hand-written: the imports that the saved code
shares. Everything below that line is generated from the chapters' ``#@save`` cells by
``make lib`` (tools/extract_lib.py). Edit the chapters, never the generated part.
"""

import collections
import hashlib
import inspect
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# ---- GENERATED BELOW: do not edit; change the chapters in book/ and run `make lib` ----

__all__ = []
