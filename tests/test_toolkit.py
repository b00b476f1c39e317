"""Tests of the training toolkit (book/toolkit.md), through the generated library."""

import math
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from toy_regression import Linear, Regression

import d2l_lib as d2l

# ---------------------------------------------------------------------------------------
# A tiny problem: linear regression on synthetic data


def quiet_fit(max_epochs=3, seed=0, **trainer_args):
    d2l.set_seed(seed)
    data, model = Regression(), Linear()
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=max_epochs, **trainer_args)
    trainer.fit(model, data)
    return trainer, model


# ---------------------------------------------------------------------------------------
# add_to_class, save_hyperparameters


def test_add_to_class_adds_a_method_also_to_existing_objects():
    class A:
        def __init__(self):
            self.x = 1

    a = A()

    @d2l.add_to_class(A)
    def double(self):
        return 2 * self.x

    assert a.double() == 2 and A().double() == 2
    assert double is None  # the method lives on the class only


def test_save_hyperparameters_keeps_arguments_only():
    class B(d2l.HyperParameters):
        def __init__(self, a, b=2, *rest, c=3, skip=None, **extra):
            local = 5  # noqa: F841  (a local variable, not an argument)
            self.save_hyperparameters(ignore=["skip"])

    b = B(1, 4, 7, c=6, skip="x", d=8)
    assert b.hparams == {"a": 1, "b": 4, "rest": (7,), "c": 6, "d": 8}
    assert (b.a, b.b, b.c, b.d) == (1, 4, 6, 8)
    assert not hasattr(b, "skip") and not hasattr(b, "local")


def test_save_hyperparameters_in_subclass_merges_with_parent():
    model = Linear(lr=0.5)
    assert model.lr == 0.5 and model.plot_train_per_epoch == 2
    assert model.hparams == {"plot_train_per_epoch": 2, "plot_valid_per_epoch": 1, "lr": 0.5}
    board = d2l.ProgressBoard(xlabel="epoch", yscale="log")
    assert board.xlabel == "epoch" and board.yscale == "log" and board.display is True


# ---------------------------------------------------------------------------------------
# devices and seeds


def test_device_helpers():
    assert d2l.cpu() == torch.device("cpu")
    assert d2l.gpu(1) == torch.device("cuda:1")
    assert d2l.num_gpus() == torch.cuda.device_count()
    assert len(d2l.try_all_gpus()) == d2l.num_gpus()
    if d2l.num_gpus() == 0:
        assert d2l.try_gpu() == d2l.cpu() and d2l.try_all_gpus() == []


def test_trainer_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert d2l.Trainer(max_epochs=1).device == d2l.cpu()
    assert d2l.Trainer(max_epochs=1, num_gpus=1).device == d2l.cpu()  # no GPU: fall back
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert d2l.Trainer(max_epochs=1).device == d2l.cpu()
    trainer = d2l.Trainer(max_epochs=1, num_gpus=2)
    assert trainer.device == torch.device("cuda:0") and len(trainer.gpus) == 2


def test_set_seed_repeats_random_numbers():
    def draw():
        return random.random(), np.random.rand(3), torch.randn(4)

    d2l.set_seed(42)
    a = draw()
    d2l.set_seed(42)
    b = draw()
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    d2l.set_seed(43)
    assert not torch.equal(draw()[2], a[2])


def test_set_seed_repeats_training():
    first, m1 = quiet_fit(seed=1)
    second, m2 = quiet_fit(seed=1)
    other, _ = quiet_fit(seed=2)
    assert first.history == second.history
    assert torch.equal(m1.net.weight, m2.net.weight)
    assert other.history != first.history


# ---------------------------------------------------------------------------------------
# the trainer


class Tensors(d2l.DataModule):
    """A DataModule that declares its batch size, as get_tensorloader needs."""

    def __init__(self, batch_size):
        super().__init__()
        self.save_hyperparameters()


def _tensorloader(batch_size, tensors, train):
    return Tensors(batch_size).get_tensorloader(tensors, train)


def test_tensorloader_without_a_batch_size_says_how_to_fix_it():
    with pytest.raises(AttributeError, match=r"self\.batch_size.*save_hyperparameters"):
        d2l.DataModule().get_tensorloader((torch.arange(4),), train=True)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        Tensors(0).get_tensorloader((torch.arange(4),), train=True)
    with pytest.raises(TypeError, match="got 2.5"):
        Tensors(2.5).get_tensorloader((torch.arange(4),), train=True)


