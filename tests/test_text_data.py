"""Tests of the language-model data code saved from book/text_data.md.

The corpus tests read The Time Machine from D2L_DATA_DIR (the Makefile points it at the
shared data folder beside the checkout); the error tests simulate a machine without network
by replacing urllib.request.urlopen, so no test touches the network.
"""

import hashlib
import io
import itertools
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

import d2l_lib as d2l

SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
# Read once at import, before any test points D2L_DATA_DIR elsewhere.
REAL_FOLDER = Path(os.environ.get("D2L_DATA_DIR")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")


def shared_folder():
    """The folder with the real file: D2L_DATA_DIR (set by `make unit`) or ../shared/data."""
    if not (REAL_FOLDER / "timemachine.txt").exists():
        pytest.skip("needs D2L_DATA_DIR (run `make unit`) or ../shared/data/timemachine.txt")
    return REAL_FOLDER


@pytest.fixture
def shared_data(monkeypatch):
    """Point D2L_DATA_DIR at a folder holding the real file, as `make unit` does."""
    folder = shared_folder()
    monkeypatch.setenv("D2L_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def offline(monkeypatch):
    """Make every download fail as it does without network; record the attempts."""
    attempts = []

    def urlopen(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("simulated: no network")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return attempts


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path))
    return tmp_path


def loader_tensors(loader):
    """All (X, Y) of one pass over a loader, concatenated."""
    Xs, Ys = zip(*loader)
    return torch.cat(Xs), torch.cat(Ys)


class SmallText(d2l.TimeMachine):
    """TimeMachine over a short text, so window tests need no data file."""

    TEXT = "The Time Traveller (for so it will be convenient to speak of him) was expounding. " * 4

    def _download(self):
        return self.TEXT


# ---- Vocab ---------------------------------------------------------------------------------


def test_vocab_reference_semantics():
    tokens = list("hello world, hello")
    vocab = d2l.Vocab(tokens, min_freq=2, reserved_tokens=["<pad>"])
    counts = {t: tokens.count(t) for t in set(tokens)}
    kept = [t for t, n in counts.items() if n >= 2]
    assert vocab.idx_to_token == sorted(set(["<unk>", "<pad>"] + kept))
    assert vocab.token_to_idx == {t: i for i, t in enumerate(vocab.idx_to_token)}
    assert len(vocab) == len(vocab.idx_to_token)
    freqs = [n for _, n in vocab.token_freqs]
    assert freqs == sorted(freqs, reverse=True) and dict(vocab.token_freqs) == counts
    assert "w" not in vocab.token_to_idx  # seen once, below min_freq
    assert vocab["w"] == vocab.unk == vocab.token_to_idx["<unk>"]
    assert vocab["l"] == vocab.token_to_idx["l"]
    assert vocab[["h", "l"]] == vocab[("h", "l")] == [vocab["h"], vocab["l"]]


def test_vocab_to_tokens_and_flattening():
    vocab = d2l.Vocab([list("abc"), list("cd")])  # one list per line is flattened
    assert vocab.idx_to_token == ["<unk>", "a", "b", "c", "d"]
    assert dict(vocab.token_freqs)["c"] == 2
    idx = vocab[list("dab")]
    assert vocab.to_tokens(idx) == list("dab")
    assert vocab.to_tokens(idx[0]) == "d"
    assert vocab.to_tokens([idx[0]]) == ["d"]  # a list of one gives a list
    assert vocab.to_tokens(torch.tensor(idx)) == list("dab")
    assert vocab.to_tokens(torch.tensor(idx[1])) == "a"
    assert d2l.Vocab().idx_to_token == ["<unk>"]


# ---- The corpus ----------------------------------------------------------------------------


def test_corpus_facts(shared_data):
    path = d2l.download_timemachine()
    assert path == shared_data / "timemachine.txt"
    data = d2l.TimeMachine(batch_size=2, num_steps=10)
    assert len(data.corpus) == 173_428
    assert len(data.vocab) == 28
    assert data.vocab.idx_to_token == sorted([" ", "<unk>"] + [chr(c) for c in range(97, 123)])
    text = data._preprocess(d2l.read_timemachine())
    assert re.fullmatch("[a-z ]+", text) and "  " not in text
    assert data.corpus == data.vocab[list(text)]


def test_windows_and_labels():
    data = SmallText(batch_size=4, num_steps=6, num_train=30, num_val=20)
    T, n = len(data.corpus), 6
    assert data.X.shape == data.Y.shape == (T - n, n)
    corpus = torch.tensor(data.corpus)
    for i in (0, 1, T - n - 1):  # window i starts at token i; labels are shifted by one
        assert torch.equal(data.X[i], corpus[i:i + n])
        assert torch.equal(data.Y[i], corpus[i + 1:i + n + 1])
    tX, _ = loader_tensors(data.train_dataloader())
    vX, vY = loader_tensors(data.val_dataloader())
    assert sorted(tX.tolist()) == sorted(data.X[:30].tolist())  # shuffled first windows
    assert torch.equal(vX, data.X[30:50]) and torch.equal(vY, data.Y[30:50])
    X, Y = next(iter(data.train_dataloader()))
    assert X.shape == Y.shape == (4, n) and X.dtype == Y.dtype == torch.int64
    assert torch.equal(X[:, 1:], Y[:, :-1])


def test_whole_corpus_split_has_no_overlap():
    data = SmallText(batch_size=8, num_steps=5, whole_corpus=True)
    T, n = len(data.corpus), 5
    split = int(0.9 * T)
    tX, _ = loader_tensors(data.train_dataloader())
    vX, vY = loader_tensors(data.val_dataloader())
    assert len(tX) == split - n and len(vX) == T - n - split
    assert sorted(tX.tolist()) == sorted(data.X[:split - n].tolist())
    assert torch.equal(vX, data.X[split:T - n])
    # the last training window's labels end at token split - 1; validation starts at split
    assert torch.equal(data.Y[split - n - 1], torch.tensor(data.corpus[split - n:split]))
    assert torch.equal(vX[0], torch.tensor(data.corpus[split:split + n]))
    assert torch.equal(vY[-1], torch.tensor(data.corpus[T - n:T]))


# ---- Partitioning --------------------------------------------------------------------------

CASES = [(35, 2, 5), (100, 3, 4), (1000, 7, 9), (61, 1, 6)]


def partition_batches(iter_fn, T, b, n, seed):
    """The minibatches of iter_fn over the corpus 0..T-1, checked for what both iterators share."""
    g = torch.Generator().manual_seed(seed)
    batches = list(iter_fn(list(range(T)), b, n, generator=g))
    assert len(batches) == (T - n) // (b * n)
    for X, Y in batches:
        assert X.shape == Y.shape == (b, n) and X.dtype == Y.dtype == torch.int64
        assert torch.equal(Y, X + 1)  # tokens are positions: labels are the next tokens
    return batches


@pytest.mark.parametrize("T,b,n", CASES)
@pytest.mark.parametrize("seed", range(5))
def test_sequential_rows_continue_across_minibatches(T, b, n, seed):
    batches = partition_batches(d2l.seq_data_iter_sequential, T, b, n, seed)
    for X, _ in batches:
        assert torch.equal(X[:, 1:] - X[:, :-1], torch.ones(b, n - 1, dtype=torch.int64))
    assert 0 <= batches[0][0][0, 0] < n  # the offset
    for (X0, Y0), (X1, _) in itertools.pairwise(batches):
        assert torch.equal(X1[:, 0], X0[:, -1] + 1)  # row i continues row i
        assert torch.equal(X1[:, 0], Y0[:, -1])
    rows = torch.cat([X for X, _ in batches], dim=1)
    assert len(set(rows.flatten().tolist())) == rows.numel()  # rows do not overlap


@pytest.mark.parametrize("T,b,n", CASES)
@pytest.mark.parametrize("seed", range(5))
def test_random_sampling_is_a_shuffled_partition(T, b, n, seed):
    batches = partition_batches(d2l.seq_data_iter_random, T, b, n, seed)
    starts = []
    for X, Y in batches:
        assert torch.equal(X, X[:, :1] + torch.arange(n))  # contiguous subsequences
        assert int(Y.max()) <= T - 1
        starts += X[:, 0].tolist()
    offset = starts[0] % n
    assert offset < n and all(s % n == offset for s in starts)  # one grid of cut points
    assert len(set(starts)) == len(starts)  # hence non-overlapping subsequences


def test_random_sampling_offsets_and_order_depend_on_the_seed():
    T, b, n = 200, 3, 5

    def epoch(seed):
        g = torch.Generator().manual_seed(seed)
        return [X[:, 0].tolist() for X, _ in d2l.seq_data_iter_random(range(T), b, n, g)]

    assert epoch(1) == epoch(1)
    assert epoch(1) != epoch(2)
    assert {epoch(s)[0][0] % n for s in range(50)} == set(range(n))  # every offset occurs
    starts = sorted(s for batch in epoch(3) for s in batch)
    order = [s for batch in epoch(3) for s in batch]
    assert order != starts  # shuffled, not in reading order
    g = torch.Generator().manual_seed(0)  # one generator: successive epochs differ
    first = [X.tolist() for X, _ in d2l.seq_data_iter_random(range(T), b, n, g)]
    second = [X.tolist() for X, _ in d2l.seq_data_iter_random(range(T), b, n, g)]
    assert first != second


def test_sequential_offsets_cover_all_values_and_global_rng_reproducible():
    offsets = {
        int(next(d2l.seq_data_iter_sequential(range(100), 2, 4,
                                              torch.Generator().manual_seed(s)))[0][0, 0])
        for s in range(40)
    }
    assert offsets == set(range(4))
    torch.manual_seed(7)
    a = [X.tolist() for X, _ in d2l.seq_data_iter_random(range(100), 2, 4)]
    torch.manual_seed(7)
    b = [X.tolist() for X, _ in d2l.seq_data_iter_random(range(100), 2, 4)]
    assert a == b


def test_too_short_corpus_is_an_error():
    for fn in (d2l.seq_data_iter_random, d2l.seq_data_iter_sequential):
        with pytest.raises(ValueError, match="too short"):
            next(fn(range(10), 2, 5))


def test_seq_data_loader_is_reiterable():
    loader = d2l.SeqDataLoader(range(500), 4, 6, "random", torch.Generator().manual_seed(0))
    epochs = [[X.tolist() for X, _ in loader] for _ in range(3)]
    assert all(len(e) == len(loader) == (500 - 6) // 24 for e in epochs)
    assert epochs[0] != epochs[1]  # a fresh offset and order per pass
    fixed = d2l.SeqDataLoader(range(500), 4, 6, "sequential", 3)
    assert [X.tolist() for X, _ in fixed] == [X.tolist() for X, _ in fixed]
    with pytest.raises(ValueError, match="sampling"):
        d2l.SeqDataLoader(range(500), 4, 6, "shuffled")


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_time_machine_partitioned(shared_data, sampling):
    data = d2l.TimeMachinePartitioned(batch_size=16, num_steps=20, sampling=sampling, seed=0)
    assert data.sampling == sampling and len(data.vocab) == 28
    split = int(len(data.corpus) * 0.9)
    assert data.train_corpus + data.val_corpus == data.corpus
    assert len(data.train_corpus) == split
    train = data.train_dataloader()
    X, Y = next(iter(train))
    assert X.shape == Y.shape == (16, 20) and X.dtype == torch.int64
    assert len(train) == (split - 20) // (16 * 20)
    val = data.val_dataloader()
    first = [X.tolist() for X, _ in val]
    assert first == [X.tolist() for X, _ in val]  # validation is the same every epoch
    assert len(first) == len(val) > 0
    again = d2l.TimeMachinePartitioned(batch_size=16, num_steps=20, sampling=sampling, seed=0)
    assert torch.equal(next(iter(again.train_dataloader()))[0], X)  # seeded
    with pytest.raises(ValueError, match="sampling"):
        d2l.TimeMachinePartitioned(batch_size=16, num_steps=20, sampling="other")


def test_time_machine_partitioned_large_batches(shared_data):
    data = d2l.TimeMachinePartitioned(batch_size=1024, num_steps=32)
    assert len(data.train_dataloader()) == (int(len(data.corpus) * 0.9) - 32) // (1024 * 32)
    val = data.val_dataloader()  # the tail holds fewer than 1024 rows of 32 tokens
    (X, _), = list(val)
    assert X.shape == (len(data.val_corpus) // 32 - 1, 32) and len(val) == 1


# ---- Data folder and errors ----------------------------------------------------------------


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("D2L_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        assert d2l.data_dir() == tmp_path / "cache" / "d2l_lib"
        d2l.set_data_dir(tmp_path / "mine")
        assert d2l.data_dir() == tmp_path / "mine"
        monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path / "env"))
        assert d2l.data_dir() == tmp_path / "env"  # the environment variable wins
        with pytest.warns(UserWarning, match="D2L_DATA_DIR"):
            d2l.set_data_dir(tmp_path / "other")
        assert d2l.data_dir() == tmp_path / "env"
    finally:
        d2l.set_data_dir(None)


def test_corrupt_file_names_file_and_both_hashes(empty_data_dir, offline):
    path = empty_data_dir / "timemachine.txt"
    path.write_text("not the book")
    actual = hashlib.sha1(b"not the book").hexdigest()
    with pytest.raises(d2l.DataError) as err:
        d2l.download_timemachine()
    message = str(err.value)
    assert str(path) in message and SHA1 in message and actual in message
    assert "Delete" in message and "D2L_DATA_DIR" in message
    assert offline == []  # no silent re-download
    assert path.read_text() == "not the book"  # and the file is left alone


def test_missing_file_offline_says_where_to_put_it(empty_data_dir, offline):
    with pytest.raises(d2l.DataError) as err:
        d2l.read_timemachine()
    message = str(err.value)
    assert str(empty_data_dir / "timemachine.txt") in message
    assert "D2L_DATA_DIR" in message and "does not exist" in message
    assert offline == [d2l.DATA_URL + "timemachine.txt"]
    assert list(empty_data_dir.iterdir()) == []


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_verifies_before_saving(empty_data_dir, monkeypatch):
    good = (shared_folder() / "timemachine.txt").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, **kw: FakeResponse(b"<html>"))
    with pytest.raises(d2l.DataError, match="nothing was saved") as err:
        d2l.download_timemachine()
    assert SHA1 in str(err.value) and str(empty_data_dir / "timemachine.txt") in str(err.value)
    assert list(empty_data_dir.iterdir()) == []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, **kw: FakeResponse(good))
    path = d2l.download_timemachine()
    assert path == empty_data_dir / "timemachine.txt" and path.read_bytes() == good
    assert [p.name for p in empty_data_dir.iterdir()] == ["timemachine.txt"]


# ---- Perplexity ----------------------------------------------------------------------------


def test_perplexity_sanity_points():
    V = 28
    Y = torch.randint(V, (3, 7), generator=torch.Generator().manual_seed(0))
    nll = torch.nn.functional.cross_entropy(torch.zeros(21, V), Y.reshape(-1), reduction="none")
    assert d2l.perplexity(nll) == pytest.approx(V)
    assert d2l.perplexity(torch.zeros(5)) == 1.0
    assert d2l.perplexity([0.0, 2 * torch.log(torch.tensor(3.0)).item()]) == pytest.approx(3.0)
