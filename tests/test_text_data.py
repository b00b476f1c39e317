"""Tests of the language-model data code saved from book/text_data.md.

The corpus tests read The Time Machine from D2L_DATA_DIR (the Makefile points it at the
shared data folder beside the checkout); the error tests simulate a machine without network
by replacing urllib.request.urlopen, so no test touches the network.
"""

import hashlib
import io
import itertools
import json
import os
import random
import re
import urllib.error
import urllib.request
import warnings
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


# ---- The same behaviour as before the rewrite ---------------------------------------------
# Captured from the code on main (commit 7e02e6e) before the data module's bodies were
# rewritten: the vocabulary and its order, the corpus, the windows, and the minibatches that
# seed 0 gives. Hashes are the first 16 hex digits of the SHA-256 of the int64 bytes.

REF_IDX_TO_TOKEN = [" ", "<unk>"] + [chr(c) for c in range(97, 123)]
REF_TOKEN_FREQS = [
    (" ", 32775), ("e", 17838), ("t", 13515), ("a", 11704), ("i", 10138), ("n", 9917),
    ("o", 9758), ("s", 8486), ("h", 8257), ("r", 7674), ("d", 6337), ("l", 6146),
    ("m", 4043), ("u", 3805), ("c", 3424), ("f", 3354), ("w", 3225), ("g", 3075),
    ("y", 2679), ("p", 2427), ("b", 1897), ("v", 1295), ("k", 1087), ("x", 236),
    ("z", 144), ("j", 97), ("q", 95)]
REF_CORPUS_HASH = "d1fb022c4cc5fc30"
REF_FIRST_X = [[21, 9, 6, 0, 21], [9, 6, 0, 21, 10], [6, 0, 21, 10, 14]]
REF_FIRST_Y = [[9, 6, 0, 21, 10], [6, 0, 21, 10, 14], [0, 21, 10, 14, 6]]
REF_LAST_X = [7, 0, 14, 2, 15]
REF_SEED0_B4N5_BATCHES = [
    [[15, 6, 0, 2, 0], [15, 0, 2, 15, 16], [2, 15, 0, 7, 10], [14, 10, 15, 5, 6]],
    [[5, 0, 23, 6, 19], [20, 12, 10, 15, 8], [0, 10, 15, 0, 10], [16, 22, 0, 24, 10]]]
# (hash of all X, hash of all Y, number of minibatches) of one epoch
REF_EPOCHS = {
    "b4n5 train": ("dfc6c2d3a91c45c5", "86400abf6f94287f", 2500),
    "b4n5 val": ("1d102ca53ef112b1", "94d756032580c03c", 1250),
    "b1024n32 train": ("745161ba9d137570", "45bf1ef30899c1b8", 10),
    "b1024n32 val": ("0db16ae09dc5f786", "8a83fb90f386a23a", 5),
    "whole train": ("81eaddb20b674c0c", "bb13dc600736c879", 153),
    "whole val": ("6a87d9c254c7ce21", "ce83548be8e89164", 17),
    "b256n16 train": ("0cee55da1626315d", "c33f565efec9c6b1", 8),
    "b256n16 val": ("26d92cd413f20f2f", "fb79c846ba815d04", 2),
    "part random train": ("b544dee133712565", "e198cd9bf5901751", 139),
    "part sequential train": ("d647ff8b6eb70240", "4ccb8fde00f0a2a6", 139),
    "part val": ("05382588fdfc1073", "5f445c2e0c9e5a7c", 15),
}
REF_WORDS_MIN10 = (400, "5a650b4b6125655a")  # len, hash of the joined idx_to_token
REF_WORDS_FREQS_HEAD = [
    ("the", 2261), ("i", 1267), ("and", 1245), ("of", 1155), ("a", 816), ("to", 695),
    ("was", 552), ("in", 541), ("that", 443), ("my", 440), ("it", 437), ("had", 354),
    ("me", 281), ("as", 270), ("at", 243), ("for", 221), ("with", 216), ("but", 204),
    ("time", 200), ("were", 158), ("this", 152), ("you", 137), ("on", 137), ("then", 134),
    ("his", 129), ("there", 127), ("he", 123), ("have", 122), ("they", 122), ("from", 122)]
