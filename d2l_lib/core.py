"""The code saved from the chapters of *Recurrent Neural Networks in PyTorch*.

The header down to the GENERATED line is hand-written: the imports that the saved code
shares. Everything below that line is generated from the chapters' ``#@save`` cells by
``make lib`` (``python -m booktools.library``). Edit the chapters, never the generated part.
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
    "GRUScratch",
    "GradNormTrainer",
    "HyperParameters",
    "LSTMScratch",
    "Module",
    "PlainLogFormatter",
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
    "clip_by_global_norm",
    "cpu",
    "data_dir",
    "download",
    "download_timemachine",
    "gate_parameters",
    "get_params",
    "glue",
    "gpu",
    "grad_norm",
    "in_notebook",
    "init_rnn_state",
    "input_terms",
    "log_axis",
    "normalize_text",
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
import numbers
import operator

from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter


# Defined in book/toolkit.md, section "A small training toolkit" (line 59)
def glue(name, value, display=False):
    """Publish `value` under `name` for the page's prose ({glue:text}`name`).

    Where MyST-NB is not installed (Colab, a bare Jupyter), there is no page
    to publish to, and this does nothing.
    """
    try:
        from myst_nb import glue as myst_nb_glue
    except ModuleNotFoundError:
        return
    myst_nb_glue(name, value, display=display)


# Defined in book/toolkit.md, section "Two Python helpers" (line 149)
def add_to_class(Class):
    """Decorator: make the decorated function a method of `Class`.

    The decorator returns what setattr returns, None, so the function's
    name in the notebook is freed: the method lives on the class only.
    """
    return lambda method: setattr(Class, method.__name__, method)


# Defined in book/toolkit.md, section "Two Python helpers" (line 185)
class HyperParameters:
    """Base class of objects that keep their constructor's arguments."""

    def save_hyperparameters(self, ignore=()):
        """Store each argument of the calling method on `self` (except
        `self`, names in `ignore` and names starting with an underscore)."""
        frame = inspect.currentframe().f_back
        try:
            info = inspect.getargvalues(frame)
        finally:
            del frame  # a frame kept alive would keep all its locals alive
        names = list(info.args)
        if info.varargs:
            names.append(info.varargs)
        hparams = {name: info.locals[name] for name in names
                   if name != "self" and name not in ignore
                   and not name.startswith("_")}
        extra = info.locals.get(info.keywords, {})  # **kwargs, if any
        hparams.update({k: v for k, v in extra.items() if k not in ignore})
        self.hparams = {**getattr(self, "hparams", {}), **hparams}
        for name, value in hparams.items():
            setattr(self, name, value)


# Defined in book/toolkit.md, section "The model: `Module`" (line 238)
class Module(nn.Module, HyperParameters):
    """Base class of models: network, loss, steps, optimizer, progress plot."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        nn.Module.__init__(self)
        self.save_hyperparameters()
        self.board = ProgressBoard(xlabel="epoch")  # the live plot

    def loss(self, y_hat, y):
        raise NotImplementedError(
            f"{type(self).__name__} needs a loss(y_hat, y) method")

    def forward(self, X):
        net = getattr(self, "net", None)
        if net is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no self.net: create one in "
                "__init__, or override forward")
        return net(X)

    def training_step(self, batch):
        """Loss on a training minibatch (inputs..., labels); logs "loss"."""
        *inputs, labels = batch
        loss = self.loss(self(*inputs), labels)
        self.plot("loss", loss, train=True, weight=labels.numel())
        return loss

    def validation_step(self, batch):
        *inputs, labels = batch
        loss = self.loss(self(*inputs), labels)
        self.plot("loss", loss, train=False, weight=labels.numel())

    def configure_optimizers(self):
        """Plain minibatch SGD with the model's learning rate `lr`."""
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    # Defined in book/toolkit.md, section "The model: `Module`" (line 291)
    def plot(self, key, value, train, weight=1, transform=None):
        """Log `value` as 'train_<key>' or 'val_<key>' for the history and board.

        The epoch's entry in `trainer.history` is `transform` of the
        `weight`-weighted mean of the logged values (no transform: the mean
        itself); each point of the board is the same quantity over the
        minibatches it covers.
        """
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return  # a step run by hand: there is no epoch to log into
        label = ("train_" if train else "val_") + key
        value = torch.as_tensor(value).detach().float()  # stays on its device
        log = trainer.epoch_logs.setdefault(
            label, {"sum": 0.0, "weight": 0.0, "transform": transform})
        log["sum"] = log["sum"] + weight * value
        log["weight"] += float(weight)
        if train:  # x: epochs done so far; n: minibatches per plotted point
            x = trainer.train_batch_idx / trainer.num_train_batches
            n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = trainer.epoch + 1
            n = trainer.num_val_batches / self.plot_valid_per_epoch
        if self.board.xlabel is None:
            self.board.xlabel = "epoch"
        self.board.draw(x, value, label, every_n=max(1, int(n)), weight=weight,
                        transform=transform)


# Defined in book/toolkit.md, section "The model: `Module`" (line 329)
def in_notebook():
    """True inside a Jupyter kernel (Jupyter, VS Code, Colab), where the
    board can show figures; False in scripts and the terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# Defined in book/toolkit.md, section "The model: `Module`" (line 340)
class ProgressBoard(HyperParameters):
    """Training curves: a live plot in Jupyter, one line per epoch elsewhere.

    The settings (labels, limits, scales, `display`) may change until the
    first redraw, which creates the figure.
    """

    redraw_every = 0.5  # seconds: the least time between two redraws
    draw_budget = 0.02  # redraw only while drawing took < this share of time
    line_styles = ("-", "--", "-.", ":")

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None,
                 xscale="linear", yscale="linear", figsize=(3.5, 2.5),
                 display=True):
        self.save_hyperparameters()
        self.live = in_notebook()  # draw a figure, or print text
        self.curves = {}  # label -> {"x": [...], "y": [...], "new": [...]}
        self.pending = {}  # label -> raw (x, y) points not yet averaged
        self.fig = self.axes = self.handle = None
        self.lines = {}  # label -> the one Line2D of that curve
        self.start = self.last_draw = None
        self.draw_seconds, self.redraws, self.stale = 0.0, 0, False
        # how legends, axis labels and printed lines name a logged label
        self.split_names = {"train_": "train", "val_": "validation"}
        self.quantity_names = {"loss": "loss", "ppl": "perplexity",
                               "acc": "accuracy"}

    def describe(self, label):
        """(split, quantity) of a label: 'val_ppl' -> ('validation',
        'perplexity'); a label without a split prefix -> (None, label)."""
        for prefix, split in self.split_names.items():
            if label.startswith(prefix):
                key = label[len(prefix):]
                name = self.quantity_names.get(key, key.replace("_", " "))
                return split, name
        return None, label

    def curve_name(self, label):
        """The legend entry of a curve: 'train_ppl' -> 'train perplexity'."""
        split, name = self.describe(label)
        return name if split is None else f"{split} {name}"

    def default_ylabel(self):
        """The plotted quantities, e.g. 'perplexity' or 'loss, accuracy'."""
        names = [self.describe(label) for label in self.curves]
        names = [name for split, name in names if split is not None]
        return ", ".join(dict.fromkeys(names))

    # Defined in book/toolkit.md, section "Watching training: the progress board" (line 1065)
    def draw(self, x, y, label, every_n=1, weight=1, transform=None):
        """Add (x, y) to curve `label`; every `every_n` points give one point of
        the curve: the mean x, and `transform` of the `weight`-weighted mean y
        (as `trainer.history` averages an epoch). Redraws when the throttle
        allows it."""
        if not self.display:
            return
        pending = self.pending.setdefault(label, [])
        pending.append((x, y, weight))
        if len(pending) < every_n:
            return
        xs, ys, weights = zip(*pending)
        pending.clear()
        curve = self.curves.setdefault(label, {"x": [], "y": [], "new": []})
        curve["x"].append(float(sum(xs)) / len(xs))
        total, total_weight = 0.0, 0.0  # summed in the order Module.plot sums
        for value, w in zip(ys, weights):
            total = total + w * torch.as_tensor(value).detach().float().reshape(())
            total_weight += float(w)
        mean = total / total_weight
        curve["new"].append(mean if transform is None else transform(mean))
        self.stale = True
        now = time.perf_counter()
        if self.start is None:
            self.start = self.last_draw = now
        if (self.live and now - self.last_draw >= self.redraw_every
                and self.draw_seconds <= self.draw_budget * (now - self.start)):
            self.redraw()

    # Defined in book/toolkit.md, section "Watching training: the progress board" (line 1096)
    def redraw(self):
        """Bring the figure up to date and show it in place of the last one."""
        tic = time.perf_counter()
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize)
            self.fig.subplots_adjust(left=0.2, bottom=0.19, right=0.96, top=0.95)
            self.axes = self.fig.add_subplot()
            for which, scale in (("x", self.xscale), ("y", self.yscale)):
                if scale == "log":
                    log_axis(self.axes, which)  # ticks 1e-3, 0.01, 1
                else:
                    getattr(self.axes, f"set_{which}scale")(scale)
        ax, new_curve = self.axes, False
        for i, (label, curve) in enumerate(self.curves.items()):
            if curve["new"]:  # one copy to the CPU per curve
                curve["y"].extend(torch.stack(curve["new"]).cpu().tolist())
                curve["new"].clear()
            if label not in self.lines:
                style = self.line_styles[i % len(self.line_styles)]
                (self.lines[label],) = ax.plot([], [], style, color=f"C{i % 10}",
                                               label=self.curve_name(label))
                new_curve = True
            self.lines[label].set_data(curve["x"], curve["y"])
        if new_curve:
            ax.legend(loc="best")
        ax.set_xlabel(self.xlabel or "")
        ax.set_ylabel(self.ylabel or self.default_ylabel())
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

    # Defined in book/toolkit.md, section "Watching training: the progress board" (line 1139)
    def show(self, png):
        """Show PNG bytes in the notebook, replacing the board's last image."""
        from IPython.display import Image, display

        if self.handle is None:
            self.handle = display(Image(data=png, format="png"), display_id=True)
        else:
            self.handle.update(Image(data=png, format="png"))

    # Defined in book/toolkit.md, section "Watching training: the progress board" (line 1150)
    def flush(self):
        """Draw what the throttling held back; call once after the last point."""
        if self.display and self.live and self.stale:
            self.redraw()

    # Defined in book/toolkit.md, section "Watching training: the progress board" (line 1157)
    def log_epoch(self, epoch, num_epochs, values):
        """Outside Jupyter, print one line with the epoch's values (in Jupyter
        the plot shows them)."""
        if self.display and not self.live:
            numbers = ", ".join(f"{self.curve_name(label)} {value:.4g}"
                                for label, value in values.items())
            print(f"epoch {epoch}/{num_epochs}: {numbers}", flush=True)


