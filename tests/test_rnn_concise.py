"""Tests of the concise RNN chapter's library code: d2l.RNN and d2l.RNNLM."""

import pytest
import torch
from torch import nn

import d2l_lib as d2l

VOCAB, HIDDEN = 28, 16


def scratch_and_concise(num_hiddens=HIDDEN, vocab_size=VOCAB, seed=0):
    """An RNNLMScratch with non-trivial parameters and an RNNLM holding the same function."""
    d2l.set_seed(seed)
    scratch = d2l.RNNLMScratch(d2l.RNNScratch(vocab_size, num_hiddens, sigma=0.1), vocab_size)
    with torch.no_grad():
        scratch.rnn.b_h.normal_()
        scratch.b_q.normal_()
    concise = d2l.RNNLM(d2l.RNN(vocab_size, num_hiddens), vocab_size)
    rnn = concise.rnn.rnn
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(scratch.rnn.W_xh.T)
        rnn.weight_hh_l0.copy_(scratch.rnn.W_hh.T)
        split = torch.randn(num_hiddens)
        rnn.bias_ih_l0.copy_(scratch.rnn.b_h - split)
        rnn.bias_hh_l0.copy_(split)
        concise.linear.weight.copy_(scratch.W_hq.T)
        concise.linear.bias.copy_(scratch.b_q)
    return scratch, concise


def test_weight_copy_equivalence_layer_and_model():
    scratch, concise = scratch_and_concise()
    X = torch.randint(0, VOCAB, (8, 20))  # (batch, steps)
    H0 = torch.randn(8, HIDDEN)
    outs_s, state_s = scratch.rnn(X.T, H0)
    outs_c, state_c = concise.rnn(X.T, H0.unsqueeze(0))
    assert outs_s.abs().max() > 0.5  # the tanh works in its non-linear range
    torch.testing.assert_close(outs_c, outs_s, rtol=0, atol=1e-5)
    torch.testing.assert_close(state_c[0], state_s, rtol=0, atol=1e-5)
    torch.testing.assert_close(concise(X, H0.unsqueeze(0)), scratch(X, H0), rtol=0, atol=1e-5)
    # From a zero state, and with one-hot float inputs instead of indices.
    one_hot = torch.nn.functional.one_hot(X.T, VOCAB).float()
    torch.testing.assert_close(concise.rnn(one_hot)[0], scratch.rnn(one_hot)[0],
                               rtol=0, atol=1e-5)