def test_tensorloader_gives_the_batches_of_a_plain_dataloader():
    """Whole-batch indexing changes the speed, not the examples, their order or the RNG use."""
    X = torch.arange(2 * 103).reshape(103, 2)
    y = torch.arange(103)
    for train in (True, False):
        d2l.set_seed(3)
        plain = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), 10,
                                                 shuffle=train))
        after_plain = torch.rand(1)
        d2l.set_seed(3)
        ours = list(_tensorloader(10, (X, y), train))
        assert torch.equal(torch.rand(1), after_plain)  # same draws from the global generator
        assert len(ours) == len(plain) == 11  # the last minibatch is partial, not dropped
        for (xa, ya), (xb, yb) in zip(plain, ours):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(torch.cat([b for _, b in ours]), y)  # validation keeps the order


def test_tensorloader_shuffles_differently_each_epoch():
    d2l.set_seed(0)
    loader = _tensorloader(50, (torch.arange(100),), train=True)
    first, second = [torch.cat([b for (b,) in loader]) for _ in range(2)]
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(100))
    assert not torch.equal(first, second)


def test_loss_falls_and_history_has_one_float_per_epoch():
    trainer, _ = quiet_fit(max_epochs=4)
    h = trainer.history
    assert set(h) == {"train_loss", "val_loss"}
    assert all(len(v) == 4 for v in h.values())
    assert all(type(x) is float for v in h.values() for x in v)
    assert h["train_loss"][-1] < h["train_loss"][0] / 100
    assert h["val_loss"][-1] < 1e-3


def test_history_is_the_epoch_mean_of_logged_values():
    logged = []

    class Logged(Linear):
        def training_step(self, batch):
            loss = super().training_step(batch)
            logged.append(loss.item())
            return loss

    d2l.set_seed(0)
    model = Logged()
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=2)
    trainer.fit(model, Regression())
    per_epoch = len(logged) // 2
    expected = [np.mean(logged[:per_epoch]), np.mean(logged[per_epoch:])]
    assert trainer.history["train_loss"] == pytest.approx(expected, rel=1e-6)


def test_backward_runs_with_grad_enabled_and_clip_hook_is_called(monkeypatch):
    calls = []

    def fake_clip(self, grad_clip_val, model):
        calls.append((grad_clip_val, torch.is_grad_enabled(),
                      all(p.grad is not None for p in model.parameters())))

    monkeypatch.setattr(d2l.Trainer, "clip_gradients", fake_clip, raising=False)
    trainer, _ = quiet_fit(max_epochs=2, gradient_clip_val=1.5)
    assert len(calls) == 2 * trainer.num_train_batches
    assert all(c == (1.5, True, True) for c in calls)

    calls.clear()
    quiet_fit(max_epochs=1)  # gradient_clip_val=0: no clipping
    assert calls == []


def test_clipping_without_the_hook_says_where_it_comes_from(monkeypatch):
    if hasattr(d2l.Trainer, "clip_gradients"):
        monkeypatch.delattr(d2l.Trainer, "clip_gradients")
    with pytest.raises(NotImplementedError, match="clip_gradients"):
        quiet_fit(max_epochs=1, gradient_clip_val=1)


def test_validation_runs_in_eval_mode_without_grad():
    seen = []

    class Watched(Linear):
        def validation_step(self, batch):
            seen.append((self.training, torch.is_grad_enabled()))
            super().validation_step(batch)

    model = Watched()
    model.board.display = False
    d2l.Trainer(max_epochs=1).fit(model, Regression())
    assert seen and all(s == (False, False) for s in seen)


def test_plot_outside_fit_does_nothing():
    model = Linear()
    X, y = torch.randn(4, 2), torch.randn(4, 1)
    loss = model.training_step((X, y))  # no trainer yet: nothing to log into
    assert loss.ndim == 0


def test_classifier_loss_over_sequences():
    d2l.set_seed(0)
    logits = torch.randn(2, 3, 5)
    labels = torch.randint(0, 5, (2, 3))
    clf = d2l.Classifier()
    per_token = clf.loss(logits, labels, averaged=False)
    assert per_token.shape == (6,)
    manual = -F.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).reshape(-1)
    assert torch.allclose(per_token, manual)
    assert torch.allclose(clf.loss(logits, labels), manual.mean())
    assert torch.allclose(clf.loss(logits[:, 0], labels[:, 0]), manual.reshape(2, 3)[:, 0].mean())