# Defined in book/toolkit.md, section "Classifiers and the cross-entropy loss" (line 429)
class Classifier(Module):
    """A Module whose outputs are logits, (batch, classes) or
    (batch, steps, classes), for integer labels (batch,) or (batch, steps)."""

    def loss(self, Y_hat, Y, averaged=True):
        """Cross-entropy over all predictions (nats); `averaged=False` gives
        one value per prediction, batch-major."""
        logits = Y_hat.flatten(0, -2)  # one row per prediction
        return F.cross_entropy(logits, Y.flatten(),
                               reduction="mean" if averaged else "none")

    def accuracy(self, Y_hat, Y, averaged=True):
        """The share of predictions whose highest logit is the label."""
        hits = Y_hat.argmax(dim=-1).flatten() == Y.flatten()
        hits = hits.float()
        return hits.mean() if averaged else hits

    def validation_step(self, batch):
        *inputs, labels = batch
        Y_hat = self(*inputs)
        count = labels.numel()
        loss, accuracy = self.loss(Y_hat, labels), self.accuracy(Y_hat, labels)
        self.plot("loss", loss, train=False, weight=count)
        self.plot("acc", accuracy, train=False, weight=count)


# Defined in book/toolkit.md, section "The data: `DataModule`" (line 490)
def _is_whole_number(value):
    """An int or NumPy integer, but not a bool (True is an int in Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# Defined in book/toolkit.md, section "The data: `DataModule`" (line 495)
def _minibatch_size(data):
    """data.batch_size, checked: a whole number >= 1."""
    size = getattr(data, "batch_size", None)
    if size is None:
        raise AttributeError(
            f"{type(data).__name__}.get_tensorloader needs self.batch_size, "
            "the number of examples per minibatch, which DataModule does "
            "not set: take batch_size as an argument of your __init__ and "
            "call self.save_hyperparameters() there")
    if not _is_whole_number(size):
        raise TypeError(f"batch_size must be a whole number >= 1, got "
                        f"{size!r}; for example batch_size=32")
    if size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got "
                         f"{size}; for example batch_size=32")
    return size


# Defined in book/toolkit.md, section "The data: `DataModule`" (line 515)
class DataModule(HyperParameters):
    """Base class of data: hands out training and validation minibatches."""

    def __init__(self, root=None, num_workers=0):
        self.save_hyperparameters()

    def get_dataloader(self, train):
        raise NotImplementedError(
            f"{type(self).__name__} needs a get_dataloader(train) method")

    def train_dataloader(self):
        """The training minibatches, reshuffled at every epoch."""
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        """The validation minibatches (None: no validation)."""
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors, train, indices=slice(0, None)):
        """A loader over examples `indices` of `tensors` (shuffled when
        `train`), in minibatches of `self.batch_size`; the last one may be
        smaller."""
        size = _minibatch_size(self)  # self.batch_size, or a clear error
        data = torch.utils.data.TensorDataset(*(t[indices] for t in tensors))
        sampler = (torch.utils.data.RandomSampler(data) if train
                   else torch.utils.data.SequentialSampler(data))
        # the sampler's indices, grouped into minibatches: the dataset is
        # indexed with a whole minibatch at once (batch_size=None below)
        groups = torch.utils.data.BatchSampler(sampler, size, drop_last=False)
        return torch.utils.data.DataLoader(data, batch_size=None,
                                           sampler=groups,
                                           num_workers=self.num_workers)


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 610)
def cpu():
    """The CPU device."""
    return torch.device("cpu")


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 615)
def gpu(i=0):
    """The `i`-th GPU (CUDA) device."""
    return torch.device(f"cuda:{i}")


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 620)
def num_gpus():
    """The number of CUDA GPUs this process can use."""
    return torch.cuda.device_count()


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 625)
def try_gpu(i=0):
    """The `i`-th GPU if it exists, else the CPU."""
    return gpu(i) if num_gpus() > i else cpu()


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 630)
def try_all_gpus():
    """All GPUs, or an empty list when there is none."""
    return [gpu(i) for i in range(num_gpus())]


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 635)
def _check_trainer_arguments(max_epochs, num_gpus, gradient_clip_val,
                             stop_on_nonfinite):
    """Raise a TypeError or ValueError that says what is wrong and how to
    fix it, for each argument of Trainer that makes no sense."""
    def whole(name, value, least, meaning, example):
        if not _is_whole_number(value):
            raise TypeError(
                f"Trainer({name}={value!r}): {name}, {meaning}, must be a "
                f"whole number >= {least}, got a {type(value).__name__}; "
                f"for example {example}")
        if value < least:
            raise ValueError(
                f"Trainer({name}={value!r}): {name}, {meaning}, must be "
                f">= {least}, got {value}; for example {example}")

    whole("max_epochs", max_epochs, 1, "the number of passes over the data",
          "Trainer(max_epochs=10)")
    whole("num_gpus", num_gpus, 0, "the number of GPUs wanted",
          "num_gpus=1 (a GPU if there is one)")
    theta = gradient_clip_val
    if isinstance(theta, bool) or not isinstance(
            theta, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"Trainer(gradient_clip_val={theta!r}): the clipping threshold "
            "must be a number >= 0 (0 turns clipping off), got a "
            f"{type(theta).__name__}; for example gradient_clip_val=1")
    if math.isnan(theta) or theta < 0:
        raise ValueError(
            f"Trainer(gradient_clip_val={theta!r}): the clipping threshold "
            "must be a number >= 0 (0 turns clipping off); for example "
            "gradient_clip_val=1")
    if not isinstance(stop_on_nonfinite, bool):
        raise TypeError(
            f"Trainer(stop_on_nonfinite={stop_on_nonfinite!r}): must be "
            "True or False")


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 672)
def _check_fit_arguments(model, data):
    """A clear TypeError when fit gets something else than a model and data
    (for example the two swapped)."""
    for obj, role, needs in (
            (model, "model", ("training_step", "configure_optimizers",
                              "board")),
            (data, "data", ("train_dataloader", "val_dataloader"))):
        if not all(hasattr(obj, name) for name in needs):
            raise TypeError(
                f"Trainer.fit(model, data): the {role} must have "
                f"{', '.join(needs)}; got a {type(obj).__name__}. Pass a "
                "Module and a DataModule, in that order")


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 686)
def _check_loaders(data, num_train_batches, val):
    """A clear ValueError when a split gives no minibatch at all."""
    name = type(data).__name__
    if num_train_batches == 0:
        raise ValueError(
            f"{name} gives no training minibatch: check the size of its "
            "training split and the batch size")
    if val is not None and len(val) == 0:
        raise ValueError(
            f"{name} gives no validation minibatch: check the size of its "
            "validation split, or return None from val_dataloader() to "
            "train without validation")


# Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 702)
class Trainer(HyperParameters):
    """Fits a Module to a DataModule on one device; keeps `history`, one
    value per epoch and logged label."""

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0,
                 stop_on_nonfinite=False):
        _check_trainer_arguments(max_epochs, num_gpus, gradient_clip_val,
                                 stop_on_nonfinite)
        self.save_hyperparameters()
        available = torch.cuda.device_count()
        self.gpus = [gpu(i) for i in range(min(num_gpus, available))]
        self.device = self.gpus[0] if self.gpus else cpu()
        self.history = {}

    def prepare_data(self, data):
        """Ask `data` for its loaders once; count their minibatches."""
        train, val = data.train_dataloader(), data.val_dataloader()
        self.num_train_batches = len(train)
        _check_loaders(data, self.num_train_batches, val)  # not empty
        self.num_val_batches = 0 if val is None else len(val)
        self.train_dataloader, self.val_dataloader = train, val

    def prepare_model(self, model):
        """Move the model to the device and let it log into this trainer."""
        self.model = model.to(self.device)
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]

    def prepare_batch(self, batch):
        """Move every tensor of the minibatch to the trainer's device."""
        return [a.to(self.device) for a in batch]

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 753)
    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs."""
        _check_fit_arguments(model, data)
        self.prepare_data(data)
        self.prepare_model(model)
        self.optim = model.configure_optimizers()
        if self.gradient_clip_val > 0 and not hasattr(self, "clip_gradients"):
            raise NotImplementedError(
                "gradient clipping needs Trainer.clip_gradients, which the "
                "chapter on recurrent networks from scratch adds")
        self.history, self.train_batch_idx, self.val_batch_idx = {}, 0, 0
        self.reset_step_counters()
        try:
            for epoch in range(self.max_epochs):
                self.epoch, self.epoch_logs = epoch, {}
                self.fit_epoch()
                self.finish_epoch()
                if self.should_stop:
                    break
        finally:  # also after Ctrl-C: show the final curves
            model.board.flush()
        self.report_skipped_steps()

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 778)
    def finish_epoch(self):
        """Append this epoch's value of every logged label to `history`; warn
        (once per fit) when one is not finite although no step was skipped."""
        values, not_finite = {}, {}
        for label, log in self.epoch_logs.items():
            mean = torch.as_tensor(log["sum"] / log["weight"])
            value = mean if log["transform"] is None else log["transform"](mean)
            values[label] = value.item()  # the one copy to the CPU per epoch
            self.history.setdefault(label, []).append(values[label])
            if not math.isfinite(values[label]):
                not_finite[label] = (mean.item(), log["transform"])
        self.check_skipped_steps()
        if not_finite and not (self.warned or self.warned_values):
            self.warn(self.nonfinite_value_message(not_finite))
            self.warned_values = True
        self.model.board.log_epoch(self.epoch + 1, self.max_epochs, values)

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 805)
    def fit_epoch(self):
        """One pass over the training data, then one over the validation data."""
        self.model.train()  # training behaviour of layers such as dropout
        for batch in map(self.prepare_batch, self.train_dataloader):
            loss = self.model.training_step(batch)  # forward pass and loss
            self.optim.zero_grad()
            loss.backward()
            self.update(loss)  # clip if asked; step unless not finite
            self.train_batch_idx += 1
        if self.val_dataloader is not None:
            self.model.eval()  # evaluation behaviour, no graph recorded
            with torch.no_grad():
                for batch in map(self.prepare_batch, self.val_dataloader):
                    self.model.validation_step(batch)
                    self.val_batch_idx += 1

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 826)
    def reset_step_counters(self):
        """At the start of fit: zero skipped_steps and clipped_steps (int64
        tensors on the device) and the divergence bookkeeping."""
        zero = torch.zeros((), dtype=torch.int64, device=self.device)
        self.skipped_steps, self.clipped_steps = zero, zero.clone()
        self.first_skip = torch.full_like(zero, -1)  # minibatch index, or -1
        self.skips_seen, self.warned, self.should_stop = 0, False, False
        self.warned_values = False  # about a non-finite value in history
        self.sync_each_step = self.checks_each_step()

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 838)
    def checks_each_step(self):
        """Whether `update` reads the finiteness of each step on the host.

        On a CPU that costs nothing. On a GPU it makes the host wait for the
        device at every step, so for plain SGD (no momentum, no weight decay),
        where zero gradients leave the parameters unchanged, `update` zeroes the
        gradients of a bad step on the device instead and the count is read once
        per epoch. Other optimizers would still move: they are checked each step.
        """
        plain_sgd = type(self.optim) is torch.optim.SGD and all(
            group["momentum"] == 0 and group["weight_decay"] == 0
            for group in self.optim.param_groups)
        return self.device.type == "cpu" or not plain_sgd

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 854)
    def update(self, loss):
        """Clip the gradients if asked, then take the optimizer step, unless the
        loss or the global gradient norm is not finite: such a step is skipped
        (the parameters keep their values) and counted in skipped_steps."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        finite = torch.isfinite(loss.detach())
        if grads:
            norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])
            finite = finite & torch.isfinite(torch.linalg.vector_norm(norms))
        if self.gradient_clip_val > 0:
            before = self.skipped_steps.clone()
            self.clip_gradients(self.gradient_clip_val, self.model)
            self.skipped_steps = before  # clip_gradients counts too: count once
        self.skipped_steps += ~finite
        if self.sync_each_step:
            if finite.item():
                self.optim.step()
            elif not self.warned:  # the first skipped step of this fit
                step = self.train_batch_idx - self.epoch * self.num_train_batches
                self.warn(self.divergence_message(step, loss.item()))
                self.warned = True
            return
        for g in grads:  # no waiting for the device: plain SGD skips zero steps
            g.masked_fill_(~finite, 0.0)
        self.first_skip = torch.where(
            ~finite & (self.first_skip < 0),
            torch.full_like(self.first_skip, self.train_batch_idx), self.first_skip)
        self.optim.step()

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 885)
    def divergence_message(self, step, loss=None):
        """What went wrong at `step` (0-based) of this epoch, and what to do."""
        what = ("the loss or the gradient norm is not finite" if loss is None
                else f"the loss is {loss}" if not math.isfinite(loss)
                else "the gradient norm is not finite")
        lr = self.optim.param_groups[0].get("lr")
        clipping = (f"gradients clipped to norm {self.gradient_clip_val}"
                    if self.gradient_clip_val > 0
                    else "no gradient clipping (gradient_clip_val=0)")
        return (f"training diverged at epoch {self.epoch + 1}, step {step + 1} "
                f"of {self.num_train_batches}: {what}. The optimizer step was "
                "skipped, so the parameters keep their last finite values; later"
                " such steps are skipped too and counted in "
                "trainer.skipped_steps. Likely causes: a learning rate too large "
                f"(lr={lr}), {clipping}, or non-finite inputs. Lower the "
                "learning rate or clip the gradients; "
                "Trainer(..., stop_on_nonfinite=True) stops training after the "
                "epoch in which this happens.")

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 906)
    def nonfinite_value_message(self, not_finite):
        """What it means that this epoch's values of the labels in `not_finite`
        ({label: (weighted mean, transform)}) are not finite, and what to do."""
        label, (mean, transform) = next(iter(not_finite.items()))
        value = self.history[label][-1]
        if transform is not None and math.isfinite(mean):
            name = getattr(transform, "__name__", repr(transform))
            what = (f"trainer.history['{label}'] is {value}: {name} of the "
                    f"epoch's mean, {mean:.4g}, is too large for a 32-bit float")
            meaning = ("A mean loss that large means the model gives the right "
                       "labels almost no probability, far less than a uniform "
                       "guess would: its predictions are useless.")
        else:
            what = f"trainer.history['{label}'] is {value}"
            meaning = "The values logged in this epoch overflowed."
        others = [other for other in not_finite if other != label]
        also = f" (and {', '.join(others)})" if others else ""
        lr = self.optim.param_groups[0].get("lr")
        return (f"training diverged by epoch {self.epoch + 1}: {what}{also}, "
                "although every loss and gradient was finite, so no step was "
                f"skipped. {meaning} Likely causes: a learning rate too large "
                f"(lr={lr}), or huge inputs. Lower the learning rate or clip "
                "the gradients (gradient_clip_val).")

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 932)
    def warn(self, message):
        """Issue a RuntimeWarning at the line that called fit, every time
        (warnings repeated in a notebook are not swallowed)."""
        frame, caller = inspect.currentframe(), None
        while frame is not None:
            if (frame.f_code.co_name == "fit"
                    and frame.f_locals.get("self") is self):
                caller = frame.f_back
            frame = frame.f_back
        where = caller or inspect.currentframe()
        warnings.warn_explicit(
            message, RuntimeWarning, where.f_code.co_filename, where.f_lineno,
            module=where.f_globals.get("__name__"), registry=None)

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 948)
    def check_skipped_steps(self):
        """At the end of an epoch: warn about skipped steps not yet reported
        (those found without waiting for the GPU), stop if asked to."""
        skipped = int(self.skipped_steps)
        if skipped == self.skips_seen:
            return
        if not self.warned:
            first = int(self.first_skip)
            step = max(first - self.epoch * self.num_train_batches, 0)
            self.warn(self.divergence_message(step))
        self.warned, self.skips_seen = True, skipped
        self.should_stop = self.stop_on_nonfinite

    # Defined in book/toolkit.md, section "The procedure: `Trainer`" (line 963)
    def report_skipped_steps(self):
        """At the end of fit: say how many steps were skipped, if any."""
        skipped = int(self.skipped_steps)
        if skipped == 0:
            return
        finite = all(bool(torch.isfinite(p).all())
                     for p in self.model.parameters())
        stopped = (f"training stopped after epoch {self.epoch + 1} of "
                   f"{self.max_epochs} (stop_on_nonfinite=True); "
                   if self.should_stop else "")
        state = ("the parameters are those of the last finite step" if finite
                 else "some parameters are NOT finite (they were before "
                 "training, or a step made them so): re-initialize the model")
        self.warn(f"Trainer.fit: {skipped} of {self.train_batch_idx} optimizer "
                  "steps were skipped because the loss or a gradient was not "
                  f"finite (trainer.skipped_steps); {stopped}{state}.")

    # Defined in book/rnn_fast.md, section "Clipping without waiting for the GPU" (line 497)
    def clip_gradients(self, grad_clip_val, model):
        """Clip all gradients to a global L2 norm of at most grad_clip_val.

        Tensor operations only, so the CPU never waits for a GPU. A non-finite
        norm zeroes every gradient (plain SGD then leaves the parameters alone).
        Counted since the start of fit, as int64 tensors: self.clipped_steps
        (norm above the threshold) and self.skipped_steps (norm not finite).
        """
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        with torch.no_grad():
            per_tensor = torch.stack([torch.linalg.vector_norm(g) for g in grads])
            norm = torch.linalg.vector_norm(per_tensor)  # over all entries
            finite = torch.isfinite(norm)
            scale = torch.clamp(grad_clip_val / (norm + 1e-6), max=1.0)
            for g in grads:
                g.mul_(scale).masked_fill_(~finite, 0.0)
            if getattr(self, "train_batch_idx", 0) == 0 or not hasattr(
                    self, "skipped_steps"):  # the first step of a fit: restart
                zero = torch.zeros((), dtype=torch.int64, device=norm.device)
                self.skipped_steps, self.clipped_steps = zero, zero.clone()
            self.skipped_steps += ~finite
            self.clipped_steps += finite & (norm > grad_clip_val)


