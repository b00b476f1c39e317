"""Tests of the gradient-clipping chapter (book/gradient_clipping.md), through the generated library.

The properties the chapter proves for clipping by the global norm: the norm is at most theta,
the direction is kept, gradients inside the ball are unchanged, and the library equals
torch.nn.utils.clip_grad_norm_; then the chapter's helpers (grad_norm, GradNormTrainer,
state_gradients), the bound ||dh_t/dh_k||_2 <= sigma_max(W_hh)^(t-k) on random small RNNs, and
the chapter's page conventions (code width, no visible glue, no build plumbing in the prose).
"""

import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from toy_regression import Linear, Regression

import d2l_lib as d2l

SHAPES = [
    [(1,)],
    [(7,)],
    [(3, 4)],
    [(28, 32), (32, 32), (32,), (32, 28), (28,)],  # the scratch language model's parameters
    [(2, 3, 4), (5,), (1, 1)],
    [(100, 3), (3,)],
]


class Params(nn.Module):
    """A module that only holds parameters of the given shapes."""

    def __init__(self, shapes):
        super().__init__()
        self.ps = nn.ParameterList(nn.Parameter(torch.zeros(shape)) for shape in shapes)


def with_random_grads(shapes, norm, seed):
    """A Params module whose gradients are random, with global norm `norm`."""
    gen = torch.Generator().manual_seed(seed)
    module = Params(shapes)
    grads = [torch.randn(p.shape, generator=gen) for p in module.parameters()]
    total = torch.cat([g.reshape(-1) for g in grads]).norm()
    for p, g in zip(module.parameters(), grads):
        p.grad = g * (norm / total)
    return module


def flat_grads(module):
    return torch.cat([p.grad.reshape(-1) for p in module.parameters()])


def clip_with_library(module, theta):
    d2l.Trainer(max_epochs=1).clip_gradients(theta, module)
    return flat_grads(module).clone()


# ---------------------------------------------------------------------------------------
# Clipping by the global norm: the properties proved in the chapter


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("norm", [1e-4, 0.3, 0.999, 1.001, 2.0, 1e4])
@pytest.mark.parametrize("theta", [0.01, 1.0, 5.0])
def test_clip_norm_direction_identity_and_pytorch(shapes, norm, theta):
    seed = hash((len(shapes), norm, theta)) % 1000
    module = with_random_grads(shapes, norm, seed)
    before = flat_grads(module).clone()
    ours = clip_with_library(module, theta)

    assert ours.norm() <= theta * (1 + 1e-5)  # 1: norm at most theta
    cosine = F.cosine_similarity(ours.double(), before.double(), dim=0).item()
    assert cosine == pytest.approx(1.0, abs=1e-6)  # 2: same direction
    if before.norm() <= theta:  # 3: inside the ball, unchanged
        assert torch.equal(ours, before)
    else:  # outside: on the sphere of radius theta
        assert ours.norm().item() == pytest.approx(theta, rel=1e-5)

    theirs_module = with_random_grads(shapes, norm, seed)
    torch.nn.utils.clip_grad_norm_(theirs_module.parameters(), max_norm=theta)
    assert torch.equal(ours, flat_grads(theirs_module))  # bit for bit


@pytest.mark.parametrize("shapes", SHAPES)
def test_clip_is_the_projection_onto_the_ball(shapes):
    """No point of the ball of radius theta is closer to g than clip(g)."""
    theta = 1.0
    module = with_random_grads(shapes, 3.0, seed=1)
    g = flat_grads(module).clone().double()
    clipped = clip_with_library(module, theta).double()
    gen = torch.Generator().manual_seed(2)
    for _ in range(50):
        v = torch.randn(g.shape, generator=gen, dtype=torch.float64)
        v = v * (theta * torch.rand((), generator=gen, dtype=torch.float64) / v.norm())
        assert (g - v).norm() >= (g - clipped).norm() - 1e-6


@pytest.mark.parametrize("theta", [1e-3, 1.0])
def test_zero_gradient_stays_zero(theta):
    module = with_random_grads(SHAPES[3], 1.0, seed=0)
    for p in module.parameters():
        p.grad.zero_()
    ours = clip_with_library(module, theta)
    assert torch.isfinite(ours).all() and not ours.any()
    torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm=theta)
    assert not flat_grads(module).any()


def test_parameters_without_gradient_are_skipped():
    module = with_random_grads([(3,), (4,)], 10.0, seed=0)
    extra = Params([(5,)])  # no .grad
    combined = nn.ModuleList([module, extra])
    d2l.Trainer(max_epochs=1).clip_gradients(1.0, combined)
    assert flat_grads(module).norm().item() == pytest.approx(1.0, rel=1e-5)
    assert extra.ps[0].grad is None