# ---------------------------------------------------------------------------------------
# the progress board


def test_board_prints_one_line_per_epoch_outside_jupyter(capsys):
    assert not d2l.in_notebook()
    d2l.set_seed(0)
    model = Linear()
    assert model.board.live is False
    trainer = d2l.Trainer(max_epochs=3)
    trainer.fit(model, Regression())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):  # reader-facing names
        assert line.startswith(f"epoch {epoch}/3: train loss ")
        assert ", validation loss " in line
    assert model.board.fig is None  # nothing drawn outside Jupyter


def test_board_display_off_is_silent_but_history_is_kept(capsys):
    trainer, model = quiet_fit(max_epochs=2)
    assert capsys.readouterr().out == ""
    assert len(trainer.history["val_loss"]) == 2
    assert model.board.curves == {}


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, obj):
        self.log.append(("update", obj))


def test_board_updates_fixed_lines_and_one_display(monkeypatch):
    import IPython.display

    log = []

    def fake_display(obj, display_id=False):
        log.append(("display", obj))
        return FakeHandle(log) if display_id else None

    monkeypatch.setattr(IPython.display, "display", fake_display)
    board = d2l.ProgressBoard(xlabel="epoch")
    board.live = True
    board.redraw_every, board.draw_budget = 0.0, 1.0  # redraw at every averaged point
    for i in range(60):
        board.draw(i / 10, torch.tensor(1.0 / (i + 1)), "train_loss", every_n=3)
        if i % 10 == 9:
            board.draw(i / 10, 1.5 / (i + 1), "val_loss", every_n=1)
    board.flush()
    assert board.redraws > 20
    assert len(board.axes.lines) == 2  # one Line2D per curve, however many redraws
    assert len(board.curves["train_loss"]["x"]) == 20
    assert len(board.curves["val_loss"]["y"]) == 6
    line = board.lines["train_loss"]
    assert len(line.get_xdata()) == 20
    assert [kind for kind, _ in log].count("display") == 1  # later images replace the first
    assert all(kind == "update" for kind, _ in log[1:])
    png = log[-1][1].data
    assert png.startswith(b"\x89PNG") and len(png) < 100_000


def test_board_throttles_redraws(monkeypatch):
    shown = []
    board = d2l.ProgressBoard()
    board.live = True
    monkeypatch.setattr(board, "show", lambda png: shown.append(png))
    for i in range(2000):  # far faster than one redraw per 0.5 s
        board.draw(i, float(i), "y")
    assert board.redraws <= 2
    board.flush()
    assert len(shown) == board.redraws >= 1
    assert board.lines["y"].get_xdata()[-1] == 1999  # the final draw shows every point
    board.flush()  # nothing new: no redraw
    assert len(shown) == board.redraws


def test_board_averages_every_n_points():
    board = d2l.ProgressBoard()
    for i in range(10):
        board.draw(i, torch.tensor(float(i)), "a", every_n=4)
    curve = board.curves["a"]
    assert curve["x"] == [1.5, 5.5]  # points 8 and 9 wait for two more
    assert torch.stack(curve["new"]).tolist() == [1.5, 5.5]


def test_board_names_curves_and_axes_for_a_reader(monkeypatch):
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=False: None)
    board = d2l.ProgressBoard(xlabel="epoch")
    board.live = True
    for label in ("train_ppl", "val_ppl"):
        board.draw(1, 2.0, label)
    board.redraw()
    legend = [t.get_text() for t in board.axes.get_legend().get_texts()]
    assert legend == ["train perplexity", "validation perplexity"]
    assert board.axes.get_ylabel() == "perplexity"
    assert board.axes.get_xlabel() == "epoch"
    assert set(board.curves) == {"train_ppl", "val_ppl"}  # keys unchanged
    board.draw(1, 0.5, "val_acc")
    board.draw(1, 0.5, "sin")  # a label without a split is shown as it is
    board.redraw()
    legend = [t.get_text() for t in board.axes.get_legend().get_texts()]
    assert legend[2:] == ["validation accuracy", "sin"]
    assert board.axes.get_ylabel() == "perplexity, accuracy"
    board.ylabel = "my label"  # an explicit label wins
    board.redraw()
    assert board.axes.get_ylabel() == "my label"


def test_module_board_is_labelled_epoch_by_default():
    assert Linear().board.xlabel == "epoch"


