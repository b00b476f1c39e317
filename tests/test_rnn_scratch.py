"""Tests of the code saved by book/rnn_scratch.md (RNN language model from scratch).

Tiny sizes only, so that the whole file runs in seconds; no test measures time.
"""

import itertools
import os
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

import d2l_lib as d2l

# The Time Machine, for the one test that trains on it: D2L_DATA_DIR (set by `make unit`)
# or the shared data folder beside the checkout.
DATA_FOLDER = Path(os.environ.get("D2L_DATA_DIR")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")

VOCAB_TEXT = "the time traveller for so it will be convenient to speak of him"


@pytest.fixture
def vocab():
    return d2l.Vocab(list(VOCAB_TEXT))  # ' ', '<unk>' and the letters of the text


def make_model(vocab_size, num_hiddens=8, seed=0, lr=0.1, cls=None):
    d2l.set_seed(seed)
    cls = cls or d2l.RNNLMScratch
    return cls(d2l.RNNScratch(vocab_size, num_hiddens, sigma=0.5), vocab_size, lr=lr)


def step_by_step(layer, inputs, state):
    """The recurrence exactly as the formula reads, for comparison."""
    outputs = []
    for X in inputs:
        state = torch.tanh(X @ layer.W_xh + state @ layer.W_hh + layer.b_h)
        outputs.append(state)
    return torch.stack(outputs), state


# ---- shapes and equivalences -------------------------------------------------------------


def test_check_helpers():
    d2l.check_len([1, 2, 3], 3)
    d2l.check_shape(torch.zeros(2, 3), (2, 3))
    with pytest.raises(AssertionError, match="length 2 != expected length 3"):
        d2l.check_len([1, 2], 3)
    with pytest.raises(AssertionError, match=r"shape \(2, 3\) != expected shape \(3, 2\)"):
        d2l.check_shape(torch.zeros(2, 3), (3, 2))


def test_rnn_scratch_parameters_and_shapes():
    d2l.set_seed(0)
    layer = d2l.RNNScratch(num_inputs=5, num_hiddens=7, sigma=0.01)
    assert layer.W_xh.shape == (5, 7) and layer.W_hh.shape == (7, 7) and layer.b_h.shape == (7,)
    for p in (layer.W_xh, layer.W_hh):  # N(0, 0.01^2)
        assert 0 < p.abs().max() < 0.1
    assert torch.equal(layer.b_h, torch.zeros(7))
    outputs, state = layer(torch.randn(4, 3, 5))  # (num_steps, batch_size, num_inputs)
    d2l.check_len(outputs, 4)
    d2l.check_shape(outputs, (4, 3, 7))
    d2l.check_shape(state, (3, 7))
    assert torch.equal(outputs[-1], state)
    assert outputs.abs().max() < 1  # tanh
    outputs, state = layer(torch.randint(0, 5, (4, 3)))  # token indices
    d2l.check_shape(outputs, (4, 3, 7))


def test_forward_equals_the_formula_for_floats_and_indices():
    d2l.set_seed(0)
    layer = d2l.RNNScratch(6, 5, sigma=0.5)
    tokens = torch.randint(0, 6, (9, 4))
    state0 = torch.randn(4, 5)
    one_hot = F.one_hot(tokens, 6).float()
    expected, expected_state = step_by_step(layer, one_hot, state0)
    for inputs in (one_hot, tokens):
        outputs, state = layer(inputs, state0)
        torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(state, expected_state, rtol=0, atol=1e-6)
    # no state given: zeros
    outputs, _ = layer(tokens)
    expected, _ = step_by_step(layer, one_hot, torch.zeros(4, 5))
    torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-6)


def test_lm_shapes(vocab):
    V = len(vocab)
    model = make_model(V)
    X = torch.randint(0, V, (3, 11))  # (batch_size, num_steps)
    d2l.check_shape(model.one_hot(X), (11, 3, V))
    assert model.one_hot(X).dtype == torch.float32
    d2l.check_shape(model(X), (3, 11, V))
    d2l.check_shape(model.W_hq, (8, V))
    d2l.check_shape(model.b_q, (V,))
    d2l.check_shape(model(X, torch.zeros(3, 8)), (3, 11, V))


def test_one_hot_product_equals_lookup(vocab):
    V = len(vocab)
    model = make_model(V)
    X = torch.randint(0, V, (3, 11))
    W_xh = model.rnn.W_xh
    assert torch.equal(model.one_hot(X) @ W_xh, W_xh[X.T])  # exact: a product with a one-hot row
    assert torch.equal(model.one_hot(X) @ W_xh, F.embedding(X.T, W_xh))
    # the layer gives the same states from one-hot floats and from indices
    by_floats, _ = model.rnn(model.one_hot(X))
    by_indices, _ = model.rnn(X.T)
    torch.testing.assert_close(by_floats, by_indices, rtol=0, atol=1e-6)