# Defined in book/toolkit.md, section "Watching training: the progress board" (line 1017)
class PlainLogFormatter(LogFormatter):
    """Tick labels of a log axis as plain numbers: from 0.01 up to (not
    including) 1000 as decimals (0.01, 0.5, 20), the rest as 1e-3, 2e-5, 1e3."""

    def __call__(self, x, pos=None):
        if not super().__call__(x, pos):  # a tick matplotlib leaves unlabelled
            return ""
        if 0.01 <= abs(x) < 1000:
            return f"{x:g}"
        mantissa, exponent = f"{x:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


# Defined in book/toolkit.md, section "Watching training: the progress board" (line 1030)
def log_axis(ax, which="y"):
    """Put the x or y axis of `ax` on a log scale labelled by
    PlainLogFormatter (call it after any ax.set(...) that sets the scale)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter())


# Defined in book/toolkit.md, section "Putting it together" (line 1294)
def set_seed(seed):
    """Seed Python's, NumPy's and PyTorch's (CPU and GPU) generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


# Defined in book/text_data.md, section "Reading the corpus" (line 86)
DATA_URL = "https://d2l-data.s3-accelerate.amazonaws.com/"


# Defined in book/text_data.md, section "Reading the corpus" (line 87)
TIMEMACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"