def test_per_parameter_and_by_value_clipping_change_the_direction():
    """The chapter's contrast: the other two recipes turn the gradient."""
    module = with_random_grads([(10,), (10,)], 1.0, seed=0)
    with torch.no_grad():
        module.ps[0].grad.mul_(20)  # one tensor with a much longer gradient
    before = flat_grads(module).clone()
    for p in module.parameters():
        torch.nn.utils.clip_grad_norm_([p], 0.1)
    assert F.cosine_similarity(flat_grads(module), before, dim=0) < 0.999
    g = torch.tensor([4.0, 1.0])
    by_value = g.clamp(-1, 1)
    assert F.cosine_similarity(by_value, g, dim=0) < 0.9


# ---------------------------------------------------------------------------------------
# grad_norm and GradNormTrainer


@pytest.mark.parametrize("shapes", SHAPES)
def test_grad_norm_is_the_norm_of_the_concatenation(shapes):
    module = with_random_grads(shapes, 2.5, seed=3)
    assert d2l.grad_norm(module.parameters()).item() == pytest.approx(2.5, rel=1e-5)
    assert torch.allclose(d2l.grad_norm(module.parameters()), flat_grads(module).norm())
    assert d2l.grad_norm(Params([(3,)]).parameters()).item() == 0.0  # no gradients at all


def test_grad_norm_without_gradients_is_a_zero_on_the_parameters_device():
    module = Params([(3,), (2, 2)])
    for parameters in (module.parameters(), list(module.parameters()), []):
        norm = d2l.grad_norm(parameters)
        assert norm.shape == () and norm.item() == 0.0
    assert d2l.grad_norm(module.parameters()).device == module.ps[0].device


def test_grad_norm_trainer_records_the_norm_that_clip_grad_norm_returns():
    """The chapter's practical note: clip_grad_norm_ returns the norm before clipping."""
    module = with_random_grads(SHAPES[3], 7.0, seed=5)
    before = d2l.grad_norm(module.parameters())
    returned = torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm=1.0)
    assert torch.allclose(before, returned)
    assert d2l.grad_norm(module.parameters()).item() == pytest.approx(1.0, rel=1e-5)


def fit(trainer_class, **trainer_args):
    d2l.set_seed(0)
    data, model = Regression(num_train=64, num_val=32, batch_size=16, noise=0), Linear()
    model.board.display = False
    trainer = trainer_class(max_epochs=3, **trainer_args)
    trainer.fit(model, data)
    return trainer, model


def test_grad_norm_trainer_with_infinite_threshold_records_and_does_not_clip():
    recorder, model = fit(d2l.GradNormTrainer, gradient_clip_val=math.inf)
    plain, plain_model = fit(d2l.Trainer)
    assert recorder.grad_norms.shape == (3 * 4,)  # 3 epochs of 4 minibatches
    assert recorder.grad_norms.device.type == "cpu" and torch.isfinite(recorder.grad_norms).all()
    assert recorder.history == plain.history
    for p, q in zip(model.parameters(), plain_model.parameters()):
        assert torch.equal(p, q)


def test_grad_norm_trainer_clips_like_the_library_and_records_before_clipping():
    recorder, model = fit(d2l.GradNormTrainer, gradient_clip_val=0.5)
    plain, plain_model = fit(d2l.Trainer, gradient_clip_val=0.5)
    assert recorder.history == plain.history
    for p, q in zip(model.parameters(), plain_model.parameters()):
        assert torch.equal(p, q)
    assert recorder.grad_norms.max() > 0.5  # the norms before clipping exceed theta


# ---------------------------------------------------------------------------------------
# state_gradients: d loss_T / d H_t, and the backpropagation-through-time sum


def small_language_model(seed=0, vocab_size=7, num_hiddens=5):
    d2l.set_seed(seed)
    return d2l.RNNLMScratch(d2l.RNNScratch(vocab_size, num_hiddens, sigma=0.5), vocab_size)


