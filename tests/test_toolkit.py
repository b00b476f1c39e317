"""Tests of the training toolkit (book/toolkit.md), through the generated library."""

import random

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


def _tensorloader(batch_size, tensors, train):
    module = d2l.DataModule()
    module.batch_size = batch_size
    return module.get_tensorloader(tensors, train)


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
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/3  train_loss ")
        assert "  val_loss " in line
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
