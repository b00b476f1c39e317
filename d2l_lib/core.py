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
import re
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# ---- GENERATED BELOW: do not edit; change the chapters in book/ and run `make lib` ----

__all__ = [
    "DATA_URL",
    "RNN",
    "RNNLM",
    "TIMEMACHINE_SHA1",
    "Classifier",
    "DataError",
    "DataModule",
    "GradNormTrainer",
    "HyperParameters",
    "Module",
    "ProgressBoard",
    "RNNLMScratch",
    "RNNScratch",
    "SeqDataLoader",
    "StatefulRNNLMScratch",
    "TimeMachine",
    "TimeMachinePartitioned",
    "Trainer",
    "Vocab",
    "add_to_class",
    "check_len",
    "check_shape",
    "cpu",
    "data_dir",
    "download",
    "download_timemachine",
    "get_params",
    "glue",
    "gpu",
    "grad_norm",
    "in_notebook",
    "init_rnn_state",
    "num_gpus",
    "perplexity",
    "read_timemachine",
    "rnn",
    "seq_data_iter_random",
    "seq_data_iter_sequential",
    "set_data_dir",
    "set_seed",
    "sha1_of",
    "state_gradients",
    "try_all_gpus",
    "try_gpu",
]

import io

from matplotlib.figure import Figure


# Defined in book/toolkit.md, section "A small training toolkit" (line 69)
def glue(name, value, display=False):
    """Publish `value` under `name` for the page's prose ({glue:text}`name`).

    Where MyST-NB is not installed (Colab, a bare Jupyter), there is no page to publish to,
    and this does nothing.
    """
    try:
        from myst_nb import glue as myst_nb_glue
    except ModuleNotFoundError:
        return
    myst_nb_glue(name, value, display=display)


# Defined in book/toolkit.md, section "Writing a class across several cells" (line 92)
def add_to_class(Class):
    """Register the decorated function as a method of `Class`."""
    def wrapper(method):
        setattr(Class, method.__name__, method)
    return wrapper


# Defined in book/toolkit.md, section "Remembering constructor arguments" (line 137)
class HyperParameters:
    """The base class of objects that keep their constructor's arguments as attributes."""

    def save_hyperparameters(self, ignore=()):
        """Store each argument of the calling method (except `self` and `ignore`) on `self`."""
        frame = inspect.currentframe().f_back
        try:
            info = inspect.getargvalues(frame)
        finally:
            del frame  # a frame kept in a local variable would keep all its locals alive
        names = list(info.args)
        if info.varargs:
            names.append(info.varargs)
        hparams = {name: info.locals[name] for name in names
                   if name != "self" and name not in ignore and not name.startswith("_")}
        hparams.update({k: v for k, v in info.locals.get(info.keywords, {}).items()
                        if k not in ignore})
        self.hparams = {**getattr(self, "hparams", {}), **hparams}
        for name, value in hparams.items():
            setattr(self, name, value)


# Defined in book/toolkit.md, section "Devices and random seeds" (line 184)
def cpu():
    """The CPU device."""
    return torch.device("cpu")


# Defined in book/toolkit.md, section "Devices and random seeds" (line 189)
def gpu(i=0):
    """The `i`-th GPU (CUDA) device."""
    return torch.device(f"cuda:{i}")


# Defined in book/toolkit.md, section "Devices and random seeds" (line 194)
def num_gpus():
    """The number of CUDA GPUs this process can use."""
    return torch.cuda.device_count()


# Defined in book/toolkit.md, section "Devices and random seeds" (line 199)
def try_gpu(i=0):
    """The `i`-th GPU if it exists, else the CPU."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


# Defined in book/toolkit.md, section "Devices and random seeds" (line 204)
def try_all_gpus():
    """All GPUs, or an empty list when there is none."""
    return [gpu(i) for i in range(num_gpus())]


# Defined in book/toolkit.md, section "Devices and random seeds" (line 222)
def set_seed(seed):
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


# Defined in book/toolkit.md, section "A progress board that stays cheap" (line 287)
def in_notebook():
    """True inside a Jupyter kernel (Jupyter, VS Code, Colab), where figures can be shown."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# Defined in book/toolkit.md, section "A progress board that stays cheap" (line 303)