REF_WORDS_FREQS_HASH = "42cbcf8342814f55"  # of json.dumps(token_freqs), ties in order
REF_WORDS_IDX_HASH = "0a477abc9fa4c712"


def int_hash(t):
    t = torch.as_tensor(t, dtype=torch.int64).contiguous()
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]


def text_hash(obj):
    return hashlib.sha256(obj.encode()).hexdigest()[:16]


def epoch_fingerprint(loader):
    Xs, Ys = zip(*loader)
    return (int_hash(torch.cat([x.flatten() for x in Xs])),
            int_hash(torch.cat([y.flatten() for y in Ys])), len(Xs))


def test_same_vocabulary_corpus_and_windows_as_before(shared_data):
    d2l.set_seed(0)
    data = d2l.TimeMachine(batch_size=4, num_steps=5)
    assert data.vocab.idx_to_token == REF_IDX_TO_TOKEN
    assert data.vocab.token_freqs == REF_TOKEN_FREQS
    assert len(data.corpus) == 173_428 and int_hash(data.corpus) == REF_CORPUS_HASH
    assert data.X[:3].tolist() == REF_FIRST_X and data.Y[:3].tolist() == REF_FIRST_Y
    assert data.X[-1].tolist() == REF_LAST_X
    d2l.set_seed(0)
    batches = iter(data.train_dataloader())
    assert [next(batches)[0].tolist() for _ in range(2)] == REF_SEED0_B4N5_BATCHES
    d2l.set_seed(0)
    assert epoch_fingerprint(data.train_dataloader()) == REF_EPOCHS["b4n5 train"]
    assert epoch_fingerprint(data.val_dataloader()) == REF_EPOCHS["b4n5 val"]


@pytest.mark.parametrize("name,kwargs,sizes", [
    ("b1024n32", {"batch_size": 1024, "num_steps": 32}, (10000, 5000)),
    ("whole", {"batch_size": 1024, "num_steps": 32, "whole_corpus": True}, (156053, 17311)),
    ("b256n16", {"batch_size": 256, "num_steps": 16, "num_train": 2048, "num_val": 512},
     (2048, 512)),
])
def test_same_minibatches_for_seed_0_as_before(shared_data, name, kwargs, sizes):
    d2l.set_seed(0)
    data = d2l.TimeMachine(**kwargs)
    d2l.set_seed(0)
    assert epoch_fingerprint(data.train_dataloader()) == REF_EPOCHS[name + " train"]
    assert epoch_fingerprint(data.val_dataloader()) == REF_EPOCHS[name + " val"]
    assert (len(data.train_dataloader().dataset), len(data.val_dataloader().dataset)) == sizes
    assert (len(data.window_range(True)), len(data.window_range(False))) == sizes


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_same_partitions_as_before(shared_data, sampling):
    data = d2l.TimeMachinePartitioned(batch_size=32, num_steps=35, sampling=sampling, seed=0)
    assert epoch_fingerprint(data.train_dataloader()) == REF_EPOCHS[f"part {sampling} train"]
    assert epoch_fingerprint(data.val_dataloader()) == REF_EPOCHS["part val"]


def test_toy_partitions_as_before():
    ref = {
        "random": [[[18, 19, 20, 21, 22], [13, 14, 15, 16, 17]],
                   [[8, 9, 10, 11, 12], [28, 29, 30, 31, 32]],
                   [[3, 4, 5, 6, 7], [23, 24, 25, 26, 27]]],
        "sequential": [[[3, 4, 5, 6, 7], [18, 19, 20, 21, 22]],
                       [[8, 9, 10, 11, 12], [23, 24, 25, 26, 27]],
                       [[13, 14, 15, 16, 17], [28, 29, 30, 31, 32]]],
    }
    for name, fn in [("random", d2l.seq_data_iter_random),
                     ("sequential", d2l.seq_data_iter_sequential)]:
        got = [X.tolist() for X, _ in fn(list(range(35)), 2, 5, torch.Generator().manual_seed(2))]
        assert got == ref[name]