def test_functional_style_equals_class(vocab):
    V, h = len(vocab), 8
    d2l.set_seed(0)
    params = d2l.get_params(V, h, torch.device("cpu"))
    assert [tuple(p.shape) for p in params] == [(V, h), (h, h), (h,), (h, V), (V,)]
    assert all(p.requires_grad for p in params)
    (state0,) = d2l.init_rnn_state(3, h, torch.device("cpu"))
    assert torch.equal(state0, torch.zeros(3, h))

    model = make_model(V, h)
    with torch.no_grad():  # give the class the functional model's weights
        for p, q in zip([model.rnn.W_xh, model.rnn.W_hh, model.rnn.b_h, model.W_hq, model.b_q],
                        params):
            p.copy_(q + 0.1 * torch.randn_like(q))  # nonzero biases too
            q.copy_(p)
    X = torch.randint(0, V, (3, 11))
    state = torch.randn(3, h)
    logits, (H,) = d2l.rnn(model.one_hot(X), (state,), params)
    d2l.check_shape(logits, (11 * 3, V))
    logits = logits.reshape(11, 3, V).transpose(0, 1)
    torch.testing.assert_close(logits, model(X, state), rtol=0, atol=1e-6)
    torch.testing.assert_close(H, model.rnn(X.T, state)[1], rtol=0, atol=1e-6)


# ---- gradient clipping -------------------------------------------------------------------


def grads_of(model, seed=1):
    torch.manual_seed(seed)
    X = torch.randint(0, model.vocab_size, (4, 6))
    Y = torch.randint(0, model.vocab_size, (4, 6))
    model.zero_grad()
    model.loss(model(X), Y).backward()
    return [p.grad.clone() for p in model.parameters()]


def flatten(grads):
    return torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("theta", [1e-3, 0.05, 1e6])
def test_clip_equals_clip_grad_norm_and_keeps_direction(vocab, theta):
    model = make_model(len(vocab))
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=theta)
    before = grads_of(model)
    trainer.clip_gradients(theta, model)
    ours = [p.grad.clone() for p in model.parameters()]
    grads_of(model)
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=theta)
    theirs = [p.grad for p in model.parameters()]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)

    g0, g1 = flatten(before), flatten(ours)
    torch.testing.assert_close(g0.norm(), total)
    expected_norm = min(theta, g0.norm().item())
    assert g1.norm().item() == pytest.approx(expected_norm, rel=1e-4)
    assert F.cosine_similarity(g0, g1, dim=0) > 1 - 1e-6  # same direction
    if theta > g0.norm():  # small gradients are not touched at all
        assert all(torch.equal(a, b) for a, b in zip(before, ours))


@pytest.mark.parametrize("theta", [1e-3, 1e6])
def test_clip_by_global_norm_returns_the_norm_and_clips_like_the_trainer(vocab, theta):
    """The simple clipping of the scratch chapter: same direction, norm at most theta,
    untouched below theta, and the norm before clipping returned."""
    model = make_model(len(vocab))
    before = [g.clone() for g in grads_of(model)]
    norm = d2l.clip_by_global_norm([p.grad for p in model.parameters()], theta)
    after = [p.grad for p in model.parameters()]
    torch.testing.assert_close(norm, flatten(before).norm())
    assert flatten(after).norm().item() == pytest.approx(min(theta, norm.item()), rel=1e-5)
    assert F.cosine_similarity(flatten(before), flatten(after), dim=0) > 1 - 1e-6
    if theta > norm:
        assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_clip_ignores_parameters_without_gradient(vocab):
    model = make_model(len(vocab))
    grads_of(model)
    model.b_q.grad = None
    d2l.Trainer(max_epochs=1).clip_gradients(1e-3, model)
    assert model.b_q.grad is None
    norm = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in model.parameters()
                                               if p.grad is not None]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_clip_nonfinite_norm_skips_the_step(vocab, bad):
    """Policy: a non-finite norm zeroes every gradient (SGD leaves the parameters alone) and
    counts the step in trainer.skipped_steps."""
    model = make_model(len(vocab))
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=1.0)
    grads_of(model)
    model.rnn.W_hh.grad[1, 2] = bad
    before = [p.detach().clone() for p in model.parameters()]
    trainer.clip_gradients(1.0, model)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in model.parameters())
    assert int(trainer.skipped_steps) == 1
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    # a later finite step is clipped normally and not counted
    trainer.train_batch_idx = 1
    grads_of(model)
    trainer.clip_gradients(1.0, model)
    assert any(p.grad.any() for p in model.parameters())
    assert int(trainer.skipped_steps) == 1


