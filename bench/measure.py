"""One benchmark measurement: train one RNN language model once, in a Jupyter kernel.

    .venv/bin/python bench/measure.py --impl ours|ref --model scratch|concise --plot on|off
                                      [--seed 0] [--epochs 100]

prints one line, ``BENCH_RESULT {json}``. bench/run.py calls it once per measurement, each in
its own process (and so its own kernel).

How it runs. Both implementations run the same way, as a reader runs a chapter: a notebook of a
few cells is executed by nbclient in a real IPython kernel (ipykernel) with matplotlib's inline
backend, which is what Jupyter and the book's own build use. "ours" runs in the book's .venv
(kernel bench-ours) and imports d2l_lib; "ref" runs in .bench/ref-venv (kernel bench-ref, made by
bench/setup_reference.sh) and imports d2l 1.0.3 from PyPI. With the plot on, each library's
ProgressBoard draws exactly what it draws for a reader: for d2l 1.0.3 that is a matplotlib figure
rendered as SVG by IPython's display() at every plotted point (two per epoch for training, one
for validation), sent to the notebook client, then cleared; the drawing is not stubbed out.
With the plot off, the board's ``display`` is set to False (both libraries support that).

What is timed. ``train_s``: the wall time of the notebook cell that runs
``trainer.fit(model, data)``, measured by the client around the cell's execution (so it includes
the figures' rendering and their transport to the notebook, as a reader waits for them);
``fit_s``: the same call timed inside the kernel, and ``fit_cpu_s`` the kernel's CPU time for
it (less sensitive to other load on the machine, though not immune). Perplexities are computed
after training by the same code for both implementations: exp of the mean per-token cross-entropy over the whole
train and validation loaders, model in eval mode, no gradients. Configuration: d2l's chapter
"RNN from scratch" (batch 1024, 32 steps, 32 hidden units, lr 1, gradient clipping 1,
100 epochs), seed set with ``torch.manual_seed`` (and Python's and NumPy's) before building.
Threads: torch's default, unless BENCH_THREADS is set (then OMP_NUM_THREADS for both kernels).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("BENCH_DIR", ROOT / ".bench")).resolve()
MARK = "BENCH_RESULT "

IMPORTS = {
    "ours": "import d2l_lib as d2l",
    "ref": "from d2l import torch as d2l",
}
# The chapter code of each implementation, with the same configuration. The reference's lines
# are those of d2l 1.0's chapters (sections "RNN from scratch" and "concise RNN").
BUILD = {
    ("ref", "scratch"): (
        "rnn = d2l.RNNScratch(num_inputs=len(data.vocab), num_hiddens=32)\n"
        "model = d2l.RNNLMScratch(rnn, vocab_size=len(data.vocab), lr=1)\n"
        "trainer = d2l.Trainer(max_epochs=EPOCHS, gradient_clip_val=1, num_gpus=1)"
    ),
    ("ref", "concise"): (
        "rnn = d2l.RNN(num_inputs=len(data.vocab), num_hiddens=32)\n"
        "model = d2l.RNNLM(rnn, vocab_size=len(data.vocab), lr=1)\n"
        "trainer = d2l.Trainer(max_epochs=EPOCHS, gradient_clip_val=1, num_gpus=1)"
    ),
    # d2l 1.0.3's Trainer quietly falls back to the CPU when num_gpus=1 finds no GPU; this
    # book's Trainer takes num_gpus literally, so ask for the GPUs that exist (at most one).
    ("ours", "scratch"): (
        "rnn = d2l.RNNScratch(num_inputs=len(data.vocab), num_hiddens=32)\n"
        "model = d2l.RNNLMScratch(rnn, vocab_size=len(data.vocab), lr=1)\n"
        "trainer = d2l.Trainer(max_epochs=EPOCHS, gradient_clip_val=1,\n"
        "                      num_gpus=min(1, torch.cuda.device_count()))"
    ),
    ("ours", "concise"): (
        "rnn = d2l.RNN(num_inputs=len(data.vocab), num_hiddens=32)\n"
        "model = d2l.RNNLM(rnn, vocab_size=len(data.vocab), lr=1)\n"
        "trainer = d2l.Trainer(max_epochs=EPOCHS, gradient_clip_val=1,\n"
        "                      num_gpus=min(1, torch.cuda.device_count()))"
    ),
}

SETUP = """\
import json, math, os, platform, random, sys, time
import numpy as np
import torch
from torch.nn import functional as F
{import_line}
SEED, EPOCHS, PLOT = {seed}, {epochs}, {plot}
t0 = time.perf_counter()
data = d2l.TimeMachine(batch_size=1024, num_steps=32)
data_s = time.perf_counter() - t0
random.seed(SEED); np.random.seed(SEED); torch.manual_seed(SEED)
"""

AFTER_BUILD = """
if not PLOT:
    model.board.display = False