# ---------------------------------------------------------------------------------------
# one definition: the epoch value is the mean over every label of the split


class Sequences(d2l.DataModule):
    """10 training and 10 validation sequences of 3 tokens, in minibatches of 4: the
    last minibatch of each split holds 2 sequences."""

    def __init__(self, batch_size=4, vocab=5):
        super().__init__()
        self.save_hyperparameters()
        self.X = torch.randint(0, vocab, (20, 3))
        self.Y = torch.randint(0, vocab, (20, 3))

    def get_dataloader(self, train):
        part = slice(0, 10) if train else slice(10, 20)
        return self.get_tensorloader((self.X, self.Y), train, part)


class TinyLM(d2l.Classifier):
    """Token embedding -> logits; logs the perplexity as the language models do."""

    def __init__(self, vocab=5, lr=0.5, log_ppl=True):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Embedding(vocab, vocab)

    def training_step(self, batch):
        if not self.log_ppl:
            return super().training_step(batch)
        loss = self.loss(self(batch[0]), batch[1])
        self.plot("ppl", loss, True, weight=batch[1].numel(), transform=torch.exp)
        return loss

    def validation_step(self, batch):
        if not self.log_ppl:
            return super().validation_step(batch)
        loss = self.loss(self(batch[0]), batch[1])
        self.plot("ppl", loss, False, weight=batch[1].numel(), transform=torch.exp)


def _exact_split_nll(model, data, rows):
    with torch.no_grad():
        return model.loss(model(data.X[rows]), data.Y[rows]).item()  # mean over all tokens


def test_reported_val_perplexity_is_exp_of_the_mean_nll_of_the_split():
    d2l.set_seed(0)
    data, model = Sequences(), TinyLM()
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=2)
    trainer.fit(model, data)
    assert [len(b[0]) for b in data.val_dataloader()] == [4, 4, 2]  # a short last batch
    exact = math.exp(_exact_split_nll(model, data, slice(10, 20)))
    assert trainer.history["val_ppl"][-1] == pytest.approx(exact, rel=1e-6)
    with torch.no_grad():  # the data chapter's definition, on every token of the split
        nll = model.loss(model(data.X[10:]), data.Y[10:], averaged=False)
    assert trainer.history["val_ppl"][-1] == pytest.approx(d2l.perplexity(nll), rel=1e-6)
    # the mean of per-minibatch perplexities is another, larger number
    per_batch = []
    with torch.no_grad():
        for X, Y in data.val_dataloader():
            per_batch.append(math.exp(model.loss(model(X), Y).item()))
    assert np.mean(per_batch) > exact * (1 + 1e-4)



def test_board_draws_what_history_records(monkeypatch):
    """The board's last point of a curve that plots one point per epoch is history's
    last value: transform of the weighted mean, not a mean of minibatch perplexities."""
    d2l.set_seed(0)
    data, model = Sequences(), TinyLM()
    model.plot_train_per_epoch = 1  # 3 training minibatches per point: one epoch
    model.board.live = True  # draw lines, but show nothing
    monkeypatch.setattr(model.board, "show", lambda png: None)
    trainer = d2l.Trainer(max_epochs=3)
    trainer.fit(model, data)
    for label in ("train_ppl", "val_ppl"):
        drawn = float(model.board.lines[label].get_ydata()[-1])
        recorded = trainer.history[label][-1]
        assert f"{drawn:.4f}" == f"{recorded:.4f}", label  # to the printed digits
        assert drawn == pytest.approx(recorded, rel=1e-6)
        assert len(model.board.lines[label].get_ydata()) == 3  # one point per epoch
    with torch.no_grad():  # what the board used to draw: a mean of perplexities
        per_batch = [math.exp(model.loss(model(X), Y).item())
                     for X, Y in data.val_dataloader()]
    assert abs(np.mean(per_batch) - trainer.history["val_ppl"][-1]) > 1e-4


def test_board_point_is_transform_of_the_weighted_mean():
    board = d2l.ProgressBoard()
    for value, weight in ((1.0, 3), (2.0, 1)):
        board.draw(0, torch.tensor(value), "train_ppl", every_n=2, weight=weight,
                   transform=torch.exp)
    (point,) = board.curves["train_ppl"]["new"]
    assert point.item() == pytest.approx(math.exp((3 * 1.0 + 1 * 2.0) / 4), rel=1e-6)