class ProgressBoard(HyperParameters):
    """Training curves: a live plot in Jupyter, one printed line per epoch elsewhere."""

    redraw_every = 0.5  # seconds: the least time between two redraws
    draw_budget = 0.02  # redraw only while drawing took less than this share of the time
    line_styles = ("-", "--", "-.", ":")

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale="linear",
                 yscale="linear", figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()
        self.live = in_notebook()  # draw a figure (Jupyter) or print text (anywhere else)
        self.curves = {}  # label -> {"x": [...], "y": [...], "new": [y tensors not yet drawn]}
        self.pending = {}  # label -> raw (x, y) points waiting to be averaged
        self.fig = self.axes = self.handle = None
        self.lines = {}  # label -> the one Line2D object of that curve
        self.start = self.last_draw = None
        self.draw_seconds, self.redraws, self.stale = 0.0, 0, False

    # Defined in book/toolkit.md, section "A progress board that stays cheap" (line 328)
    def draw(self, x, y, label, every_n=1):
        """Add (x, y) to curve `label`; the curve gets the mean of every `every_n` points."""
        if not self.display:
            return
        pending = self.pending.setdefault(label, [])
        pending.append((x, y))
        if len(pending) < every_n:
            return
        xs, ys = zip(*pending)
        pending.clear()
        curve = self.curves.setdefault(label, {"x": [], "y": [], "new": []})
        curve["x"].append(float(sum(xs)) / len(xs))
        ys = [torch.as_tensor(v).detach().float().reshape(()) for v in ys]
        curve["new"].append(torch.stack(ys).mean())  # stays on its device: no waiting here
        self.stale = True
        now = time.perf_counter()
        if self.start is None:
            self.start = self.last_draw = now
        if (self.live and now - self.last_draw >= self.redraw_every
                and self.draw_seconds <= self.draw_budget * (now - self.start)):
            self.redraw()

    # Defined in book/toolkit.md, section "A progress board that stays cheap" (line 358)
    def redraw(self):
        """Bring the figure up to date and show it (in place of the previous image)."""
        tic = time.perf_counter()
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize)
            self.fig.subplots_adjust(left=0.19, bottom=0.19, right=0.96, top=0.95)
            self.axes = self.fig.add_subplot()
            self.axes.set_xscale(self.xscale)
            self.axes.set_yscale(self.yscale)
        ax, new_curve = self.axes, False
        for i, (label, curve) in enumerate(self.curves.items()):
            if curve["new"]:  # one copy to the CPU per curve
                curve["y"].extend(torch.stack(curve["new"]).cpu().tolist())
                curve["new"].clear()
            if label not in self.lines:
                style = self.line_styles[i % len(self.line_styles)]
                (self.lines[label],) = ax.plot([], [], style, color=f"C{i % 10}", label=label)
                new_curve = True
            self.lines[label].set_data(curve["x"], curve["y"])
        if new_curve:
            ax.legend(loc="best")
        ax.set_xlabel(self.xlabel or "")
        ax.set_ylabel(self.ylabel or "")
        ax.relim()
        ax.autoscale_view()
        if self.xlim:
            ax.set_xlim(self.xlim)
        if self.ylim:
            ax.set_ylim(self.ylim)
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=100)
        self.show(buffer.getvalue())
        self.stale = False
        self.redraws += 1
        self.last_draw = time.perf_counter()
        self.draw_seconds += self.last_draw - tic

    # Defined in book/toolkit.md, section "A progress board that stays cheap" (line 399)
    def show(self, png):
        """Show PNG bytes in the notebook, replacing the board's previous image."""
        from IPython.display import Image, display

        if self.handle is None:
            self.handle = display(Image(data=png, format="png"), display_id=True)
        else:
            self.handle.update(Image(data=png, format="png"))

    # Defined in book/toolkit.md, section "A progress board that stays cheap" (line 410)
    def flush(self):
        """Draw what the throttling held back; call once after the last point."""
        if self.display and self.live and self.stale:
            self.redraw()

    # Defined in book/toolkit.md, section "A progress board that stays cheap" (line 417)
    def log_epoch(self, epoch, num_epochs, values):
        """Outside Jupyter, print one line with this epoch's values (in Jupyter the plot shows them)."""
        if self.display and not self.live:
            numbers = "  ".join(f"{key} {value:.4g}" for key, value in values.items())
            print(f"epoch {epoch}/{num_epochs}  {numbers}", flush=True)


# Defined in book/toolkit.md, section "Models: `Module`" (line 466)
class Module(nn.Module, HyperParameters):
    """The base class of models: network, loss, training and validation steps, optimizer."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        assert hasattr(self, "net"), "define self.net or override forward"
        return self.net(X)

    def training_step(self, batch):
        """The loss on one training minibatch (inputs..., label); logged as 'loss'."""
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", loss, train=True)
        return loss

    def validation_step(self, batch):
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", loss, train=False)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    # Defined in book/toolkit.md, section "Models: `Module`" (line 505)
    def plot(self, key, value, train, weight=1, transform=None):
        """Log `value` as 'train_<key>' or 'val_<key>': into the trainer's history and the board.

        The epoch's entry in `history` is the `weight`-weighted mean of the logged values, passed
        through `transform` when one is given; the board shows `transform(value)` per minibatch.
        """
        if not hasattr(self, "trainer"):
            return
        trainer = self.trainer
        label = ("train_" if train else "val_") + key
        value = torch.as_tensor(value).detach().float()  # stays on its device: no host sync
        log = trainer.epoch_logs.setdefault(label, {"sum": 0.0, "weight": 0.0, "transform": transform})
        log["sum"] = log["sum"] + value * weight
        log["weight"] += float(weight)
        if transform is not None:
            value = transform(value)
        if train:
            x = trainer.train_batch_idx / trainer.num_train_batches
            n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = trainer.epoch + 1
            n = trainer.num_val_batches / self.plot_valid_per_epoch
        self.board.xlabel = "epoch"
        self.board.draw(x, value, label, every_n=max(1, int(n)))


# Defined in book/toolkit.md, section "Classifiers and the cross-entropy loss" (line 574)
class Classifier(Module):
    """A Module whose outputs are logits: (batch, classes) or (batch, steps, classes)."""

    def loss(self, Y_hat, Y, averaged=True):
        """Cross-entropy over all predictions; `averaged=False` gives one value per prediction."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        Y = Y.reshape((-1,))
        return F.cross_entropy(Y_hat, Y, reduction="mean" if averaged else "none")

    def accuracy(self, Y_hat, Y, averaged=True):
        """The share of predictions whose highest logit is the label."""
        correct = (Y_hat.reshape((-1, Y_hat.shape[-1])).argmax(dim=1) == Y.reshape(-1)).float()
        return correct.mean() if averaged else correct

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)