# ---- decoding ------------------------------------------------------------------------------


def test_predict_greedy(vocab):
    model = make_model(len(vocab))
    text = model.predict("time ", 20, vocab)
    assert text.startswith("time ") and len(text) == 25
    assert all(c in vocab.token_to_idx for c in text)  # '<unk>' is never generated
    assert model.predict("time ", 20, vocab) == text  # greedy is deterministic
    assert model.predict("time ", 20, vocab, temperature=0) == text
    assert model.predict("time ", 0, vocab) == "time "


def test_predict_equals_step_by_step_greedy_decoding(vocab):
    """Warm-up over the whole prefix at once == feeding it one character at a time."""
    model = make_model(len(vocab))
    prefix, n = "the tim", 6
    with torch.no_grad():
        state, outputs = None, [vocab[prefix[0]]]
        for i in range(len(prefix) + n - 1):
            out, state = model.rnn(torch.tensor([[outputs[-1]]]), state)
            if i < len(prefix) - 1:
                outputs.append(vocab[prefix[i + 1]])
            else:
                logits = model.output_layer(out)[0, -1]
                logits[vocab.unk] = -float("inf")
                outputs.append(int(logits.argmax()))
    assert model.predict(prefix, n, vocab) == "".join(vocab.idx_to_token[i] for i in outputs)


def test_predict_sampling_is_reproducible_and_restores_mode(vocab):
    model = make_model(len(vocab))

    def sample(seed, tau=1.0):
        return model.predict("he", 30, vocab, temperature=tau, generator=torch.Generator()
                             .manual_seed(seed))

    assert sample(0) == sample(0)
    assert len({sample(s) for s in range(5)}) > 1  # different seeds, different texts
    assert model.training
    model.eval()
    sample(0)
    assert not model.training
    model.train()
    # decoding records no graph and leaves gradients alone
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="temperature"):
        sample(0, tau=-1.0)
    with pytest.raises(ValueError, match="num_preds"):
        model.predict("he", -1, vocab)


def test_predict_upper_case_is_lower_cased(vocab):
    model = make_model(len(vocab))
    assert model.predict("Time TRAVELLER", 10, vocab) == model.predict("time traveller", 10,
                                                                        vocab)


@pytest.mark.parametrize("prefix, named", [
    ("time 1", ["'1'"]),
    ("time, traveller!", ["','", "'!'"]),
    ("caf\u00e9", ["'\u00e9'"]),
    ("time\ntraveller", ["'\\n'"]),
])
def test_predict_unknown_characters_raise(vocab, prefix, named):
    model = make_model(len(vocab))
    with pytest.raises(ValueError) as info:
        model.predict(prefix, 5, vocab)
    for name in named:
        assert name in str(info.value)


def test_predict_empty_prefix_raises(vocab):
    model = make_model(len(vocab))
    with pytest.raises(ValueError, match="empty"):
        model.predict("", 5, vocab)


def test_predict_rejects_a_vocab_of_another_size(vocab):
    model = make_model(len(vocab) + 1)
    with pytest.raises(ValueError, match="vocab"):
        model.predict("time", 5, vocab)


@pytest.mark.parametrize("temperature, error", [
    (float("nan"), ValueError), (float("inf"), ValueError), (-float("inf"), ValueError),
    (-0.5, ValueError), (1e-40, ValueError),  # below float32's smallest normal number
    (1e39, ValueError), (1e300, ValueError),  # above float32's largest number: inf/inf
    ("1", TypeError), (None, TypeError), (True, TypeError), (torch.tensor(1.0), TypeError),
])
def test_predict_rejects_bad_temperatures_up_front(vocab, temperature, error):
    model = make_model(len(vocab))
    with pytest.raises(error, match="temperature"):
        model.predict("the", 5, vocab, temperature=temperature)


@pytest.mark.parametrize("num_preds, error", [
    (2.5, TypeError), ("3", TypeError), (None, TypeError), (True, TypeError),
    (-1, ValueError),
])
def test_predict_rejects_bad_num_preds_up_front(vocab, num_preds, error):
    model = make_model(len(vocab))
    with pytest.raises(error, match="num_preds"):
        model.predict("the", num_preds, vocab)