# Defined in book/text_data.md, section "Reading the corpus" (line 88)
_data_dir_setting = None  # set by set_data_dir


# Defined in book/text_data.md, section "Reading the corpus" (line 91)
def set_data_dir(path):
    """Keep data files in `path` (None: back to the default folder).

    D2L_DATA_DIR, when set, still wins; then this warns.
    """
    global _data_dir_setting
    _data_dir_setting = None if path is None else Path(path).expanduser()
    env = os.environ.get("D2L_DATA_DIR")
    if path is not None and env:
        warnings.warn(f"D2L_DATA_DIR={env} is set and takes precedence over "
                      f"set_data_dir({str(path)!r}); unset it to use {path}.",
                      stacklevel=2)


# Defined in book/text_data.md, section "Reading the corpus" (line 105)
def data_dir():
    """$D2L_DATA_DIR, else the set_data_dir folder, else a per-user cache."""
    if os.environ.get("D2L_DATA_DIR"):
        return Path(os.environ["D2L_DATA_DIR"]).expanduser()
    if _data_dir_setting is not None:
        return _data_dir_setting
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "d2l_lib"


# Defined in book/text_data.md, section "Reading the corpus" (line 115)
class DataError(RuntimeError):
    """A data file is missing and cannot be downloaded, or fails its check."""


# Defined in book/text_data.md, section "Reading the corpus" (line 119)
def sha1_of(path):
    """The SHA-1 hex digest of the file at `path`, read in 1 MiB chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# Defined in book/text_data.md, section "Reading the corpus" (line 128)
def _where_hint(path):
    return (f"Put a good copy of the file at\n    {path}\nor set the "
            f"environment variable D2L_DATA_DIR to a folder that holds "
            f"{path.name} (d2l.set_data_dir(folder) does the same from "
            f"Python).")


# Defined in book/text_data.md, section "Reading the corpus" (line 135)
def download(url, folder=None, sha1_hash=None):
    """The local Path of `url`'s file in `folder` (default: data_dir()).

    The file is downloaded if absent. With `sha1_hash` it must have that
    digest, else DataError. A download goes to a `.part` file that is renamed
    only once its digest matches, so no half-written file keeps the name.
    """
    folder = data_dir() if folder is None else Path(folder)
    path = folder / url.split("/")[-1]
    if path.exists():
        actual = sha1_of(path)
        if sha1_hash is not None and actual != sha1_hash:
            raise DataError(
                f"Checksum mismatch for {path}: expected SHA-1 {sha1_hash}, "
                f"actual {actual}.\nThe file is corrupt or not the expected "
                f"one. Delete it (rm '{path}') so that it is downloaded again "
                f"from {url}, or set the environment variable D2L_DATA_DIR "
                f"to a folder that holds a good copy.")
        return path
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            content = response.read()
    except OSError as err:  # no network, DNS failure, HTTP error, timeout
        raise DataError(f"{path} does not exist, and downloading it from "
                        f"{url} failed ({err}).\n" + _where_hint(path)
                        ) from err
    actual = hashlib.sha1(content).hexdigest()
    if sha1_hash is not None and actual != sha1_hash:
        raise DataError(f"The download of {url} has SHA-1 {actual}, expected "
                        f"{sha1_hash}; nothing was saved.\n"
                        + _where_hint(path))
    folder.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(content)
    part.replace(path)
    return path


# Defined in book/text_data.md, section "Reading the corpus" (line 173)
def download_timemachine():
    """The verified local Path of The Time Machine (downloaded on first use)."""
    return download(DATA_URL + "timemachine.txt", sha1_hash=TIMEMACHINE_SHA1)


# Defined in book/text_data.md, section "Reading the corpus" (line 178)
def read_timemachine():
    """The raw text of The Time Machine."""
    return download_timemachine().read_text(encoding="utf-8")


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 215)
def normalize_text(text):
    """Lower-case letters; every run of other characters becomes one space.

    normalize_text("Time-Traveller, he said") == "time traveller he said"
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects a str, got "
                        f"{type(text).__name__}; decode bytes first, "
                        f"e.g. raw.decode('utf-8').")
    pieces = re.split("[^A-Za-z]+", text)  # runs of letters (or "" at an end)
    return " ".join(pieces).lower()


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 244)
class Vocab:
    """A two-way map between tokens (strings) and indices 0, ..., len - 1."""

    def __init__(self, tokens=(), min_freq=0, reserved_tokens=()):
        tokens = _vocab_tokens(tokens, reserved_tokens)  # flat, all str
        counts = collections.Counter(tokens)
        # (token, count), most frequent first; ties keep first-seen order
        self.token_freqs = sorted(counts.items(), key=lambda tc: -tc[1])
        kept = {tok for tok, count in self.token_freqs if count >= min_freq}
        self.idx_to_token = sorted(kept | {"<unk>", *reserved_tokens})
        self.token_to_idx = {tok: i for i, tok in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.idx_to_token)

    @property
    def unk(self):
        """The index of `<unk>`, which every unknown token maps to."""
        return self.token_to_idx["<unk>"]

    def __getitem__(self, tokens):
        """Token -> index; a list or tuple of tokens -> list of indices."""
        if isinstance(tokens, (list, tuple)):
            return [self[token] for token in tokens]
        return self.token_to_idx.get(_lookup_token(tokens), self.unk)

    def to_tokens(self, indices):
        """Index -> token; a list, tuple or 1-d tensor of them -> list."""
        if isinstance(indices, (list, tuple)) or getattr(indices, "ndim", 0):
            return [self.idx_to_token[self._index(i)] for i in indices]
        return self.idx_to_token[self._index(indices)]

    # Defined in book/text_data.md, section "Tokens and a vocabulary" (line 316)
    def _index(self, index):
        """`index` as an int in range(len(self)), else a clear error."""
        try:
            i = None if isinstance(index, bool) else operator.index(index)
        except TypeError:
            i = None
        if i is None:
            raise TypeError(f"Vocab.to_tokens: an index must be an integer, got "
                            f"{index!r} ({type(index).__name__}). Pass one index "
                            f"or a flat list, tuple or 1-d integer tensor of "
                            f"them (e.g. the argmax of the logits).")
        if not 0 <= i < len(self):
            raise IndexError(
                f"Vocab.to_tokens: index {i} is out of range; this vocabulary has "
                f"{len(self)} tokens, indices 0 to {len(self) - 1} (negative "
                f"indices do not count from the end). Check where the index "
                f"comes from: it should come from vocab[...] or from a model "
                f"with len(vocab) outputs.")
        return i


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 287)
def _vocab_tokens(tokens, reserved_tokens):
    """`tokens` as one flat list; a clear error unless every token is a str."""
    if isinstance(reserved_tokens, str):
        raise TypeError(f"Vocab: reserved_tokens must be a list of tokens, got "
                        f"the string {reserved_tokens!r}; write "
                        f"reserved_tokens=[{reserved_tokens!r}].")
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], (list, tuple)):  # one list per line
        tokens = [token for line in tokens for token in line]
    groups = {"tokens": tokens, "reserved_tokens": reserved_tokens}
    for name, group in groups.items():
        for token in group:
            if not isinstance(token, str):
                raise TypeError(
                    f"Vocab: every token must be a str, but {name} holds "
                    f"{token!r} ({type(token).__name__}). Convert the tokens "
                    f"to strings first, e.g. [str(t) for t in tokens].")
    return tokens


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 307)
def _lookup_token(token):
    if not isinstance(token, str):
        raise TypeError(
            f"vocab[...] looks up tokens (str) or lists of them, got "
            f"{token!r} ({type(token).__name__}). To turn indices into "
            f"tokens, use vocab.to_tokens(...).")
    return token