def _fit_warnings(lr, max_epochs=3):
    d2l.set_seed(0)
    data, model = Sequences(), TinyLM(lr=lr)
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=max_epochs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, data)
    return trainer, [str(w.message) for w in caught if w.category is RuntimeWarning]


def test_perplexity_that_overflows_warns_once_per_fit():
    """A huge learning rate: every loss stays finite, so no step is skipped, but the
    epoch's perplexity, exp of a mean loss far above 88.7 nats, overflows float32."""
    trainer, messages = _fit_warnings(lr=1e6)
    assert int(trainer.skipped_steps) == 0
    assert math.isinf(trainer.history["train_ppl"][-1])
    assert len(messages) == 1  # once per fit, although several epochs overflow
    message = messages[0]
    assert sum(math.isinf(v) for v in trainer.history["train_ppl"]) >= 2
    assert re.match(r"training diverged by epoch \d: trainer.history\['(train|val)_ppl'\] "
                    r"is inf: exp of the epoch's mean, [0-9.e+]+, is too large", message)
    assert "no step was skipped" in message and "lr=1000000.0" in message
    assert "Lower the learning rate or clip the gradients" in message
    model = TinyLM(lr=1e6)  # the same trainer, a new fit: it may warn again
    model.board.display = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, Sequences())
    assert len([w for w in caught if w.category is RuntimeWarning]) == 1


def test_a_sensible_run_gives_no_divergence_warning():
    trainer, messages = _fit_warnings(lr=0.5)
    assert messages == []
    assert all(math.isfinite(v) for v in trainer.history["train_ppl"])


def test_default_steps_report_the_mean_loss_over_every_label_of_the_split():
    d2l.set_seed(0)
    data, model = Sequences(), TinyLM(log_ppl=False)
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=1)
    trainer.fit(model, data)
    exact = _exact_split_nll(model, data, slice(10, 20))
    assert trainer.history["val_loss"][-1] == pytest.approx(exact, rel=1e-6)
    with torch.no_grad():
        hits = (model(data.X[10:]).argmax(-1) == data.Y[10:]).float().mean().item()
    assert trainer.history["val_acc"][-1] == pytest.approx(hits, rel=1e-6)


def test_trainer_runs_exactly_the_plain_pytorch_loop():
    d2l.set_seed(0)
    data = Regression(num_train=100, num_val=20, batch_size=32)  # last batch: 4
    net = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.X[:100], data.y[:100]), 32, shuffle=True)
    val_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.X[100:], data.y[100:]), 32)
    for _ in range(3):
        for X, y in loader:
            loss = F.mse_loss(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():  # a DataLoader draws a seed even without shuffling
            for X, y in val_loader:
                F.mse_loss(net(X), y)
    d2l.set_seed(0)
    data = Regression(num_train=100, num_val=20, batch_size=32)
    model = Linear(lr=0.1)
    model.board.display = False
    d2l.Trainer(max_epochs=3).fit(model, data)
    assert torch.equal(model.net.weight, net.weight) and torch.equal(model.net.bias, net.bias)


# ---------------------------------------------------------------------------------------
# bad arguments and diverging training (issue 19)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"max_epochs": -2}, ValueError, r"max_epochs=-2.*>= 1.*max_epochs=10"),
    ({"max_epochs": 0}, ValueError, r"max_epochs, the number of passes over the data, must be >= 1, got 0"),
    ({"max_epochs": 2.5}, TypeError, r"max_epochs=2\.5.*whole number.*float"),
    ({"max_epochs": "3"}, TypeError, r"whole number.*str"),
    ({"max_epochs": True}, TypeError, r"whole number.*bool"),
    ({"max_epochs": None}, TypeError, r"whole number"),
    ({"max_epochs": 1, "num_gpus": -1}, ValueError, r"num_gpus=-1.*>= 0"),
    ({"max_epochs": 1, "num_gpus": 0.5}, TypeError, r"num_gpus.*whole number"),
    ({"max_epochs": 1, "gradient_clip_val": -1}, ValueError, r"gradient_clip_val=-1.*>= 0"),
    ({"max_epochs": 1, "gradient_clip_val": float("nan")}, ValueError, r"nan.*>= 0"),
    ({"max_epochs": 1, "gradient_clip_val": "1"}, TypeError, r"threshold.*str"),
    ({"max_epochs": 1, "stop_on_nonfinite": "yes"}, TypeError, r"True or False"),
])
def test_trainer_rejects_bad_arguments_clearly(kwargs, error, words):
    with pytest.raises(error, match=words):
        d2l.Trainer(**kwargs)