def test_word_vocabulary_as_before(shared_data):
    words = d2l.normalize_text(d2l.read_timemachine()).split()
    vocab = d2l.Vocab(words)
    assert vocab.token_freqs[:30] == REF_WORDS_FREQS_HEAD
    assert text_hash(json.dumps(vocab.token_freqs)) == REF_WORDS_FREQS_HASH
    assert text_hash(json.dumps(vocab.idx_to_token)) == REF_WORDS_IDX_HASH
    small = d2l.Vocab(words, min_freq=10)
    assert (len(small), text_hash("\n".join(small.idx_to_token))) == REF_WORDS_MIN10


def test_small_vocabulary_and_build_as_before():
    vocab = d2l.Vocab([["b", "a", "c"], ["c", "x"]], min_freq=2,
                      reserved_tokens=["<pad>", "<eos>"])
    assert vocab.idx_to_token == ["<eos>", "<pad>", "<unk>", "c"]
    assert vocab.token_freqs == [("c", 2), ("b", 1), ("a", 1), ("x", 1)]  # ties: first seen
    data = SmallText(batch_size=2, num_steps=4, num_train=20, num_val=10)
    reference = d2l.Vocab(REF_IDX_TO_TOKEN[:1] + REF_IDX_TO_TOKEN[2:])
    corpus, vocab = data.build("Hello, World! 123 \u00dcber", vocab=reference)
    assert vocab is reference
    assert corpus == [9, 6, 13, 13, 16, 0, 24, 16, 19, 13, 5, 0, 3, 6, 19]
    assert data._preprocess("  Hello, World! 123 \u00dcber--x\n") == " hello world ber x "


def test_normalize_text_matches_the_reference_rule():
    rng = random.Random(0)
    alphabet = "aZ -,.\n\t0!\u00dc\u0130\u212a\u00df'\"" + "xyzXYZ"
    samples = ["", " ", "a", "-a-", "A--B", "\n\n", "\u0130stanbul", "\u212aelvin"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
                for _ in range(2000)]
    for text in samples:
        assert d2l.normalize_text(text) == re.sub("[^A-Za-z]+", " ", text).lower(), text


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


# ---- Careless and hostile arguments: a clear error, never a silent surprise ------------------
# Each case below misbehaved before (trained on empty windows, failed deep inside torch,
# divided by zero, returned a wrong token, or gave NaN); now each raises at once with the
# problem, the value received, what is allowed and how to fix it.


@pytest.mark.parametrize("kwargs,error,words", [
    ({"num_steps": 0}, ValueError, ["num_steps", ">= 1", "got 0"]),
    ({"num_steps": -3}, ValueError, ["num_steps", "got -3"]),
    ({"num_steps": 5.0}, TypeError, ["num_steps", "integer", "5.0"]),
    ({"num_steps": True}, TypeError, ["num_steps", "True"]),
    ({"batch_size": 0}, ValueError, ["batch_size", "got 0"]),
    ({"batch_size": -4}, ValueError, ["batch_size", "got -4"]),
    ({"batch_size": 2.5}, TypeError, ["batch_size", "2.5"]),
    ({"num_train": 0}, ValueError, ["num_train", "got 0"]),
    ({"num_train": -5}, ValueError, ["num_train", "got -5"]),
    ({"num_val": -5}, ValueError, ["num_val", "got -5"]),
    ({"num_val": 0}, ValueError, ["num_val", "got 0"]),
])
def test_time_machine_rejects_bad_sizes(kwargs, error, words):
    args = {"batch_size": 4, "num_steps": 6, "num_train": 30, "num_val": 20} | kwargs
    with pytest.raises(error) as err:
        SmallText(**args)
    message = str(err.value)
    assert message.startswith("SmallText:") and "Pass e.g." in message
    assert all(w in message for w in words), message