# Defined in book/text_data.md, section "Tokens and a vocabulary" (line 380)
class TimeMachine(DataModule):
    """The Time Machine as character-level language-model data."""

    def _download(self):
        return read_timemachine()

    def _preprocess(self, text):
        return normalize_text(text)

    def _tokenize(self, text):
        return list(text)  # one token per character

    def build(self, raw_text, vocab=None):
        """(corpus, vocab): the token indices of `raw_text`, and the vocabulary
        used (built from `raw_text` itself when `vocab` is None)."""
        tokens = self._tokenize(self._preprocess(raw_text))
        vocab = Vocab(tokens) if vocab is None else vocab
        return vocab[list(tokens)], vocab

    # Defined in book/text_data.md, section "Overlapping windows" (line 509)
    def __init__(self, batch_size, num_steps, num_train=10000, num_val=5000,
                 whole_corpus=False):
        """Windows of num_steps + 1 tokens: inputs X, labels Y (X moved by one).

        Default: the first num_train windows train, the next num_val validate.
        whole_corpus=True: the windows inside the first 90 % of the book train,
        those inside the last 10 % validate (num_train and num_val are unused).
        """
        DataModule.__init__(self)
        self.save_hyperparameters()
        self.corpus, self.vocab = self.build(self._download())
        _check_window_args(self)  # clear errors for sizes that cannot work
        windows = torch.tensor(self.corpus).unfold(0, num_steps + 1, 1)
        self.X, self.Y = windows[:, :-1], windows[:, 1:]  # window i starts at i
        self.num_train_tokens = (int(0.9 * len(self.corpus)) if whole_corpus
                                 else None)

    # Defined in book/text_data.md, section "Overlapping windows" (line 528)
    def window_range(self, train):
        """The indices of the windows (rows of X and Y) of one split."""
        if not self.whole_corpus:
            end = min(self.num_train + self.num_val, len(self.X))
            return range(self.num_train) if train else range(self.num_train, end)
        # window i reads tokens i..i + num_steps: no token in both splits
        split = self.num_train_tokens
        return range(split - self.num_steps) if train else range(split, len(self.X))

    # Defined in book/text_data.md, section "Overlapping windows" (line 539)
    def get_dataloader(self, train):
        rows = self.window_range(train)
        return self.get_tensorloader([self.X, self.Y], train,
                                     slice(rows.start, rows.stop))