# Defined in book/toolkit.md, section "Data: `DataModule`" (line 626)
class DataModule(HyperParameters):
    """The base class of data: hands out training and validation minibatches."""

    def __init__(self, root=None, num_workers=0):
        self.save_hyperparameters()

    def get_dataloader(self, train):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors, train, indices=slice(0, None)):
        """A DataLoader over the examples `indices` of `tensors`, shuffled when training."""
        tensors = tuple(a[indices] for a in tensors)
        dataset = torch.utils.data.TensorDataset(*tensors)
        order = (torch.utils.data.RandomSampler(dataset) if train
                 else torch.utils.data.SequentialSampler(dataset))
        # index the tensors with a whole minibatch of indices at once (batch_size=None: the
        # sampler already yields batches), instead of example by example
        batches = torch.utils.data.BatchSampler(order, self.batch_size, drop_last=False)
        return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=batches,
                                           num_workers=self.num_workers)


# Defined in book/toolkit.md, section "The loop: `Trainer`" (line 710)
class Trainer(HyperParameters):
    """Fits a Module to a DataModule on one device; keeps per-epoch `history`."""

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        self.save_hyperparameters()
        self.gpus = [gpu(i) for i in range(min(num_gpus, torch.cuda.device_count()))]
        self.device = self.gpus[0] if self.gpus else cpu()
        self.history = {}

    def prepare_data(self, data):
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = (len(self.val_dataloader)
                                if self.val_dataloader is not None else 0)

    def prepare_model(self, model):
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        self.model = model.to(self.device)

    def prepare_batch(self, batch):
        """Move every tensor of the minibatch to the trainer's device."""
        return [a.to(self.device) for a in batch]

    # Defined in book/toolkit.md, section "The loop: `Trainer`" (line 746)
    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs."""
        self.prepare_data(data)
        self.prepare_model(model)
        self.optim = model.configure_optimizers()
        if self.gradient_clip_val > 0 and not hasattr(self, "clip_gradients"):
            raise NotImplementedError("gradient clipping needs Trainer.clip_gradients, which "
                                      "the chapter on recurrent networks from scratch adds")
        self.epoch = self.train_batch_idx = self.val_batch_idx = 0
        self.history = {}
        try:
            for epoch in range(self.max_epochs):
                self.epoch, self.epoch_logs = epoch, {}
                self.fit_epoch()
                self.finish_epoch()
        finally:
            model.board.flush()

    # Defined in book/toolkit.md, section "The loop: `Trainer`" (line 766)
    def finish_epoch(self):
        """Append this epoch's weighted mean of every logged value to `history`."""
        means = {}
        for label, log in self.epoch_logs.items():
            mean = torch.as_tensor(log["sum"] / log["weight"])
            means[label] = (log["transform"](mean) if log["transform"] else mean).item()
        for label, mean in means.items():
            self.history.setdefault(label, []).append(mean)
        self.model.board.log_epoch(self.epoch + 1, self.max_epochs, means)

    # Defined in book/toolkit.md, section "The loop: `Trainer`" (line 782)
    def fit_epoch(self):
        """One pass over the training data, then one over the validation data."""
        self.model.train()
        for batch in self.train_dataloader:
            loss = self.model.training_step(self.prepare_batch(batch))
            self.optim.zero_grad()
            loss.backward()
            if self.gradient_clip_val > 0:
                self.clip_gradients(self.gradient_clip_val, self.model)
            self.optim.step()
            self.train_batch_idx += 1
        if self.val_dataloader is None:
            return
        self.model.eval()
        with torch.no_grad():
            for batch in self.val_dataloader:
                self.model.validation_step(self.prepare_batch(batch))
                self.val_batch_idx += 1

    # Defined in book/rnn_scratch.md, section "Gradient clipping" (line 502)
    def clip_gradients(self, grad_clip_val, model):
        """Scale all gradients by min(1, grad_clip_val / norm), norm = their global L2 norm.

        Works on tensors only, so a GPU is never waited for. A non-finite norm zeroes every
        gradient (plain SGD then skips the step) and is counted in self.skipped_steps; steps whose
        norm exceeded the threshold are counted in self.clipped_steps. Both restart with each fit.
        """
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        with torch.no_grad():
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            finite = torch.isfinite(norm)
            scale = torch.clamp(grad_clip_val / (norm + 1e-6), max=1.0)
            for g in grads:
                g.mul_(scale).masked_fill_(~finite, 0.0)
            if getattr(self, "train_batch_idx", 0) == 0 or not hasattr(self, "skipped_steps"):
                self.skipped_steps = torch.zeros((), dtype=torch.int64, device=norm.device)
                self.clipped_steps = torch.zeros((), dtype=torch.int64, device=norm.device)
            self.skipped_steps += ~finite
            self.clipped_steps += finite & (norm > grad_clip_val)