@pytest.mark.parametrize("prefix", [None, 42, ["t", "h"], b"the"])
def test_predict_rejects_a_prefix_that_is_not_a_string(vocab, prefix):
    model = make_model(len(vocab))
    with pytest.raises(TypeError, match="prefix must be a string"):
        model.predict(prefix, 5, vocab)


def test_predict_rejects_a_generator_that_is_not_one(vocab):
    model = make_model(len(vocab))
    with pytest.raises(TypeError, match="generator"):
        model.predict("the", 5, vocab, temperature=1.0, generator=0)


def test_predict_accepts_numpy_numbers(vocab):
    np = pytest.importorskip("numpy")
    model = make_model(len(vocab))
    assert model.predict("the", np.int64(4), vocab) == model.predict("the", 4, vocab)
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert (model.predict("the", 9, vocab, temperature=np.float32(0.7), generator=gen_a)
            == model.predict("the", 9, vocab, temperature=0.7, generator=gen_b))


def test_predict_accepts_the_largest_float32_temperature(vocab):
    model = make_model(len(vocab))
    huge = float(torch.finfo(torch.float32).max)
    text = model.predict("the", 20, vocab, temperature=huge,
                         generator=torch.Generator().manual_seed(0))
    assert len(text) == 23 and "<unk>" not in text


def test_predict_tiny_temperature_is_greedy_without_overflow(vocab):
    """(logits - max) / tau cannot overflow: the smallest allowed tau samples the argmax."""
    model = make_model(len(vocab))
    with torch.no_grad():
        model.W_hq.mul_(100)  # large logits: logits / tau alone would overflow float32
    tiny = torch.finfo(torch.float32).tiny
    gen = torch.Generator().manual_seed(0)
    assert (model.predict("the", 12, vocab, temperature=tiny, generator=gen)
            == model.predict("the", 12, vocab))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_predict_on_a_diverged_model_raises(vocab, bad):
    model = make_model(len(vocab))
    with torch.no_grad():
        model.rnn.W_hh[0, 0] = bad
    with pytest.raises(RuntimeError, match="diverged"):
        model.predict("the", 5, vocab)
    with pytest.raises(RuntimeError, match="gradient_clip_val"):
        model.predict("the", 5, vocab, temperature=1.0)


def test_check_predict_args_returns_the_lower_cased_prefix(vocab):
    model = make_model(len(vocab))
    assert model.check_predict_args("Time", 3, vocab) == list("time")


# ---- initialisation: the same parameters as d2l for the same seed ---------------------------


def test_initial_parameters_match_d2l_for_the_same_seed():
    d2l.set_seed(0)
    model = d2l.RNNLMScratch(d2l.RNNScratch(5, 7, sigma=0.02), 9)
    d2l.set_seed(0)  # d2l: randn(...) * sigma for W_xh, W_hh, then W_hq
    W_xh, W_hh = torch.randn(5, 7) * 0.02, torch.randn(7, 7) * 0.02
    W_hq = torch.randn(7, 9) * 0.02
    assert torch.equal(model.rnn.W_xh, W_xh) and torch.equal(model.rnn.W_hh, W_hh)
    assert torch.equal(model.W_hq, W_hq)
    assert torch.equal(model.rnn.b_h, torch.zeros(7)) and torch.equal(model.b_q, torch.zeros(9))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["W_hq", "b_q", "rnn.W_xh", "rnn.W_hh", "rnn.b_h"]


def test_clip_counts_clipped_steps_and_restarts_with_each_fit(vocab):
    model = make_model(len(vocab))
    trainer = d2l.Trainer(max_epochs=1, gradient_clip_val=1e-3)
    grads_of(model)
    trainer.clip_gradients(1e-3, model)  # train_batch_idx unset: a new fit
    trainer.train_batch_idx = 1
    grads_of(model)
    trainer.clip_gradients(1e-3, model)
    grads_of(model)
    trainer.clip_gradients(1e6, model)  # below the threshold: not counted
    assert int(trainer.clipped_steps) == 2 and int(trainer.skipped_steps) == 0
    assert trainer.clipped_steps.dtype == torch.int64
    trainer.train_batch_idx = 0  # the first step of the next fit
    grads_of(model)
    trainer.clip_gradients(1e6, model)
    assert int(trainer.clipped_steps) == 0


# ---- training --------------------------------------------------------------------------------


class ToyText(d2l.DataModule):
    """Sequential partitions of a short repetitive text: fast to train on."""

    def __init__(self, vocab, batch_size=4, num_steps=5, sampling="sequential", repeat=10):
        super().__init__()
        self.save_hyperparameters()
        self.corpus = vocab[list(VOCAB_TEXT + " ") * repeat]

    def get_dataloader(self, train):
        return d2l.SeqDataLoader(self.corpus, self.batch_size, self.num_steps, self.sampling,
                                 generator=0 if not train else None)