# Defined in book/text_data.md, section "Overlapping windows" (line 553)
def _positive_int(owner, name, value, meaning):
    """`value` as an int, or a clear error unless it is an integer >= 1."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        error = TypeError if number is None else ValueError
        example = {"num_train": 10000, "num_val": 5000}.get(name, 32)
        raise error(f"{owner}: {name} must be an integer >= 1 ({meaning}), "
                    f"got {value!r}. Pass e.g. {name}={example}.")
    return number


# Defined in book/text_data.md, section "Overlapping windows" (line 567)
def _check_window_args(data):
    """Clear errors for TimeMachine sizes that give no usable windows."""
    who = type(data).__name__
    _positive_int(who, "batch_size", data.batch_size, "windows per minibatch")
    T = _positive_int(who, "num_steps", data.num_steps, "tokens per window")
    N = len(data.corpus)
    if T >= N:
        raise ValueError(f"{who}: num_steps={T} is too long: a window needs "
                         f"num_steps + 1 tokens and the corpus has {N}. Use "
                         f"num_steps <= {N - 1}.")
    num_windows = N - T
    if data.whole_corpus:
        split = int(0.9 * N)
        longest = min(split, N - split) - 1
        if T > longest:
            raise ValueError(
                f"{who}: with whole_corpus=True, num_steps={T} leaves no "
                f"validation window in the last {N - split} tokens. Use "
                f"num_steps <= {longest}.")
        return
    num_train = _positive_int(who, "num_train", data.num_train,
                              "training windows")
    num_val = _positive_int(who, "num_val", data.num_val,
                            "validation windows")
    if num_train >= num_windows:
        raise ValueError(
            f"{who}: num_train={num_train} leaves no validation window: with "
            f"num_steps={T} the corpus of {N} tokens has {num_windows} "
            f"windows. Use num_train <= {num_windows - num_val} (so that "
            f"num_train + num_val <= {num_windows}), or whole_corpus=True.")
    if num_train + num_val > num_windows:
        warnings.warn(
            f"{who}: num_train + num_val = {num_train + num_val} is more than "
            f"the {num_windows} windows there are; validation gets only the "
            f"{num_windows - num_train} after the training windows. Pass "
            f"num_val <= {num_windows - num_train} to silence this.",
            stacklevel=3)


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 690)
def _num_partition_batches(num_tokens, batch_size, num_steps, owner="data"):
    b = _positive_int(owner, "batch_size", batch_size, "rows per minibatch")
    T = _positive_int(owner, "num_steps", num_steps, "tokens per row")
    num_batches = (num_tokens - T) // (b * T)
    if num_batches < 1:
        raise ValueError(f"{owner}: a corpus of {num_tokens} tokens is too "
                         f"short for one minibatch of batch_size={b} x "
                         f"num_steps={T} tokens; make either smaller.")
    return num_batches


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 701)
def seq_data_iter_random(corpus, batch_size, num_steps, generator=None):
    """Random sampling: minibatches (X, Y) of shuffled, non-overlapping pieces.

    A random offset in [0, num_steps) starts the cut; each epoch has
    (len(corpus) - num_steps) // (batch_size * num_steps) minibatches.
    """
    corpus = torch.as_tensor(corpus, dtype=torch.int64)
    num_batches = _num_partition_batches(len(corpus), batch_size, num_steps,
                                         "seq_data_iter_random")
    offset = int(torch.randint(num_steps, (1,), generator=generator))
    num_pieces = (len(corpus) - offset - 1) // num_steps
    order = torch.randperm(num_pieces, generator=generator)
    starts = offset + num_steps * order[:num_batches * batch_size]
    for k in range(num_batches):
        first = starts[k * batch_size:(k + 1) * batch_size]
        pos = first[:, None] + torch.arange(num_steps)
        yield corpus[pos], corpus[pos + 1]


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 722)
def seq_data_iter_sequential(corpus, batch_size, num_steps, generator=None):
    """Sequential partitioning: row i of minibatch k + 1 continues row i of k.

    A random offset in [0, num_steps) starts the rows; each epoch has
    (len(corpus) - num_steps) // (batch_size * num_steps) minibatches.
    """
    corpus = torch.as_tensor(corpus, dtype=torch.int64)
    num_batches = _num_partition_batches(len(corpus), batch_size, num_steps,
                                         "seq_data_iter_sequential")
    offset = int(torch.randint(num_steps, (1,), generator=generator))
    row_len = (len(corpus) - offset - 1) // batch_size
    inputs = corpus[offset:offset + batch_size * row_len]
    labels = corpus[offset + 1:offset + 1 + batch_size * row_len]
    rows_x = inputs.reshape(batch_size, row_len)
    rows_y = labels.reshape(batch_size, row_len)
    for k in range(num_batches):
        cols = slice(k * num_steps, (k + 1) * num_steps)
        yield rows_x[:, cols], rows_y[:, cols]


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 821)
class SeqDataLoader:
    """A reusable loader over a partitioned corpus: each pass is one epoch.

    sampling: "random" or "sequential" (seq_data_iter_random / _sequential).
    generator: a torch.Generator that successive epochs draw from, None for
    the global generator, or an int seed that restarts every pass (so every
    pass is the same).
    """

    def __init__(self, corpus, batch_size, num_steps, sampling="sequential",
                 generator=None):
        iter_fns = {"random": seq_data_iter_random,
                    "sequential": seq_data_iter_sequential}
        _check_loader_args(sampling, generator)
        self.corpus = torch.as_tensor(corpus, dtype=torch.int64)
        self.batch_size, self.num_steps = batch_size, num_steps
        self.sampling, self.generator = sampling, generator
        self.iter_fn = iter_fns[sampling]
        len(self)  # checks the sizes now rather than at the first epoch

    def __iter__(self):
        gen = self.generator
        if isinstance(gen, int):
            gen = torch.Generator().manual_seed(gen)
        return self.iter_fn(self.corpus, self.batch_size, self.num_steps, gen)

    def __len__(self):
        return _num_partition_batches(len(self.corpus), self.batch_size,
                                      self.num_steps, "SeqDataLoader")


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 852)
class TimeMachinePartitioned(TimeMachine):
    """The whole Time Machine, by random sampling or sequential partitioning."""

    def __init__(self, batch_size, num_steps, sampling="sequential",
                 val_fraction=0.1, seed=0):
        DataModule.__init__(self)
        self.save_hyperparameters()
        _check_loader_args(sampling, seed)
        self.corpus, self.vocab = self.build(self._download())
        split = _partition_split(self)  # checks the sizes
        self.train_corpus, self.val_corpus = (self.corpus[:split],
                                              self.corpus[split:])
        self.generator = torch.Generator().manual_seed(seed)

    def get_dataloader(self, train):
        if train:
            return SeqDataLoader(self.train_corpus, self.batch_size,
                                 self.num_steps, self.sampling, self.generator)
        # fewer rows when the tail is too short for batch_size rows
        T = self.num_steps
        rows = min(self.batch_size, (len(self.val_corpus) - T) // T)
        return SeqDataLoader(self.val_corpus, rows, T, "sequential", self.seed)


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 880)
def _check_loader_args(sampling, generator):
    if not isinstance(sampling, str) or sampling not in ("random",
                                                         "sequential"):
        raise ValueError(f"sampling must be 'random' or 'sequential', not "
                         f"{sampling!r}.")
    if isinstance(generator, bool) or not (
            generator is None or isinstance(generator, (int, torch.Generator))):
        raise TypeError(f"the generator (or seed) must be None, an int seed "
                        f"or a torch.Generator, got {generator!r} "
                        f"({type(generator).__name__}).")


# Defined in book/text_data.md, section "Partitioning the sequence: random and sequen..." (line 892)
def _partition_split(data):
    """The first validation token of TimeMachinePartitioned, after checks."""
    who = type(data).__name__
    b = _positive_int(who, "batch_size", data.batch_size, "rows per minibatch")
    T = _positive_int(who, "num_steps", data.num_steps, "tokens per row")
    fraction = data.val_fraction
    is_number = (isinstance(fraction, (int, float))
                 and not isinstance(fraction, bool))
    if not is_number or not 0 < fraction < 1:
        raise (ValueError if is_number else TypeError)(
            f"{who}: val_fraction must be a number strictly between 0 and 1 "
            f"(the share of the book held out for validation), got "
            f"{fraction!r}. Pass e.g. val_fraction=0.1.")
    if isinstance(data.seed, bool) or not isinstance(data.seed, int):
        raise TypeError(f"{who}: seed must be an int (it seeds the training "
                        f"epochs' offsets and order), got {data.seed!r}. "
                        f"Pass e.g. seed=0.")
    N = len(data.corpus)
    split = int(N * (1 - fraction))
    if (split - T) // (b * T) < 1:
        raise ValueError(f"{who}: the {split} training tokens are too few for "
                         f"one minibatch of batch_size={b} x num_steps={T}; "
                         f"make them smaller or val_fraction smaller.")
    if (N - split - T) // T < 1:
        raise ValueError(f"{who}: the {N - split} validation tokens are too "
                         f"few for one row of num_steps={T} inputs and labels "
                         f"(it needs {2 * T}); use a larger val_fraction or "
                         f"a smaller num_steps.")
    return split


# Defined in book/text_data.md, section "Perplexity: how good is a language model?" (line 974)
def perplexity(nll):
    """exp of the mean of `nll`, per-token negative log-likelihoods (nats)."""
    return _checked_nll(nll).mean().exp().item()


# Defined in book/text_data.md, section "Perplexity: how good is a language model?" (line 983)
def _checked_nll(nll):
    """`nll` as a float64 tensor, or a clear error if no mean makes sense."""
    try:
        nll = torch.as_tensor(nll, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"perplexity expects numbers (a tensor, list or "
                        f"float of per-token losses), got "
                        f"{type(nll).__name__}.") from err
    if nll.numel() == 0:
        raise ValueError("perplexity: nll is empty, and the mean over no "
                         "tokens is undefined; pass at least one loss.")
    if nll.isnan().any():
        raise ValueError(f"perplexity: nll holds {int(nll.isnan().sum())} "
                         f"NaN value(s) among {nll.numel()}; find where they "
                         f"come from (a diverged model, 0 * log 0).")
    if (nll < 0).any():
        raise ValueError(f"perplexity: negative log-likelihoods are >= 0, "
                         f"got {nll.min().item():.4g}. Did you pass "
                         f"log-probabilities? Negate them: "
                         f"perplexity(-log_p).")
    return nll


# Defined in book/rnn_scratch.md, section "The layer, step by step" (line 215)
class RNNScratch(Module):
    """A plain (Elman) recurrent layer.

    H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h), weights drawn from N(0, sigma^2).
    """

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()  # nn.Module's set-up comes before any attribute
        self.save_hyperparameters()  # self.num_inputs, .num_hiddens, .sigma

        def gaussian(*shape):  # a trainable tensor of N(0, sigma^2) entries
            return nn.Parameter(sigma * torch.randn(*shape))

        self.W_xh = gaussian(num_inputs, num_hiddens)   # input -> state
        self.W_hh = gaussian(num_hiddens, num_hiddens)  # state -> state
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))

    # Defined in book/rnn_fast.md, section "Fewer and larger operations" (line 325)
    def forward(self, inputs, state=None):
        """Run the recurrence over a sequence.

        inputs: (num_steps, batch_size, num_inputs) floats, or (num_steps,
        batch_size) integer token indices standing for their one-hot vectors.
        state: (batch_size, num_hiddens), or None for zeros. Returns the states
        of all steps, (num_steps, batch_size, num_hiddens), and the last state.
        """
        if inputs.is_floating_point():  # X_t W_xh + b_h for all steps at once
            XW = inputs @ self.W_xh + self.b_h
        else:  # one-hot rows times W_xh select rows: a lookup (an embedding)
            XW = F.embedding(inputs, self.W_xh + self.b_h)
        if state is None:
            state = XW.new_zeros(XW.shape[1], self.num_hiddens)
        outputs = []
        for XW_t in XW:  # only the recurrence is sequential
            # addmm(XW_t, state, W_hh) = XW_t + state @ W_hh, in one operation
            state = torch.tanh(torch.addmm(XW_t, state, self.W_hh))
            outputs.append(state)
        return torch.stack(outputs), state


# Defined in book/rnn_scratch.md, section "The layer, step by step" (line 256)
def check_len(a, n):
    """Raise AssertionError unless len(a) == n."""
    if len(a) != n:
        raise AssertionError(f"length {len(a)} != expected length {n}")


# Defined in book/rnn_scratch.md, section "The layer, step by step" (line 262)
def check_shape(a, shape):
    """Raise AssertionError unless tensor a has the given shape."""
    if tuple(a.shape) != tuple(shape):
        raise AssertionError(
            f"shape {tuple(a.shape)} != expected shape {tuple(shape)}")


# Defined in book/rnn_scratch.md, section "A language model on top" (line 336)
class RNNLMScratch(Classifier):
    """A character-level language model: a recurrent layer, then a read-out.

    The read-out maps every state to vocab_size logits, O_t = H_t W_hq + b_q.
    """

    def __init__(self, rnn, vocab_size, lr=0.01):
        super().__init__()
        self.save_hyperparameters()  # self.rnn, self.vocab_size, self.lr
        self.init_params()  # a subclass changes the read-out by overriding it

    def init_params(self):
        """W_hq (num_hiddens, vocab_size) from N(0, sigma^2), and b_q = 0."""
        read_out = (self.rnn.num_hiddens, self.vocab_size)
        self.W_hq = nn.Parameter(self.rnn.sigma * torch.randn(read_out))
        self.b_q = nn.Parameter(torch.zeros(self.vocab_size))

    # Defined in book/rnn_scratch.md, section "A language model on top" (line 360)
    def one_hot(self, X):
        """Token indices (batch_size, num_steps) -> one-hot floats, time first:
        (num_steps, batch_size, vocab_size)."""
        time_first = X.t()
        return F.one_hot(time_first, num_classes=self.vocab_size).float()

    # Defined in book/rnn_scratch.md, section "A language model on top" (line 368)
    def output_layer(self, rnn_outputs):
        """States (num_steps, batch_size, num_hiddens) -> logits, batch first:
        (batch_size, num_steps, vocab_size)."""
        H = rnn_outputs.transpose(0, 1)  # batch first, like the labels
        return H @ self.W_hq + self.b_q  # one product for all time steps

    # Defined in book/rnn_fast.md, section "Fewer and larger operations" (line 348)
    def forward(self, X, state=None):
        """Logits (batch_size, num_steps, vocab_size) for token indices X.

        The layer gets the indices, time first, and looks up rows of W_xh.
        """
        rnn_outputs, _ = self.rnn(X.t(), state)
        return self.output_layer(rnn_outputs)

    # Defined in book/rnn_scratch.md, section "Training on perplexity" (line 476)
    def training_step(self, batch):
        *inputs, labels = batch
        nll = self.loss(self(*inputs), labels)  # mean over all labels
        self.plot("ppl", nll, True, weight=labels.numel(), transform=torch.exp)
        return nll

    # Defined in book/rnn_scratch.md, section "Training on perplexity" (line 484)
    def validation_step(self, batch):
        *inputs, labels = batch
        nll = self.loss(self(*inputs), labels)
        self.plot("ppl", nll, False, weight=labels.numel(), transform=torch.exp)

    # Defined in book/rnn_fast.md, section "A `predict` that checks its input" (line 628)
    def predict(self, prefix, num_preds, vocab, device=None, temperature=0,
                generator=None):
        """`prefix` (lower-cased) followed by `num_preds` generated characters.

        temperature=0 picks the most likely character (greedy decoding);
        temperature > 0 samples from softmax(logits / temperature), drawing from
        `generator` (a torch.Generator) if one is given.
        """
        chars = self.check_predict_args(prefix, num_preds, vocab, temperature,
                                        generator)
        if device is None:
            device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                X = torch.tensor(vocab[chars], device=device).reshape(-1, 1)
                outputs, state = self.rnn(X, None)  # warm-up: indices, time first
                tokens = []
                for _ in range(num_preds):
                    logits = self.output_layer(outputs[-1:])[0, -1]
                    logits[vocab.unk] = -math.inf  # never write <unk>
                    if temperature == 0:
                        token = logits.argmax().reshape(1)
                    else:
                        scaled = (logits - logits.max()) / temperature
                        probs = F.softmax(scaled, dim=0)
                        if generator is not None:  # draw on the generator's device
                            probs = probs.to(generator.device)
                        token = torch.multinomial(probs, 1, generator=generator)
                        token = token.to(device)
                    tokens.append(token)
                    outputs, state = self.rnn(token.reshape(1, 1), state)
        finally:
            self.train(was_training)
        new = torch.cat(tokens).tolist() if tokens else []
        return "".join(chars) + "".join(vocab.idx_to_token[i] for i in new)

    # Defined in book/rnn_fast.md, section "A `predict` that checks its input" (line 577)
    def check_predict_args(self, prefix, num_preds, vocab, temperature=0,
                           generator=None):
        """Raise a clear error for arguments `predict` cannot use, before it runs.

        Returns the prefix as a list of lower-cased characters.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, not {type(prefix).__name__}")
        if not prefix:
            raise ValueError("the prefix is empty: the model needs at least one "
                             "character to read")
        if isinstance(num_preds, bool) or not isinstance(num_preds,
                                                         numbers.Integral):
            raise TypeError(f"num_preds must be an int, not {num_preds!r}")
        if num_preds < 0:
            raise ValueError(f"num_preds must be >= 0, not {num_preds}")
        if isinstance(temperature, bool) or not isinstance(temperature,
                                                           numbers.Real):
            raise TypeError(f"temperature must be a number, not {temperature!r}")
        tiny, huge = torch.finfo(torch.float32).tiny, torch.finfo(torch.float32).max
        if not (temperature == 0 or tiny <= temperature <= huge):
            # the logits are float32: dividing by more than `huge` gives inf/inf
            raise ValueError(f"temperature must be 0 (greedy) or a number between "
                             f"{tiny:.1e} and {huge:.1e} (sampling), not "
                             f"{temperature}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, not "
                            f"{type(generator).__name__}")
        if len(vocab) != self.vocab_size:
            raise ValueError(f"vocab has {len(vocab)} tokens, the model "
                             f"{self.vocab_size}: use the vocabulary of the "
                             f"data the model was trained on")
        chars = list(prefix.lower())  # the training text is lower case
        unknown = sorted({c for c in chars if c not in vocab.token_to_idx})
        if unknown:
            known = "".join(t for t in vocab.idx_to_token if len(t) == 1)
            raise ValueError(f"the vocabulary has no token for "
                             f"{', '.join(map(repr, unknown))} in the prefix "
                             f"{prefix!r}; it knows only {known!r} and upper case")
        with torch.no_grad():
            finite = all(torch.isfinite(p).all() for p in self.parameters())
        if not finite:
            raise RuntimeError(
                "the model's parameters are not all finite (NaN or inf): its "
                "training diverged. Train again with a smaller learning rate or "
                "with gradient clipping (Trainer(..., gradient_clip_val=1)); "
                "after fit, trainer.skipped_steps counts the skipped steps.")
        return chars