# Defined in book/text_data.md, section "Reading the corpus" (line 89)
DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"


# Defined in book/text_data.md, section "Reading the corpus" (line 90)
_data_dir_setting = None


# Defined in book/text_data.md, section "Reading the corpus" (line 93)
def set_data_dir(path):
    """Read and download data files in `path` (`None` restores the default).

    The environment variable D2L_DATA_DIR, when set, takes precedence (see `data_dir`).
    """
    global _data_dir_setting
    _data_dir_setting = None if path is None else Path(path).expanduser()
    if path is not None and os.environ.get("D2L_DATA_DIR"):
        warnings.warn(
            f"D2L_DATA_DIR={os.environ['D2L_DATA_DIR']} is set and takes precedence over "
            f"set_data_dir({str(path)!r}); unset it to use {path}.", stacklevel=2)


# Defined in book/text_data.md, section "Reading the corpus" (line 106)
def data_dir():
    """The data folder: $D2L_DATA_DIR, else the set_data_dir folder, else a user cache."""
    if os.environ.get("D2L_DATA_DIR"):
        return Path(os.environ["D2L_DATA_DIR"]).expanduser()
    if _data_dir_setting is not None:
        return _data_dir_setting
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "d2l_lib"


# Defined in book/text_data.md, section "Reading the corpus" (line 124)
class DataError(RuntimeError):
    """A data file is missing and cannot be downloaded, or fails its checksum."""