def test_time_machine_windows_longer_than_the_corpus():
    T = len(SmallText(batch_size=2, num_steps=2, num_train=1, num_val=1).corpus)
    for n in (T, T + 1, 10 ** 6):
        with pytest.raises(ValueError, match=r"num_steps=\d+ is too long.*Use num_steps <="):
            SmallText(batch_size=2, num_steps=n)


def test_time_machine_num_train_that_leaves_no_validation():
    data = SmallText(batch_size=2, num_steps=6, num_train=10, num_val=5)
    windows = len(data.X)
    for num_train in (windows, windows + 1, 10 ** 6):
        with pytest.raises(ValueError, match="leaves no validation window") as err:
            SmallText(batch_size=2, num_steps=6, num_train=num_train, num_val=5)
        assert f"has {windows} windows" in str(err.value)
        assert f"num_train <= {windows - 5}" in str(err.value)
    # validation cut short: a warning that says how many windows validate
    with pytest.warns(UserWarning, match=r"validation gets only the 3 "):
        short = SmallText(batch_size=2, num_steps=6, num_train=windows - 3, num_val=20)
    assert len(short.val_dataloader().dataset) == len(short.window_range(False)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SmallText(batch_size=2, num_steps=6, num_train=windows - 3, num_val=3)


def test_whole_corpus_with_windows_longer_than_the_tail():
    T = len(SmallText(batch_size=2, num_steps=2, num_train=1, num_val=1).corpus)
    longest = T - int(0.9 * T) - 1
    data = SmallText(batch_size=2, num_steps=longest, whole_corpus=True)
    assert len(data.window_range(False)) == 1
    with pytest.raises(ValueError, match=f"leaves no validation window.*<= {longest}"):
        SmallText(batch_size=2, num_steps=longest + 1, whole_corpus=True)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
    ({"num_steps": 0}, ValueError, "num_steps must be an integer >= 1"),
    ({"num_steps": -1}, ValueError, "num_steps must be an integer >= 1"),
    ({"val_fraction": 0}, ValueError, "strictly between 0 and 1.*got 0"),
    ({"val_fraction": 1}, ValueError, "strictly between 0 and 1.*got 1"),
    ({"val_fraction": -0.5}, ValueError, "strictly between 0 and 1.*got -0.5"),
    ({"val_fraction": 1.5}, ValueError, "strictly between 0 and 1.*got 1.5"),
    ({"val_fraction": float("nan")}, ValueError, "strictly between 0 and 1.*got nan"),
    ({"val_fraction": "0.1"}, TypeError, "strictly between 0 and 1.*got '0.1'"),
    ({"num_steps": 10_000}, ValueError, "validation tokens are too few"),
    ({"batch_size": 10_000, "num_steps": 100}, ValueError, "training tokens are too few"),
    ({"sampling": "Random"}, ValueError, "sampling must be 'random' or 'sequential'"),
    ({"sampling": ["random"]}, ValueError, "sampling must be 'random' or 'sequential'"),
    ({"seed": None}, TypeError, "seed must be an int"),
    ({"seed": "a"}, TypeError, "seed"),
])
def test_time_machine_partitioned_rejects_bad_arguments(shared_data, kwargs, error, match):
    args = {"batch_size": 4, "num_steps": 5} | kwargs
    with pytest.raises(error, match=match):
        d2l.TimeMachinePartitioned(**args)