def record_rnn_calls(model):
    """Wrap model.rnn.forward to record (training?, state in, last state out) per call."""
    calls = []
    original = model.rnn.forward

    def forward(inputs, state=None):
        outputs, last = original(inputs, state)
        calls.append((model.training, state, last))
        return outputs, last

    model.rnn.forward = forward
    return calls


def test_sequential_training_carries_the_detached_state(vocab):
    d2l.set_seed(0)
    data = ToyText(vocab)
    model = make_model(len(vocab), cls=d2l.StatefulRNNLMScratch)
    model.board.display = False
    calls = record_rnn_calls(model)
    trainer = d2l.Trainer(max_epochs=2, gradient_clip_val=1)
    trainer.fit(model, data)
    n_train, n_val = len(data.train_dataloader()), len(data.val_dataloader())
    assert n_train > 3 and n_val > 3
    assert len(calls) == 2 * (n_train + n_val)
    for epoch in range(2):
        start = epoch * (n_train + n_val)
        for phase, begin, count in ((True, start, n_train), (False, start + n_train, n_val)):
            chunk = calls[begin:begin + count]
            assert all(training == phase for training, _, _ in chunk)
            assert chunk[0][1] is None  # each pass over the text starts afresh
            for (_, _, left), (_, entering, _) in itertools.pairwise(chunk):
                # the state entering minibatch k+1 is the state leaving minibatch k, detached
                assert torch.equal(entering, left.detach())
                assert not entering.requires_grad and entering.grad_fn is None
                if phase:
                    assert left.requires_grad  # the graph ends at the boundary, not before
    assert len(trainer.history["train_ppl"]) == 2


class StatefulConcise(d2l.StatefulRNNLMScratch, d2l.RNNLM):
    """The carried state on the nn.RNN layer, whose state is (1, batch, hidden)."""


def test_carried_state_reaches_the_next_minibatch_with_an_nn_rnn_layer(vocab):
    d2l.set_seed(0)
    model = StatefulConcise(d2l.RNN(len(vocab), 8), len(vocab), lr=0.1)
    model.board.display = False
    calls = record_rnn_calls(model)
    d2l.Trainer(max_epochs=1, gradient_clip_val=1).fit(model, ToyText(vocab))
    train_calls = [call for call in calls if call[0]]
    assert len(train_calls) > 3 and train_calls[0][1] is None
    for (_, _, left), (_, entering, _) in itertools.pairwise(train_calls):
        assert entering is not None and entering.shape == (1, 4, 8)
        assert torch.equal(entering, left.detach())


@pytest.mark.parametrize("state_shape", [(3, 8), (1, 3, 8)])
def test_carried_state_of_another_batch_size_is_dropped(vocab, state_shape):
    model = make_model(len(vocab), cls=d2l.StatefulRNNLMScratch)
    model.board.display = False
    calls = record_rnn_calls(model)
    X = torch.randint(0, len(vocab), (4, 5))
    model.states[True] = torch.zeros(state_shape)  # left by a minibatch of 3 rows
    model.carried_step((X, X), True)
    assert calls[0][1] is None


def test_random_sampling_model_starts_every_minibatch_from_zero(vocab):
    d2l.set_seed(0)
    model = make_model(len(vocab))
    model.board.display = False
    calls = record_rnn_calls(model)
    d2l.Trainer(max_epochs=1, gradient_clip_val=1).fit(model, ToyText(vocab, sampling="random"))
    assert calls and all(state is None for _, state, _ in calls)


def test_short_training_lowers_perplexity(monkeypatch):
    if not (DATA_FOLDER / "timemachine.txt").exists():
        pytest.skip("needs D2L_DATA_DIR (run `make unit`) or ../shared/data/timemachine.txt")
    monkeypatch.setenv("D2L_DATA_DIR", str(DATA_FOLDER))
    d2l.set_seed(0)
    data = d2l.TimeMachine(batch_size=128, num_steps=16, num_train=1024, num_val=256)
    model = d2l.RNNLMScratch(d2l.RNNScratch(len(data.vocab), 16), len(data.vocab), lr=1)
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=4, gradient_clip_val=1)
    trainer.fit(model, data)
    train, val = trainer.history["train_ppl"], trainer.history["val_ppl"]
    assert len(train) == len(val) == 4
    assert train[-1] < train[0] and val[-1] < val[0]
    assert val[-1] < 0.9 * len(data.vocab)  # better than uniform guessing
    assert int(trainer.skipped_steps) == 0