# Defined in book/text_data.md, section "Reading the corpus" (line 128)
def sha1_of(path):
    """The SHA-1 hex digest of the file at `path`."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Defined in book/text_data.md, section "Reading the corpus" (line 137)
def _where_hint(path):
    return (f"Put a good copy of the file at\n    {path}\nor set the environment variable "
            f"D2L_DATA_DIR to a folder that holds {path.name} "
            f"(d2l.set_data_dir(folder) does the same from Python).")


# Defined in book/text_data.md, section "Reading the corpus" (line 148)
def download(url, folder=None, sha1_hash=None):
    """The local Path of `url`'s file in `folder` (default: data_dir()), downloaded if absent.

    With `sha1_hash`, the file must have that SHA-1 digest, else DataError is raised.
    """
    folder = data_dir() if folder is None else Path(folder)
    path = folder / url.split("/")[-1]
    if path.exists():
        actual = sha1_of(path)
        if sha1_hash is not None and actual != sha1_hash:
            raise DataError(
                f"Checksum mismatch for {path}: expected SHA-1 {sha1_hash}, actual {actual}.\n"
                f"The file is corrupt or not the expected one. Delete it (rm '{path}') so that "
                f"it is downloaded again from {url}, or set the environment variable "
                f"D2L_DATA_DIR to a folder that holds a good copy.")
        return path
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            content = response.read()
    except OSError as err:  # no network, DNS failure, HTTP error, timeout
        raise DataError(f"{path} does not exist, and downloading it from {url} failed "
                        f"({err}).\n"
                        + _where_hint(path)) from err
    actual = hashlib.sha1(content).hexdigest()
    if sha1_hash is not None and actual != sha1_hash:
        raise DataError(f"The download of {url} has SHA-1 {actual}, expected {sha1_hash}; "
                        f"nothing was saved.\n" + _where_hint(path))
    folder.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(content)
    part.replace(path)
    return path


# Defined in book/text_data.md, section "Reading the corpus" (line 184)
TIMEMACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"


# Defined in book/text_data.md, section "Reading the corpus" (line 187)
def download_timemachine():
    """The verified local Path of The Time Machine (downloaded on first use)."""
    return download(DATA_URL + "timemachine.txt", sha1_hash=TIMEMACHINE_SHA1)


# Defined in book/text_data.md, section "Reading the corpus" (line 192)
def read_timemachine():
    """The raw text of The Time Machine."""
    return download_timemachine().read_text(encoding="utf-8")


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 220)
class TimeMachine(DataModule):
    """The Time Machine as character-level language-model data."""

    def _download(self):
        return read_timemachine()

    def _preprocess(self, text):
        """Keep letters, turn every other run of characters into one space, lower-case."""
        return re.sub("[^A-Za-z]+", " ", text).lower()

    def _tokenize(self, text):
        """Character tokens."""
        return list(text)

    # Defined in book/text_data.md, section "Tokens and a vocabulary" (line 308)
    def build(self, raw_text, vocab=None):
        """(corpus, vocab): the token indices of `raw_text` and the vocabulary used."""
        tokens = self._tokenize(self._preprocess(raw_text))
        if vocab is None:
            vocab = Vocab(tokens)
        corpus = [vocab[token] for token in tokens]
        return corpus, vocab

    # Defined in book/text_data.md, section "Overlapping windows" (line 421)
    def __init__(self, batch_size, num_steps, num_train=10000, num_val=5000, whole_corpus=False):
        """Overlapping windows of num_steps + 1 tokens, with Y = X shifted by one token.

        Default (the reference's): the first num_train windows train, the next num_val validate.
        whole_corpus=True: every window within the first 90 % of the book trains and every
        window within the last 10 % validates (num_train and num_val are then unused).
        """
        DataModule.__init__(self)
        self.save_hyperparameters()
        self.corpus, self.vocab = self.build(self._download())
        windows = torch.tensor(self.corpus).unfold(0, num_steps + 1, 1)  # window i starts at i
        self.X, self.Y = windows[:, :-1], windows[:, 1:]
        self.num_train_tokens = int(0.9 * len(self.corpus)) if whole_corpus else None

    # Defined in book/text_data.md, section "Overlapping windows" (line 437)
    def get_dataloader(self, train):
        if self.whole_corpus:  # a window starting at i uses tokens i, ..., i + num_steps
            split, end = self.num_train_tokens, len(self.corpus) - self.num_steps
            idx = slice(0, split - self.num_steps) if train else slice(split, end)
        else:
            idx = (slice(0, self.num_train) if train
                   else slice(self.num_train, self.num_train + self.num_val))
        return self.get_tensorloader([self.X, self.Y], train, idx)


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 260)
class Vocab:
    """A vocabulary: a two-way map between tokens and integer indices."""

    def __init__(self, tokens=(), min_freq=0, reserved_tokens=()):
        if tokens and isinstance(tokens[0], (list, tuple)):  # one list per line: flatten
            tokens = [token for line in tokens for token in line]
        counter = collections.Counter(tokens)
        self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = sorted(set(["<unk>"] + list(reserved_tokens) + [
            token for token, freq in self.token_freqs if freq >= min_freq]))
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def to_tokens(self, indices):
        """Index -> token; a list, tuple or 1-d tensor of indices -> list of tokens."""
        if isinstance(indices, (list, tuple)) or getattr(indices, "ndim", 0) > 0:
            return [self.idx_to_token[int(index)] for index in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):  # index of the unknown token
        return self.token_to_idx["<unk>"]


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 532)
def _num_partition_batches(num_tokens, batch_size, num_steps):
    num_batches = (num_tokens - num_steps) // (batch_size * num_steps)
    if num_batches < 1:
        raise ValueError(f"A corpus of {num_tokens} tokens is too short for one minibatch "
                         f"of batch_size={batch_size} x num_steps={num_steps} tokens.")
    return num_batches


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 540)
def seq_data_iter_random(corpus, batch_size, num_steps, generator=None):
    """Random sampling: (X, Y) minibatches of non-overlapping subsequences, shuffled.

    A random offset in [0, num_steps) starts the partition; each epoch has
    (len(corpus) - num_steps) // (batch_size * num_steps) minibatches.
    """
    corpus = torch.as_tensor(corpus, dtype=torch.int64)
    num_batches = _num_partition_batches(len(corpus), batch_size, num_steps)
    offset = int(torch.randint(num_steps, (1,), generator=generator))
    num_subseqs = (len(corpus) - offset - 1) // num_steps
    order = torch.randperm(num_subseqs, generator=generator)[:num_batches * batch_size]
    starts = offset + num_steps * order
    for k in range(num_batches):
        pos = starts[k * batch_size:(k + 1) * batch_size, None] + torch.arange(num_steps)
        yield corpus[pos], corpus[pos + 1]


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 559)
def seq_data_iter_sequential(corpus, batch_size, num_steps, generator=None):
    """Sequential partitioning: row i of minibatch k + 1 continues row i of minibatch k.

    A random offset in [0, num_steps) starts the partition; each epoch has
    (len(corpus) - num_steps) // (batch_size * num_steps) minibatches.
    """
    corpus = torch.as_tensor(corpus, dtype=torch.int64)
    num_batches = _num_partition_batches(len(corpus), batch_size, num_steps)
    offset = int(torch.randint(num_steps, (1,), generator=generator))
    row_len = (len(corpus) - offset - 1) // batch_size
    Xs = corpus[offset:offset + batch_size * row_len].reshape(batch_size, row_len)
    Ys = corpus[offset + 1:offset + 1 + batch_size * row_len].reshape(batch_size, row_len)
    for k in range(num_batches):
        yield Xs[:, k * num_steps:(k + 1) * num_steps], Ys[:, k * num_steps:(k + 1) * num_steps]


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 620)
class SeqDataLoader:
    """A reusable loader over a partitioned corpus: each pass is one epoch.

    sampling: "random" (seq_data_iter_random) or "sequential" (seq_data_iter_sequential).
    generator: a torch.Generator that successive epochs draw from, None for the global
    torch generator, or an int seed that restarts every pass, so every pass is identical.
    """

    def __init__(self, corpus, batch_size, num_steps, sampling="sequential", generator=None):
        iter_fns = {"random": seq_data_iter_random, "sequential": seq_data_iter_sequential}
        if sampling not in iter_fns:
            raise ValueError(f"sampling must be 'random' or 'sequential', not {sampling!r}")
        self.corpus = torch.as_tensor(corpus, dtype=torch.int64)
        self.batch_size, self.num_steps, self.sampling = batch_size, num_steps, sampling
        self.iter_fn, self.generator = iter_fns[sampling], generator

    def __iter__(self):
        gen = self.generator
        if isinstance(gen, int):
            gen = torch.Generator().manual_seed(gen)
        return self.iter_fn(self.corpus, self.batch_size, self.num_steps, gen)

    def __len__(self):
        return _num_partition_batches(len(self.corpus), self.batch_size, self.num_steps)


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 656)
class TimeMachinePartitioned(TimeMachine):
    """The whole Time Machine, partitioned by random sampling or sequential partitioning."""

    def __init__(self, batch_size, num_steps, sampling="sequential", val_fraction=0.1, seed=0):
        DataModule.__init__(self)
        self.save_hyperparameters()
        if sampling not in ("random", "sequential"):
            raise ValueError(f"sampling must be 'random' or 'sequential', not {sampling!r}")
        self.corpus, self.vocab = self.build(self._download())
        split = int(len(self.corpus) * (1 - val_fraction))
        self.train_corpus, self.val_corpus = self.corpus[:split], self.corpus[split:]
        self.generator = torch.Generator().manual_seed(seed)

    def get_dataloader(self, train):
        if train:
            return SeqDataLoader(self.train_corpus, self.batch_size, self.num_steps,
                                 self.sampling, self.generator)
        # Fewer rows when the held-out tail is too short for batch_size rows of num_steps.
        rows = min(self.batch_size, (len(self.val_corpus) - self.num_steps) // self.num_steps)
        return SeqDataLoader(self.val_corpus, rows, self.num_steps, "sequential", self.seed)


# Defined in book/text_data.md, section "Perplexity: how good is a language model?" (line 723)
def perplexity(nll):
    """exp of the mean of `nll`, the per-token negative log-likelihoods (natural log)."""
    return math.exp(torch.as_tensor(nll, dtype=torch.float64).mean().item())


# Defined in book/rnn_scratch.md, section "The layer, step by step" (line 110)
class RNNScratch(Module):
    """A vanilla RNN layer: H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)."""

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W_xh = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.W_hh = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))

    # Defined in book/rnn_scratch.md, section "Making the loop cheap" (line 291)
    def forward(self, inputs, state=None):
        """Run the recurrence over a sequence.

        inputs: (num_steps, batch_size, num_inputs) floats, or (num_steps, batch_size) integer
        token indices that stand for their one-hot vectors; state: (batch_size, num_hiddens),
        or None for zeros. Returns (outputs, state): the states of all steps stacked as
        (num_steps, batch_size, num_hiddens), and the last state.
        """
        if inputs.is_floating_point():  # X_t W_xh + b_h for all time steps in one product
            XW = inputs @ self.W_xh + self.b_h
        else:  # one-hot rows times W_xh select rows: a table lookup (an embedding)
            XW = F.embedding(inputs, self.W_xh + self.b_h)
        if state is None:
            state = torch.zeros(XW.shape[1], self.num_hiddens, device=XW.device, dtype=XW.dtype)
        outputs = []
        for XW_t in XW:  # only the recurrence is sequential
            state = torch.tanh(torch.addmm(XW_t, state, self.W_hh))
            outputs.append(state)
        return torch.stack(outputs), state


# Defined in book/rnn_scratch.md, section "The layer, step by step" (line 142)
def check_len(a, n):
    """Raise AssertionError unless len(a) == n."""
    if len(a) != n:
        raise AssertionError(f"length {len(a)} != expected length {n}")


# Defined in book/rnn_scratch.md, section "The layer, step by step" (line 148)
def check_shape(a, shape):
    """Raise AssertionError unless tensor a has the given shape."""
    if tuple(a.shape) != tuple(shape):
        raise AssertionError(f"shape {tuple(a.shape)} != expected shape {tuple(shape)}")


# Defined in book/rnn_scratch.md, section "The same model, functional style" (line 180)
def get_params(vocab_size, num_hiddens, device):
    """[W_xh, W_hh, b_h, W_hq, b_q] of an RNN language model, each requiring gradients."""
    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    params = [normal((vocab_size, num_hiddens)), normal((num_hiddens, num_hiddens)),
              torch.zeros(num_hiddens, device=device),
              normal((num_hiddens, vocab_size)), torch.zeros(vocab_size, device=device)]
    for param in params:
        param.requires_grad_(True)
    return params


# Defined in book/rnn_scratch.md, section "The same model, functional style" (line 193)
def init_rnn_state(batch_size, num_hiddens, device):
    """The initial state: a tuple holding one (batch_size, num_hiddens) zero tensor."""
    return (torch.zeros((batch_size, num_hiddens), device=device),)


# Defined in book/rnn_scratch.md, section "The same model, functional style" (line 198)
def rnn(inputs, state, params):
    """inputs: (num_steps, batch_size, vocab_size). Returns the logits of all time steps,
    concatenated to (num_steps * batch_size, vocab_size), and the new state (H,)."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    outputs = []
    for X in inputs:
        H = torch.tanh(X @ W_xh + b_h + H @ W_hh)
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H,)