@pytest.mark.parametrize("call,error,match", [
    (lambda: d2l.SeqDataLoader(range(100), 0, 5), ValueError, "SeqDataLoader: batch_size"),
    (lambda: d2l.SeqDataLoader(range(100), 2, 0), ValueError, "SeqDataLoader: num_steps"),
    (lambda: d2l.SeqDataLoader(range(100), 2, 5, ["random"]), ValueError, "sampling"),
    (lambda: d2l.SeqDataLoader(range(100), 2, 5, None), ValueError, "sampling"),
    (lambda: d2l.SeqDataLoader(range(100), 2, 5, generator="x"), TypeError, "generator"),
    (lambda: d2l.SeqDataLoader(range(100), 2, 5, generator=1.5), TypeError, "generator"),
    (lambda: d2l.SeqDataLoader(range(8), 2, 5), ValueError, "too short"),
    (lambda: next(d2l.seq_data_iter_random(range(100), 2, 0)), ValueError,
     "seq_data_iter_random: num_steps must be an integer >= 1"),
    (lambda: next(d2l.seq_data_iter_sequential(range(100), -1, 5)), ValueError,
     "seq_data_iter_sequential: batch_size must be an integer >= 1"),
    (lambda: next(d2l.seq_data_iter_sequential(range(100), 2, 2.0)), TypeError,
     "num_steps must be an integer"),
])
def test_partition_loaders_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_to_tokens_rejects_negative_and_out_of_range_indices():
    vocab = d2l.Vocab(list("abc"))
    for bad in (-1, len(vocab), 99, torch.tensor(-1), torch.tensor([1, -1]), [0, 4]):
        with pytest.raises(IndexError, match=r"out of range.*4 tokens, indices 0 to 3"):
            vocab.to_tokens(bad)
    assert vocab.to_tokens(len(vocab) - 1) == "c" and vocab.to_tokens(0) == "<unk>"


@pytest.mark.parametrize("bad", [1.7, 1.0, True, "a", torch.tensor([1.0, 2.0]),
                                 torch.ones(2, 3, dtype=torch.int64)])
def test_to_tokens_rejects_what_is_not_an_integer_index(bad):
    with pytest.raises(TypeError, match="an index must be an integer"):
        d2l.Vocab(list("abc")).to_tokens(bad)


def test_vocab_rejects_tokens_that_are_not_strings():
    with pytest.raises(TypeError, match=r"every token must be a str.*1 \(int\)"):
        d2l.Vocab([1, 2, 3])
    with pytest.raises(TypeError, match="every token must be a str"):
        d2l.Vocab(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"reserved_tokens=\['<pad>'\]"):
        d2l.Vocab(list("abc"), reserved_tokens="<pad>")  # would reserve '<', 'p', ...
    vocab = d2l.Vocab(list("abc"))
    for bad in (torch.tensor([1, 2]), 2, {"a"}):
        with pytest.raises(TypeError, match="to_tokens"):
            vocab[bad]  # indices where tokens belong: not silently <unk>
    assert d2l.Vocab(c for c in "abca").idx_to_token == ["<unk>", "a", "b", "c"]


def test_perplexity_rejects_what_has_no_perplexity():
    with pytest.raises(ValueError, match="empty"):
        d2l.perplexity([])
    with pytest.raises(ValueError, match=r"1 NaN value\(s\) among 2"):
        d2l.perplexity([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"got -1.*Negate them"):
        d2l.perplexity([0.5, -1.0])  # log-probabilities passed by mistake
    with pytest.raises(TypeError, match="expects numbers"):
        d2l.perplexity("a")
    assert d2l.perplexity([float("inf")]) == float("inf")  # probability 0: infinite
    assert d2l.perplexity(1000.0) == float("inf")  # too large for a float, not an error


def test_build_rejects_bytes_with_a_hint():
    with pytest.raises(TypeError, match=r"decode\('utf-8'\)"):
        d2l.normalize_text(b"bytes")


# ---- The chapter's page ------------------------------------------------------------------------


def test_chapter_code_fits_the_page_and_hides_its_bookkeeping():
    chapter = (Path(__file__).resolve().parents[1] / "book" / "text_data.md").read_text()
    cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", chapter, re.DOTALL)
    assert len(cells) > 10
    for cell in cells[1:]:  # the first is the generated Colab setup cell
        hidden = re.match(r"(?:---\n)?:?tags: \[[^\]]*remove-cell", cell)
        assert hidden or "glue(" not in cell, cell[:200]
        assert "_preprocess(" not in cell or "def _preprocess" in cell  # public calls only
        for line in cell.splitlines():
            assert len(line) <= 80, line