# Defined in book/rnn_scratch.md, section "A language model on top" (line 414)
def get_params(vocab_size, num_hiddens, device):
    """The tensors [W_xh, W_hh, b_h, W_hq, b_q] of an RNN language model.

    Weights from N(0, 0.01^2), biases zero; autograd tracks all five.
    """
    shapes = [(vocab_size, num_hiddens), (num_hiddens, num_hiddens),
              (num_hiddens,), (num_hiddens, vocab_size), (vocab_size,)]
    params = []
    for shape in shapes:  # matrices get noise, vectors (biases) start at 0
        if len(shape) == 2:
            tensor = 0.01 * torch.randn(shape, device=device)
        else:
            tensor = torch.zeros(shape, device=device)
        params.append(tensor.requires_grad_())
    return params


# Defined in book/rnn_scratch.md, section "A language model on top" (line 431)
def init_rnn_state(batch_size, num_hiddens, device):
    """The state before the first step: a 1-tuple (H_0,), H_0 all zeros."""
    return (torch.zeros(batch_size, num_hiddens, device=device),)


# Defined in book/rnn_scratch.md, section "A language model on top" (line 436)
def rnn(inputs, state, params):
    """Run an RNN language model given as a list of tensors.

    inputs: one-hot (num_steps, batch_size, vocab_size); state: (H,).
    Returns the logits as rows (num_steps * batch_size, vocab_size), time
    step after time step, and the last state (H,).
    """
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, states = state[0], []
    for X_t in inputs:
        H = torch.tanh(X_t @ W_xh + H @ W_hh + b_h)
        states.append(H)
    logits = torch.stack(states) @ W_hq + b_q  # read out all steps at once
    return logits.flatten(0, 1), (H,)


# Defined in book/rnn_scratch.md, section "Backpropagation through time and gradient ..." (line 536)
def clip_by_global_norm(grads, theta):
    """Rescale the tensors `grads` in place to a global L2 norm <= theta.

    Returns the norm before clipping."""
    norm = torch.cat([g.flatten() for g in grads]).norm()
    if norm > theta:  # a Python decision: it needs the norm's value
        for g in grads:
            g.mul_(theta / norm)
    return norm