def test_trainer_accepts_reasonable_arguments():
    assert d2l.Trainer(max_epochs=np.int64(3)).max_epochs == 3
    assert d2l.Trainer(max_epochs=1, gradient_clip_val=math.inf).gradient_clip_val == math.inf
    assert d2l.Trainer(max_epochs=1, gradient_clip_val=0.5, num_gpus=4).device is not None


def test_fit_with_swapped_arguments_says_so():
    with pytest.raises(TypeError, match=r"fit\(model, data\).*in that order"):
        d2l.Trainer(max_epochs=1).fit(Regression(), Linear())


def test_fit_rejects_splits_without_minibatches():
    class NoVal(Regression):
        def val_dataloader(self):
            return []

    class NoTrain(Regression):
        def train_dataloader(self):
            return []

    model = Linear()
    model.board.display = False
    with pytest.raises(ValueError, match="no validation minibatch.*return None"):
        d2l.Trainer(max_epochs=1).fit(model, NoVal())
    with pytest.raises(ValueError, match="no training minibatch"):
        d2l.Trainer(max_epochs=1).fit(model, NoTrain())

    class NoValidation(Regression):  # None: training without validation is fine
        def val_dataloader(self):
            return None

    trainer = d2l.Trainer(max_epochs=1)
    trainer.fit(model, NoValidation())
    assert set(trainer.history) == {"train_loss"}


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _fit_recording(model, data, trainer):
    """Fit, recording the parameters at the start of every training step and the
    number of warnings already issued then."""
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        original = model.training_step

        def step(batch):
            seen.append((_params(model), len(caught)))
            return original(batch)

        model.training_step = step
        trainer.fit(model, data)
    return seen, [str(w.message) for w in caught if w.category is RuntimeWarning]


def test_diverging_run_warns_at_once_keeps_finite_parameters_and_reports_at_the_end():
    d2l.set_seed(0)
    model = Linear(lr=10.0)  # far too large: the loss overflows within the first epoch
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=2)
    seen, messages = _fit_recording(model, Regression(), trainer)
    skipped = int(trainer.skipped_steps)
    assert skipped > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    first, last = messages[0], messages[-1]
    assert len(messages) == 2
    where = re.match(r"training diverged at epoch (\d), step (\d) of 8: the loss is inf", first)
    assert where
    assert "learning rate too large (lr=10.0)" in first
    assert "no gradient clipping" in first and "stop_on_nonfinite=True" in first
    assert f"{skipped} of {trainer.train_batch_idx} optimizer steps were skipped" in last
    assert "the parameters are those of the last finite step" in last
    # at once: the step after the first skipped one already saw the warning
    bad = (int(where[1]) - 1) * 8 + int(where[2]) - 1  # 0-based over the fit
    assert seen[bad][1] == 0 and seen[bad + 1][1] == 1
    # the skipped step left the parameters exactly as they were
    assert all(torch.equal(a, b) for a, b in zip(seen[bad][0], seen[bad + 1][0]))


def test_nan_weight_is_reported_not_hidden():
    d2l.set_seed(0)
    model = Linear()
    model.board.display = False
    with torch.no_grad():
        model.net.weight[0, 0] = float("nan")
    trainer = d2l.Trainer(max_epochs=2)
    _, messages = _fit_recording(model, Regression(), trainer)
    assert int(trainer.skipped_steps) == trainer.train_batch_idx == 16  # every step
    assert "the loss is nan" in messages[0]
    assert "some parameters are NOT finite" in messages[-1]
    assert torch.isfinite(model.net.bias).all()  # the bias was not touched by NaN steps


def test_stop_on_nonfinite_stops_after_the_epoch():
    d2l.set_seed(0)
    model = Linear(lr=10.0)
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=5, stop_on_nonfinite=True)
    _, messages = _fit_recording(model, Regression(), trainer)
    epoch = int(re.match(r"training diverged at epoch (\d)", messages[0])[1])
    assert epoch < 5 and len(trainer.history["train_loss"]) == epoch
    assert f"training stopped after epoch {epoch} of 5" in messages[-1]