def test_weight_copy_equivalence_gradients():
    scratch, concise = scratch_and_concise()
    X, Y = torch.randint(0, VOCAB, (4, 12)), torch.randint(0, VOCAB, (4, 12))
    scratch.loss(scratch(X), Y).backward()
    concise.loss(concise(X), Y).backward()
    rnn = concise.rnn.rnn
    torch.testing.assert_close(rnn.weight_ih_l0.grad, scratch.rnn.W_xh.grad.T, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rnn.weight_hh_l0.grad, scratch.rnn.W_hh.grad.T, atol=1e-5, rtol=1e-4)
    # both biases get the gradient of b_h
    torch.testing.assert_close(rnn.bias_ih_l0.grad, scratch.rnn.b_h.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rnn.bias_hh_l0.grad, scratch.rnn.b_h.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(concise.linear.weight.grad, scratch.W_hq.grad.T,
                               atol=1e-5, rtol=1e-4)


def test_shapes():
    d2l.set_seed(0)
    layer = d2l.RNN(VOCAB, HIDDEN)
    assert isinstance(layer, d2l.Module) and isinstance(layer.rnn, nn.RNN)
    assert (layer.num_inputs, layer.num_hiddens) == (VOCAB, HIDDEN)
    outputs, state = layer(torch.randint(0, VOCAB, (7, 3)))  # indices, time first
    d2l.check_shape(outputs, (7, 3, HIDDEN))
    d2l.check_shape(state, (1, 3, HIDDEN))
    torch.testing.assert_close(outputs[-1], state[0])
    outputs2, state2 = layer(torch.randn(7, 3, VOCAB), state)  # floats, with a state
    d2l.check_shape(outputs2, (7, 3, HIDDEN))
    d2l.check_shape(state2, (1, 3, HIDDEN))

    model = d2l.RNNLM(layer, VOCAB, lr=0.5)
    assert isinstance(model, d2l.RNNLMScratch) and model.lr == 0.5
    assert isinstance(model.linear, nn.Linear)
    assert not hasattr(model, "b_q")  # the scratch output layer is replaced, not added to
    d2l.check_shape(model(torch.randint(0, VOCAB, (3, 7))), (3, 7, VOCAB))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == VOCAB * HIDDEN + HIDDEN * HIDDEN + 2 * HIDDEN + HIDDEN * VOCAB + VOCAB


def test_embedding_lookup_equals_the_one_hot_product_and_model():
    """The chapter's embedding section: nn.Embedding gives the one-hot product bit for bit, and
    an identity table in front of the same nn.RNN gives d2l.RNNLM's logits bit for bit."""
    d2l.set_seed(0)
    idx = torch.randint(0, VOCAB, (7, 3))
    table = nn.Embedding(VOCAB, 5)
    assert torch.equal(table(idx), nn.functional.one_hot(idx, VOCAB).float() @ table.weight)

    model = d2l.RNNLM(d2l.RNN(VOCAB, HIDDEN), VOCAB)
    identity = nn.Embedding.from_pretrained(torch.eye(VOCAB))
    X = torch.randint(0, VOCAB, (3, 7))  # (batch, steps), as loaded
    states, _ = model.rnn.rnn(identity(X.T))
    assert torch.equal(model.output_layer(states), model(X))
    # and a different table gives different logits: the check can fail
    states, _ = model.rnn.rnn(nn.Embedding(VOCAB, VOCAB)(X.T))
    assert not torch.allclose(model.output_layer(states), model(X))


def test_output_layer_is_one_linear_map_on_batch_first_states():
    d2l.set_seed(0)
    model = d2l.RNNLM(d2l.RNN(VOCAB, HIDDEN), VOCAB)
    H = torch.randn(7, 3, HIDDEN)  # (num_steps, batch_size, num_hiddens)
    expected = H.transpose(0, 1) @ model.linear.weight.T + model.linear.bias
    torch.testing.assert_close(model.output_layer(H), expected)


def test_layer_type_swaps_in_gated_layers():
    """Exercise 2's solution: a GRU or LSTM wrapper is one class attribute."""

    class GRU(d2l.RNN):
        layer_type = nn.GRU

    class LSTM(d2l.RNN):
        layer_type = nn.LSTM

    assert d2l.RNN.layer_type is nn.RNN
    data = d2l.TimeMachine(batch_size=4, num_steps=8)
    for cls, torch_cls in ((GRU, nn.GRU), (LSTM, nn.LSTM)):
        d2l.set_seed(0)
        layer = cls(len(data.vocab), HIDDEN)
        assert type(layer.rnn) is torch_cls
        assert (layer.num_inputs, layer.num_hiddens) == (len(data.vocab), HIDDEN)
        model = d2l.RNNLM(layer, len(data.vocab))
        d2l.check_shape(model(torch.randint(0, len(data.vocab), (3, 5))),
                        (3, 5, len(data.vocab)))
        text = model.predict("time ", 6, data.vocab, device=d2l.cpu())
        assert text.startswith("time ") and len(text) == 11
    _, (h_n, c_n) = layer(torch.randint(0, len(data.vocab), (5, 2)))  # LSTM: a pair
    d2l.check_shape(h_n, (1, 2, HIDDEN))
    d2l.check_shape(c_n, (1, 2, HIDDEN))


@pytest.mark.parametrize("h", [32, 256])
def test_initial_spectral_radius_of_the_recurrent_matrix(h):
    """The chapter's prediction: about 0.01 sqrt(h) for sigma = 0.01, about 1/sqrt(3) for
    PyTorch's uniform(+-1/sqrt(h)), over several draws."""
    d2l.set_seed(0)
    scratch = [torch.linalg.eigvals(d2l.RNNScratch(VOCAB, h).W_hh.detach()).abs().max().item()
               for _ in range(5)]
    concise = [torch.linalg.eigvals(d2l.RNN(VOCAB, h).rnn.weight_hh_l0.detach()).abs().max()
               .item() for _ in range(5)]
    assert 0.7 < sum(scratch) / 5 / (0.01 * h ** 0.5) < 1.5
    assert 0.7 < sum(concise) / 5 / 3 ** -0.5 < 1.3
    assert max(scratch) < min(concise) / 3  # the scratch start is nearly memoryless


def test_predict():
    data = d2l.TimeMachine(batch_size=4, num_steps=8)
    d2l.set_seed(0)
    model = d2l.RNNLM(d2l.RNN(len(data.vocab), HIDDEN), len(data.vocab))
    text = model.predict("time ", 12, data.vocab, device=d2l.cpu())
    assert text.startswith("time ") and len(text) == 5 + 12
    assert set(text) <= set(data.vocab.idx_to_token)


def test_short_training_lowers_perplexity():
    d2l.set_seed(0)
    data = d2l.TimeMachine(batch_size=256, num_steps=16, num_train=2048, num_val=512)
    model = d2l.RNNLM(d2l.RNN(len(data.vocab), 32), len(data.vocab), lr=1)
    model.board.display = False
    X, Y = next(iter(data.val_dataloader()))
    with torch.no_grad():
        before = torch.exp(model.loss(model(X), Y)).item()
    trainer = d2l.Trainer(max_epochs=6, gradient_clip_val=1)
    trainer.fit(model, data)
    val = trainer.history["val_ppl"]
    assert len(val) == 6 and all(torch.isfinite(torch.tensor(val)))
    assert val[-1] < 0.8 * before
    assert trainer.history["train_ppl"][-1] < trainer.history["train_ppl"][0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_gpu():
    d2l.set_seed(0)
    data = d2l.TimeMachine(batch_size=256, num_steps=16, num_train=1024, num_val=256)
    model = d2l.RNNLM(d2l.RNN(len(data.vocab), 32), len(data.vocab), lr=1)
    model.board.display = False
    trainer = d2l.Trainer(max_epochs=2, gradient_clip_val=1, num_gpus=1)
    trainer.fit(model, data)
    assert trainer.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert trainer.history["val_ppl"][-1] < len(data.vocab)
    text = model.predict("time ", 10, data.vocab, device=trainer.device)
    assert len(text) == 15
    # the GPU model computes the same function as its CPU copy
    X = torch.randint(0, len(data.vocab), (4, 16))
    cpu_model = d2l.RNNLM(d2l.RNN(len(data.vocab), 32), len(data.vocab))
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    torch.testing.assert_close(model(X.cuda()).cpu(), cpu_model(X), atol=1e-4, rtol=1e-4)