"""

FIT_TIMED = """\
_t0, _c0 = time.perf_counter(), time.process_time()
trainer.fit(model, data)
fit_s, fit_cpu_s = time.perf_counter() - _t0, time.process_time() - _c0"""

REPORT = """\
def _bench_ppl(loader):
    model.eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            X, Y = trainer.prepare_batch(batch)
            Y_hat = model(X)
            nll += F.cross_entropy(Y_hat.reshape(-1, Y_hat.shape[-1]), Y.reshape(-1),
                                   reduction='sum').item()
            n += Y.numel()
    return math.exp(nll / n)

_tokens = sum(batch[0].numel() for batch in data.train_dataloader())
_hist = getattr(trainer, 'history', None)
if _hist:
    _plotted = _hist['val_ppl'][-1] if _hist.get('val_ppl') else None
else:  # d2l 1.0.3 keeps the plotted points on the board
    _line = getattr(model.board, 'data', {{}}).get('val_ppl')
    _plotted = float(_line[-1].y) if _line else None
_res = dict(
    train_ppl=_bench_ppl(data.train_dataloader()), val_ppl=_bench_ppl(data.val_dataloader()),
    plotted_val_ppl=_plotted, fit_s=fit_s, fit_cpu_s=fit_cpu_s, data_s=data_s,
    tokens_per_epoch=_tokens,
    epochs=EPOCHS, seed=SEED, torch=torch.__version__, threads=torch.get_num_threads(),
    interop_threads=torch.get_num_interop_threads(), python=platform.python_version(),
    device=str(next(model.parameters()).device),
    mpl_backend=__import__('matplotlib').get_backend(), library=d2l.__name__,
    library_file=d2l.__file__,
)
print({mark!r} + json.dumps(_res))
"""


def notebook(impl, model, plot, seed, epochs):
    cells = [
        SETUP.format(import_line=IMPORTS[impl], seed=seed, epochs=epochs, plot=plot),
        BUILD[(impl, model)] + "\n" + AFTER_BUILD,
        FIT_TIMED,
        REPORT.format(mark=MARK),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": f"bench-{impl}", "display_name": f"bench-{impl}",
                                 "language": "python"}
    return nb


def kernel_env(impl):
    """The kernel's environment: Jupyter's own defaults, not the Makefile's batch settings."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # ipykernel then selects the inline backend, as in Jupyter
    env["JUPYTER_PATH"] = str(BENCH_DIR / "jupyter")
    env["PYTHONHASHSEED"] = "0"
    # The same file for both: the link bench/setup_reference.sh made to the local data folder.
    env.setdefault("D2L_DATA_DIR", str(BENCH_DIR / "data"))
    if impl == "ref":
        env.pop("PYTHONPATH", None)
    if os.environ.get("BENCH_THREADS"):  # the same thread count for both implementations
        env["OMP_NUM_THREADS"] = os.environ["BENCH_THREADS"]
    return env


def run(impl, model, plot, seed, epochs, keep=None):
    nb = notebook(impl, model, plot, seed, epochs)
    # d2l 1.0.3 reads its data from '../data' (DataModule's default root): .bench/work is its
    # working directory and .bench/data holds a link to the local timemachine.txt.
    cwd = BENCH_DIR / "work" if impl == "ref" else ROOT
    env = kernel_env(impl)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    client = NotebookClient(nb, kernel_name=f"bench-{impl}", timeout=1800,
                            resources={"metadata": {"path": str(cwd)}})
    cell_s = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            t0 = time.perf_counter()
            client.execute_cell(cell, index)
            cell_s.append(time.perf_counter() - t0)
    if keep:
        nbformat.write(nb, keep)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    line = next(x for x in text.splitlines() if x.startswith(MARK))
    res = json.loads(line[len(MARK):])
    n_outputs = len(nb.cells[2].outputs)
    res.update(impl=impl, model=model, plot=plot, train_s=cell_s[2], cell_s=cell_s,
               fit_cell_outputs=n_outputs)
    res["tokens_per_s"] = res["tokens_per_epoch"] * res["epochs"] / res["train_s"]
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--impl", choices=["ours", "ref"], required=True)
    p.add_argument("--model", choices=["scratch", "concise"], required=True)
    p.add_argument("--plot", choices=["on", "off"], required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--keep", help="write the executed notebook here")
    a = p.parse_args(argv)
    res = run(a.impl, a.model, a.plot == "on", a.seed, a.epochs, a.keep)
    print(MARK + json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