# Defined in book/rnn_scratch.md, section "A language model on top" (line 342)
class RNNLMScratch(Classifier):
    """A character-level language model: RNNScratch followed by an output layer."""

    def __init__(self, rnn, vocab_size, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.init_params()

    def init_params(self):
        self.W_hq = nn.Parameter(
            torch.randn(self.rnn.num_hiddens, self.vocab_size) * self.rnn.sigma)
        self.b_q = nn.Parameter(torch.zeros(self.vocab_size))

    # Defined in book/rnn_scratch.md, section "A language model on top" (line 363)
    def one_hot(self, X):
        """(batch_size, num_steps) token indices -> (num_steps, batch_size, vocab_size) floats."""
        return F.one_hot(X.T, self.vocab_size).type(torch.float32)

    # Defined in book/rnn_scratch.md, section "A language model on top" (line 369)
    def output_layer(self, rnn_outputs):
        """(num_steps, batch_size, num_hiddens) states -> (batch_size, num_steps, vocab_size)."""
        H = rnn_outputs.transpose(0, 1)  # batch first, like the labels
        return H @ self.W_hq + self.b_q  # one product for all time steps

    # Defined in book/rnn_scratch.md, section "A language model on top" (line 376)
    def forward(self, X, state=None):
        """Logits (batch_size, num_steps, vocab_size) for token indices X (batch_size, num_steps)."""
        rnn_outputs, _ = self.rnn(X.T, state)  # indices: the layer looks up rows of W_xh
        return self.output_layer(rnn_outputs)

    # Defined in book/rnn_scratch.md, section "Training on perplexity" (line 430)
    def training_step(self, batch):
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("ppl", loss, train=True, weight=batch[-1].numel(), transform=torch.exp)
        return loss

    # Defined in book/rnn_scratch.md, section "Training on perplexity" (line 437)
    def validation_step(self, batch):
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("ppl", loss, train=False, weight=batch[-1].numel(), transform=torch.exp)

    # Defined in book/rnn_scratch.md, section "Generating text" (line 647)
    def predict(self, prefix, num_preds, vocab, device=None, temperature=0, generator=None):
        """`prefix` (lower-cased) followed by `num_preds` generated characters.

        temperature=0 picks the most likely character (greedy decoding); temperature > 0 samples
        from softmax(logits / temperature), drawing from `generator` (a torch.Generator) if given.
        """
        if not prefix:
            raise ValueError("the prefix is empty: the model needs at least one character to read")
        if temperature < 0 or num_preds < 0:
            raise ValueError(f"need temperature >= 0 and num_preds >= 0, not {temperature}, "
                             f"{num_preds}")
        if len(vocab) != self.vocab_size:
            raise ValueError(f"vocab has {len(vocab)} tokens but the model {self.vocab_size}")
        chars = [c.lower() for c in prefix]  # the training text is lower case
        unknown = sorted({c for c, low in zip(prefix, chars) if low not in vocab.token_to_idx})
        if unknown:
            known = "".join(t for t in vocab.idx_to_token if len(t) == 1)
            raise ValueError(f"the vocabulary has no token for {', '.join(map(repr, unknown))} in "
                             f"the prefix {prefix!r}; it knows only {known!r} and upper case")
        device = next(self.parameters()).device if device is None else device
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                X = torch.tensor([vocab[chars]], device=device).T  # (len(prefix), 1): time first
                outputs, state = self.rnn(X, None)  # warm-up on the prefix
                generated = []
                for _ in range(num_preds):
                    logits = self.output_layer(outputs[-1:])[0, -1]  # (vocab_size,)
                    logits[vocab.unk] = -float("inf")
                    if temperature == 0:
                        token = logits.argmax().reshape(1)
                    else:
                        probs = F.softmax(logits / temperature, dim=0)
                        if generator is not None:
                            probs = probs.to(generator.device)
                        token = torch.multinomial(probs, 1, generator=generator).to(device)
                    generated.append(token)
                    outputs, state = self.rnn(token.reshape(1, 1), state)
        finally:
            self.train(was_training)
        indices = torch.cat(generated).tolist() if generated else []
        return "".join(chars) + "".join(vocab.idx_to_token[i] for i in indices)


# Defined in book/rnn_scratch.md, section "Truncated backpropagation through time" (line 765)
class StatefulRNNLMScratch(RNNLMScratch):
    """RNNLMScratch that carries its hidden state from one minibatch to the next.

    For sequential partitioning. The last state of minibatch k, detached from the graph
    (truncated backpropagation through time), is the first state of minibatch k + 1. Training
    and validation keep separate states; both restart when the mode changes (train()/eval()).
    """

    def __init__(self, rnn, vocab_size, lr=0.01):
        super().__init__(rnn, vocab_size, lr)
        self.states = {}

    def train(self, mode=True):
        self.states = {}  # a new pass over the text begins
        return super().train(mode)

    def carried_step(self, batch, train):
        X, Y = batch
        state = self.states.get(train)
        if state is not None and state.shape[0] != X.shape[0]:
            state = None  # a minibatch of another size cannot continue the rows
        rnn_outputs, last_state = self.rnn(X.T, state)
        self.states[train] = last_state.detach()  # the gradient stops at the boundary
        loss = self.loss(self.output_layer(rnn_outputs), Y)
        self.plot("ppl", torch.exp(loss), train=train)
        return loss

    def training_step(self, batch):
        return self.carried_step(batch, train=True)

    def validation_step(self, batch):
        self.carried_step(batch, train=False)


# Defined in book/rnn_concise.md, section "The model in two small classes" (line 167)
class RNN(Module):
    """torch.nn.RNN behind the interface of RNNScratch."""

    layer_type = nn.RNN  # a subclass may set nn.GRU or nn.LSTM instead

    def __init__(self, num_inputs, num_hiddens):
        super().__init__()
        self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
        self.rnn = self.layer_type(input_size=num_inputs,
                                   hidden_size=num_hiddens)

    def forward(self, inputs, H=None):
        """Run the layer over a time-first sequence.

        inputs: (num_steps, batch_size) token indices, which become one-hot
        vectors, or (num_steps, batch_size, num_inputs) floats. H: the state
        (1, batch_size, num_hiddens), or None for zeros. Returns all states
        (num_steps, batch_size, num_hiddens) and the last state.
        """
        if not inputs.is_floating_point():
            inputs = F.one_hot(inputs, self.num_inputs).float()
        return self.rnn(inputs, H)


# Defined in book/rnn_concise.md, section "The model in two small classes" (line 200)
class RNNLM(RNNLMScratch):
    """RNNLMScratch whose output layer is an nn.Linear."""

    def init_params(self):
        # logits = H W^T + b; this replaces W_hq and b_q of the scratch model
        self.linear = nn.Linear(in_features=self.rnn.num_hiddens,
                                out_features=self.vocab_size)

    def output_layer(self, rnn_outputs):
        """(num_steps, batch, num_hiddens) -> (batch, num_steps, vocab_size)."""
        batch_first = rnn_outputs.transpose(0, 1)
        return self.linear(batch_first)


# Defined in book/gradient_clipping.md, section "Two helpers for measuring gradients" (line 316)
def grad_norm(parameters):
    """The global L2 norm of the gradients of `parameters` (the norm of their concatenation).

    Parameters without a gradient are skipped. Returns a tensor on the gradients' device, so
    that nothing waits for a GPU; computed as the norm of the per-tensor norms.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


# Defined in book/gradient_clipping.md, section "Two helpers for measuring gradients" (line 337)
class GradNormTrainer(Trainer):
    """A Trainer that records the global gradient norm of every training step, before clipping.

    After fit, `grad_norms` is a CPU tensor with one norm per step (inf or nan where the gradient
    was not finite). gradient_clip_val=math.inf records the norms without clipping.
    """

    def fit(self, model, data):
        self._norms = []
        try:
            super().fit(model, data)
        finally:  # also after an interrupted run
            self.grad_norms = (torch.stack(self._norms).float().cpu() if self._norms
                               else torch.zeros(0))

    def clip_gradients(self, grad_clip_val, model):
        self._norms.append(grad_norm(model.parameters()).detach())
        if math.isfinite(grad_clip_val):
            super().clip_gradients(grad_clip_val, model)


# Defined in book/gradient_clipping.md, section "Experiment 2: gradients through time" (line 465)
def state_gradients(model, X, Y):
    """States H_1..H_T of model.rnn on X and the gradients of the last step's loss w.r.t. them.

    X, Y: (batch_size, T) token indices and labels. Returns (states, grads), both
    (T, batch_size, num_hiddens) and detached; grads[t - 1] = d loss_T / d H_t, where loss_T is
    the loss of the prediction at the last step. The layer runs one step at a time so that each
    state is a tensor of its own whose gradient autograd keeps (retain_grad). The parameters'
    .grad then hold the gradients of loss_T.
    """
    states, state = [], None
    for x in X.T:  # (batch_size,) tokens of one time step
        _, state = model.rnn(x.unsqueeze(0), state)
        state.retain_grad()
        states.append(state)
    loss = model.loss(model.output_layer(state.unsqueeze(0)), Y[:, -1:])
    model.zero_grad()
    loss.backward()
    return (torch.stack([s.detach() for s in states]),
            torch.stack([s.grad for s in states]))