def test_state_gradients_match_autograd_and_the_bptt_sum():
    model = small_language_model()
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 7, (3, 6), generator=gen)
    Y = torch.randint(0, 7, (3, 6), generator=gen)
    H, G = d2l.state_gradients(model, X, Y)
    assert H.shape == G.shape == (6, 3, 5)
    states, _ = model.rnn(X.T)
    assert torch.allclose(H, states.detach(), atol=1e-6)
    # The last state: d loss_T / d H_T = (softmax - one-hot) / batch @ W_hq^T.
    probs = F.softmax(model.output_layer(H[-1:]).detach()[:, 0], dim=-1)
    expected = (probs - F.one_hot(Y[:, -1], 7)) / 3 @ model.W_hq.detach().T
    assert torch.allclose(G[-1], expected, atol=1e-6)
    # The recurrent weights' gradient is sum_t H_(t-1)^T ((1 - H_t^2) * G_t), with H_0 = 0.
    H_prev = torch.cat([torch.zeros_like(H[:1]), H[:-1]])
    by_sum = (H_prev.transpose(1, 2) @ (G * (1 - H**2))).sum(0)
    assert torch.allclose(by_sum, model.rnn.W_hh.grad, atol=1e-6)


# ---------------------------------------------------------------------------------------
# The Jacobian product and its bound on random small RNNs


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("sigma", [0.1, 0.5, 1.5])
def test_jacobian_product_and_its_bound(seed, sigma):
    d2l.set_seed(seed)
    num_hiddens, num_steps = 3 + seed % 4, 1 + 3 * seed
    layer = d2l.RNNScratch(num_inputs=2, num_hiddens=num_hiddens, sigma=sigma).double()
    inputs = torch.randn(num_steps, 1, 2, dtype=torch.float64)
    h_k = torch.randn(num_hiddens, dtype=torch.float64)

    def last_state(h):
        return layer(inputs, h.reshape(1, -1))[1].reshape(-1)

    jacobian = torch.autograd.functional.jacobian(last_state, h_k)
    W_hh = layer.W_hh.detach()
    states = layer(inputs, h_k.reshape(1, -1))[0].detach()[:, 0]
    product = torch.eye(num_hiddens, dtype=torch.float64)
    for h_j in states:
        step = torch.diag(1 - h_j**2) @ W_hh.T  # J_j = diag(1 - h_j^2) W_hh^T
        assert torch.linalg.matrix_norm(step, ord=2) <= torch.linalg.matrix_norm(W_hh, ord=2)
        product = step @ product
    assert torch.allclose(jacobian, product, rtol=1e-9, atol=1e-12)
    sigma_max = torch.linalg.matrix_norm(W_hh, ord=2).item()
    assert torch.linalg.matrix_norm(jacobian, ord=2).item() <= sigma_max**num_steps * (1 + 1e-9)


def test_state_gradients_norms_of_tiny_gradients_need_float64():
    """The chapter's numerics lesson: a float32 norm of entries around 1e-25 underflows to 0,
    although the entries themselves are far inside float32's range."""
    g = torch.full((128, 32), 1e-25)
    assert g.abs().min() > 1e3 * torch.finfo(torch.float32).tiny
    assert g.norm().item() == 0.0
    assert g.double().norm().item() == pytest.approx(1e-25 * 64, rel=1e-6)


# ---------------------------------------------------------------------------------------
# The chapter's page: conventions of the book


CHAPTER = Path(__file__).resolve().parent.parent / "book" / "gradient_clipping.md"
CELL = re.compile(r"```\{code-cell\} ipython3\n(.*?)```", re.DOTALL)


def code_cells():
    """(code, tags) of each code cell; a YAML header (figure captions) is not code."""
    for source in CELL.findall(CHAPTER.read_text()):
        if source.startswith("---\n"):
            header, source = source[4:].split("\n---\n", 1)
            tags = yaml.safe_load(header).get("tags", [])
        else:
            found = re.search(r"^:tags: \[(.*?)\]", source, re.MULTILINE)
            tags = found.group(1).split(", ") if found else []
        yield source, tags


def test_chapter_code_fits_80_columns():
    long = [line for source, _ in code_cells() for line in source.splitlines()
            if len(line) > 80 and not line.lstrip().startswith("%pip")]
    assert not long, long


def test_chapter_glue_only_in_removed_cells():
    visible = [source[:60] for source, tags in code_cells()
               if "glue(" in source and "remove-cell" not in tags]
    assert not visible, visible


def test_chapter_prose_names_no_build_plumbing():
    prose = CELL.sub("", CHAPTER.read_text())
    commands = r"`make|\bmake (book|test|notebooks|lib|check|bench|nbval|unit)\b"
    for word in (commands, r"\bbench/", r"\btests/", r"\bCI\b", "unit tests", "Makefile"):
        assert not re.search(word, prose), word


def test_log_axis_ticks_read_as_plain_numbers():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([1, 2], [1e-5, 2e3])
    d2l.log_axis(ax, "y")
    fig.draw_without_rendering()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ax.get_yscale() == "log"
    assert {"1e-5", "1e-3", "0.01", "0.1", "1", "10", "100", "1e3"} <= set(labels), labels
    assert not any("$" in label for label in labels), labels