# Defined in book/rnn_scratch.md, section "Truncated backpropagation through time" (line 1017)
class StatefulRNNLMScratch(RNNLMScratch):
    """RNNLMScratch that carries its hidden state from minibatch to minibatch.

    For sequential partitioning. The last state of minibatch k, detached from
    the graph (truncated backpropagation through time), is the first state of
    minibatch k + 1. Training and validation keep separate states; both
    restart when the mode changes (train()/eval()).
    """

    def __init__(self, rnn, vocab_size, lr=0.01):
        super().__init__(rnn, vocab_size, lr)
        self.states = {}

    def train(self, mode=True):
        self.states = {}  # a new pass over the text begins
        return super().train(mode)

    # Defined in book/rnn_fast.md, section "Fewer and larger operations" (line 358)
    def carried_step(self, batch, train):
        """One minibatch from the carried state; the layer gets token indices."""
        X, Y = batch
        state = self.states.get(train)
        # the batch axis of the state is the second to last: (batch, hidden)
        # here, (layers, batch, hidden) for nn.RNN's state
        if state is not None and state.shape[-2] != X.shape[0]:
            state = None  # a minibatch of another size cannot continue the rows
        rnn_outputs, last_state = self.rnn(X.t(), state)
        self.states[train] = last_state.detach()  # the gradient stops here
        loss = self.loss(self.output_layer(rnn_outputs), Y)
        self.plot("ppl", loss, train, weight=Y.numel(), transform=torch.exp)
        return loss

    def training_step(self, batch):
        return self.carried_step(batch, train=True)

    def validation_step(self, batch):
        self.carried_step(batch, train=False)


# Defined in book/rnn_concise.md, section "The model in two small classes" (line 132)
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


# Defined in book/rnn_concise.md, section "The model in two small classes" (line 162)
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


# Defined in book/gradient_clipping.md, section "Measuring gradients" (line 533)
def grad_norm(parameters):
    """The global L2 norm of the gradients of `parameters`.

    The norm of all gradients concatenated, the number clipping compares with
    theta, computed as the norm of the per-tensor norms. Parameters without a
    gradient are skipped (zero if none has one). Returns a tensor on the
    parameters' device, so that nothing waits for a GPU.
    """
    params = list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else None)
    per_tensor = torch.stack([torch.linalg.vector_norm(g) for g in grads])
    return torch.linalg.vector_norm(per_tensor)


# Defined in book/gradient_clipping.md, section "Measuring gradients" (line 554)
class GradNormTrainer(Trainer):
    """A Trainer that records the global gradient norm of every step.

    After fit, `grad_norms` is a CPU tensor with one norm per training step,
    taken before clipping (inf or nan where the gradient was not finite).
    The trainer calls clip_gradients only when gradient_clip_val > 0:
    gradient_clip_val=math.inf records without clipping; 0 records nothing.
    Either way Trainer.update still skips (and counts) steps whose loss or
    gradient norm is not finite, so math.inf is not plain SGD in a run that
    meets such a step.
    """

    def fit(self, model, data):
        self._norms = []
        try:
            super().fit(model, data)
        finally:  # also after an interrupted run
            self.grad_norms = (torch.stack(self._norms).float().cpu()
                               if self._norms else torch.zeros(0))

    def clip_gradients(self, grad_clip_val, model):
        self._norms.append(grad_norm(model.parameters()).detach())
        if math.isfinite(grad_clip_val):
            super().clip_gradients(grad_clip_val, model)


# Defined in book/gradient_clipping.md, section "Experiment 2: gradients through time" (line 1095)
def state_gradients(model, X, Y):
    """States H_1..H_T of model.rnn on X, and d loss_T / d H_t for every t.

    X, Y: (batch_size, T) token indices and labels; loss_T is the loss of the
    prediction at the last step only. Returns (states, grads), both detached
    and (T, batch_size, num_hiddens), with grads[t - 1] = d loss_T / d H_t.
    The layer runs one step at a time, so that each state is a tensor of its
    own whose gradient autograd keeps (retain_grad). Afterwards the
    parameters' .grad hold the gradients of loss_T.
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


# Defined in book/gated_units.md, section "Both cells from scratch" (line 362)
def gate_parameters(num_inputs, num_hiddens, sigma):
    """(W_x, W_h, b) of one gate: N(0, sigma^2) weights and a zero bias."""
    return (nn.Parameter(sigma * torch.randn(num_inputs, num_hiddens)),
            nn.Parameter(sigma * torch.randn(num_hiddens, num_hiddens)),
            nn.Parameter(torch.zeros(num_hiddens)))


# Defined in book/gated_units.md, section "Both cells from scratch" (line 369)
def input_terms(inputs, W_x, b):
    """X_t W_x + b for every step: (num_steps, batch_size, W_x's columns).

    inputs: (num_steps, batch_size, num_inputs) floats, or (num_steps,
    batch_size) token indices standing for one-hot vectors (rows of W_x).
    """
    if inputs.is_floating_point():
        return inputs @ W_x + b
    return F.embedding(inputs, W_x + b)


# Defined in book/gated_units.md, section "Both cells from scratch" (line 380)
class GRUScratch(Module):
    """A gated recurrent unit layer (the reset gate applied as in nn.GRU).

    Z_t = sigmoid(X_t W_xz + H_{t-1} W_hz + b_z)           update gate
    R_t = sigmoid(X_t W_xr + H_{t-1} W_hr + b_r)           reset gate
    H~_t = tanh(X_t W_xh + R_t * (H_{t-1} W_hh) + b_h)     candidate
    H_t = Z_t * H_{t-1} + (1 - Z_t) * H~_t
    """

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W_xz, self.W_hz, self.b_z = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)
        self.W_xr, self.W_hr, self.b_r = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)
        self.W_xh, self.W_hh, self.b_h = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)

    def forward(self, inputs, state=None):
        """inputs as for RNNScratch -> (states of all steps, last state)."""
        n = self.num_hiddens
        XW = input_terms(inputs,
                         torch.cat([self.W_xz, self.W_xr, self.W_xh], 1),
                         torch.cat([self.b_z, self.b_r, self.b_h]))
        XW_gates, XW_cand = XW[:, :, :2 * n], XW[:, :, 2 * n:]  # split once
        W_h_gates = torch.cat([self.W_hz, self.W_hr], 1)  # (n, 2n)
        H = XW.new_zeros(XW.shape[1], n) if state is None else state
        outputs = []
        for XW_g, XW_c in zip(XW_gates, XW_cand):  # (batch_size, 2n), (.., n)
            # addmm(A, H, W) = A + H @ W, in one operation
            Z, R = torch.sigmoid(torch.addmm(XW_g, H, W_h_gates)).chunk(2, 1)
            H_tilde = torch.tanh(XW_c + R * (H @ self.W_hh))
            H = H_tilde + Z * (H - H_tilde)  # = Z * H + (1 - Z) * H_tilde
            outputs.append(H)
        return torch.stack(outputs), H


# Defined in book/gated_units.md, section "Both cells from scratch" (line 418)
class LSTMScratch(Module):
    """A long short-term memory layer; its state is the pair (H, C).

    I_t, F_t, O_t = sigmoid(X_t W_x* + H_{t-1} W_h* + b_*)   input, forget,
    C~_t = tanh(X_t W_xc + H_{t-1} W_hc + b_c)               output gates
    C_t = F_t * C_{t-1} + I_t * C~_t,   H_t = O_t * tanh(C_t)
    """

    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.W_xi, self.W_hi, self.b_i = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)
        self.W_xf, self.W_hf, self.b_f = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)
        self.W_xo, self.W_ho, self.b_o = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)
        self.W_xc, self.W_hc, self.b_c = gate_parameters(num_inputs,
                                                         num_hiddens, sigma)

    def forward(self, inputs, H_C=None):
        """inputs as for RNNScratch; H_C: the pair (H, C), or None for zeros.
        Returns the hidden states of all steps and the last pair (H, C)."""
        n = self.num_hiddens
        XW = input_terms(inputs, torch.cat(
            [self.W_xi, self.W_xf, self.W_xo, self.W_xc], 1),
            torch.cat([self.b_i, self.b_f, self.b_o, self.b_c]))
        XW_gates, XW_cand = XW[:, :, :3 * n], XW[:, :, 3 * n:]  # split once
        W_h_gates = torch.cat([self.W_hi, self.W_hf, self.W_ho], 1)  # (n, 3n)
        if H_C is None:
            H = C = XW.new_zeros(XW.shape[1], n)
        elif isinstance(H_C, (tuple, list)) and len(H_C) == 2:
            H, C = H_C
        else:
            raise TypeError("LSTMScratch's state is the pair (H, C) that it "
                            "returned, or None for zeros; got "
                            f"{type(H_C).__name__}")
        outputs = []
        for XW_g, XW_c in zip(XW_gates, XW_cand):  # (batch_size, 3n), (.., n)
            gates = torch.sigmoid(torch.addmm(XW_g, H, W_h_gates))
            I, F_t, O = gates.chunk(3, 1)
            C = F_t * C + I * torch.tanh(torch.addmm(XW_c, H, self.W_hc))
            H = O * torch.tanh(C)
            outputs.append(H)
        return torch.stack(outputs), (H, C)