class NaNAt(Linear):
    """A model whose loss is NaN at the training steps in `bad` (0-based, counted over
    the whole fit)."""

    def __init__(self, bad, lr=0.1, momentum=0.0):
        super().__init__(lr=lr)
        self.bad, self.momentum, self.calls = set(bad), momentum, 0

    def training_step(self, batch):
        loss = super().training_step(batch)
        if self.calls in self.bad:
            loss = loss * float("nan")
        self.calls += 1
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_skipped_step_changes_nothing_even_with_momentum(momentum):
    d2l.set_seed(0)
    model = NaNAt(bad=[3, 4], momentum=momentum)
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=1)
    seen, messages = _fit_recording(model, Regression(), trainer)
    assert int(trainer.skipped_steps) == 2
    before, after = seen[3][0], seen[5][0]  # steps 3 and 4 skipped
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not all(torch.equal(a, b) for a, b in zip(seen[5][0], seen[6][0]))
    assert "epoch 1, step 4 of 8: the loss is nan" in messages[0]
    assert "2 of 8 optimizer steps were skipped" in messages[-1]


def test_without_host_sync_plain_sgd_skips_and_warns_at_the_end_of_the_epoch(monkeypatch):
    """The GPU path (no .item() per step), forced on the CPU."""
    monkeypatch.setattr(d2l.Trainer, "checks_each_step", lambda self: False)
    d2l.set_seed(0)
    model = NaNAt(bad=[10])  # the 3rd step of epoch 2
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=2)
    seen, messages = _fit_recording(model, Regression(), trainer)
    assert int(trainer.skipped_steps) == 1
    assert all(torch.equal(a, b) for a, b in zip(seen[10][0], seen[11][0]))
    assert seen[11][1] == 0  # not at once: no host sync per step
    assert messages[0].startswith("training diverged at epoch 2, step 3 of 8")
    assert "1 of 16 optimizer steps were skipped" in messages[-1]


def test_host_sync_is_avoided_only_where_zero_gradients_skip_the_step(monkeypatch):
    trainer = d2l.Trainer(max_epochs=1)
    params = [torch.nn.Parameter(torch.zeros(1))]
    trainer.device = torch.device("cuda:0")  # only the decision is tested
    for optim, sync in ((torch.optim.SGD(params, lr=1), False),
                        (torch.optim.SGD(params, lr=1, momentum=0.9), True),
                        (torch.optim.SGD(params, lr=1, weight_decay=1e-4), True),
                        (torch.optim.Adam(params), True)):
        trainer.optim = optim
        assert trainer.checks_each_step() is sync
    trainer.device = torch.device("cpu")
    assert trainer.checks_each_step() is True


def test_clipping_and_the_trainer_count_a_skipped_step_once():
    d2l.set_seed(0)
    model = NaNAt(bad=[2])
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=2, gradient_clip_val=1.0)  # the library's clip
    _, messages = _fit_recording(model, Regression(), trainer)
    assert int(trainer.skipped_steps) == 1
    assert "gradients clipped to norm 1.0" in messages[0]
    assert int(trainer.clipped_steps) > 0


def test_counters_restart_with_each_fit():
    d2l.set_seed(0)
    model = NaNAt(bad=[1])
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=1)
    _fit_recording(model, Regression(), trainer)
    assert int(trainer.skipped_steps) == 1
    _fit_recording(model, Regression(), trainer)  # calls go on: step 1 is not hit again
    assert int(trainer.skipped_steps) == 0
    assert int(trainer.clipped_steps) == 0


# ---------------------------------------------------------------------------------------
# the chapter's own conventions (book/toolkit.md)


def _chapter_code_cells():
    text = (Path(__file__).resolve().parent.parent / "book" / "toolkit.md").read_text()
    cells = re.findall(r"^```\{code-cell\} ipython3\n(.*?)^```$", text,
                       re.MULTILINE | re.DOTALL)
    for cell in cells:
        # tags as a `:tags:` option, or in the YAML header of a figure cell
        tags = re.match(r"(?:---\n)?:?tags: \[(.*)\]\n", cell)
        yield (tags[1].split(", ") if tags else []), cell


def test_toolkit_code_fits_the_page_and_hides_its_glue():
    for tags, cell in _chapter_code_cells():
        if "google.colab" in cell:
            continue  # the generated Colab cell, removed from the page
        too_long = [line for line in cell.splitlines() if len(line) > 80]
        assert not too_long, too_long
        if "glue(" in cell and "#@save" not in cell:
            assert "remove-cell" in tags, cell
