"""How long does the standard run of the RNN-from-scratch chapter take, with the plot off and on?

The standard run (book/rnn_scratch.md): TimeMachine(batch_size=1024, num_steps=32), 32 hidden
units, lr=1, gradient_clip_val=1, 100 epochs. The runs execute inside a real Jupyter kernel
(a notebook executed with nbclient), so that the progress board takes its live path (PNG
rendering and display updates), exactly as when the chapter is built. Order of the runs:

1. warm-up: 2 epochs with the plot on (the first figure of a kernel pays matplotlib's setup);
2. data only: the same 100 epochs of minibatches, iterated without a model (loader cost);
3. plot off: the standard run with `model.board.display = False`;
4. plot on: the standard run as the chapter does it;
5. with --reference: the same run with a reference-style model, whose loop does per step what
   the formula says (one-hot product, three products and a tanh per step, the output layer
   applied step by step) and whose clipping tests `norm > theta` on the host, plot off. It
   shows the speed-up of the chapter's model on the same machine, at the same moment.

    .venv/bin/python bench/rnn_scratch_speed.py                # ~1 minute on an idle 2-core CPU
    .venv/bin/python bench/rnn_scratch_speed.py --reference    # adds the reference-style run
    .venv/bin/python bench/rnn_scratch_speed.py --epochs 10    # a quick look
    .venv/bin/python bench/rnn_scratch_speed.py --threads 1    # torch's intra-op threads

On a machine shared with other work, torch's default of one intra-op thread per core can be
several times slower than one thread (threads wait for each other while the cores are busy):
compare --threads 1 with the default before drawing conclusions.

Prints numbers and asserts nothing about time. Timings on a shared machine are noisy: compare
runs taken at the same time (the load average is printed before and after).
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

SETUP = r'''
import json, os, time
import torch
from torch.nn import functional as F
import d2l_lib as d2l


class ReferenceStyleLM(d2l.RNNLMScratch):
    """The same model computed the literal way: everything inside the loop over time."""

    def forward(self, X, state=None):
        inputs = self.one_hot(X)  # (num_steps, batch_size, vocab_size)
        rnn = self.rnn
        H = torch.zeros(inputs.shape[1], rnn.num_hiddens) if state is None else state
        outputs = []
        for X_t in inputs:
            H = torch.tanh(X_t @ rnn.W_xh + H @ rnn.W_hh + rnn.b_h)
            outputs.append(H)
        return torch.stack([H_t @ self.W_hq + self.b_q for H_t in outputs], 1)


def reference_style_clip(self, grad_clip_val, model):
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > grad_clip_val:  # a host-device synchronisation at every step
        for p in params:
            p.grad[:] *= grad_clip_val / norm


def run(name, epochs, plot, reference=False):
    d2l.set_seed(0)
    data = d2l.TimeMachine(batch_size=1024, num_steps=32)
    cls = ReferenceStyleLM if reference else d2l.RNNLMScratch
    model = cls(d2l.RNNScratch(len(data.vocab), 32), len(data.vocab), lr=1)
    model.board.display = plot
    trainer = d2l.Trainer(max_epochs=epochs, gradient_clip_val=1)
    if reference:
        trainer.clip_gradients = reference_style_clip.__get__(trainer)
    tic, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, data)
    fit_s, cpu_s = time.perf_counter() - tic, time.process_time() - cpu
    print("RESULT " + json.dumps({
        "name": name, "epochs": epochs, "fit_s": fit_s, "cpu_s": cpu_s, "live": model.board.live,
        "threads": torch.get_num_threads(),
        "redraw_s": model.board.draw_seconds, "redraws": model.board.redraws,
        "train_ppl": trainer.history["train_ppl"][-1],
        "val_ppl": trainer.history["val_ppl"][-1]}))


def data_only(name, epochs):
    d2l.set_seed(0)
    data = d2l.TimeMachine(batch_size=1024, num_steps=32)
    train, val = data.train_dataloader(), data.val_dataloader()
    tic, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for batch in train:
            pass
        for batch in val:
            pass
    print("RESULT " + json.dumps({"name": name, "epochs": epochs,
                                  "fit_s": time.perf_counter() - tic,
                                  "cpu_s": time.process_time() - cpu}))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--reference", action="store_true",
                        help="also time the reference-style model (plot off)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the kernel (default: torch's default)")
    args = parser.parse_args()

    runs = ["run('warm-up, plot on', 2, True)",
            f"data_only('data loading only', {args.epochs})",
            f"run('plot off', {args.epochs}, False)",
            f"run('plot on', {args.epochs}, True)"]
    if args.reference:
        runs.append(f"run('reference-style, plot off', {args.epochs}, False, reference=True)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP)]
                                  + [nbformat.v4.new_code_cell(src) for src in runs])
    client = NotebookClient(nb, kernel_name="python3", timeout=1800,
                            resources={"metadata": {"path": str(ROOT)}})
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # inline backend
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    load_before = os.getloadavg()[0]
    tic = time.perf_counter()
    client.execute(env=env)
    elapsed, load_after = time.perf_counter() - tic, os.getloadavg()[0]
    results = {}
    for cell in nb.cells[1:]:
        for out in cell.outputs:
            for line in out.get("text", "").splitlines():
                if line.startswith("RESULT "):
                    r = json.loads(line[len("RESULT "):])
                    results[r["name"]] = r
    threads = results.get("plot off", {}).get("threads", "?")
    print(f"notebook executed in {elapsed:.1f} s; load average {load_before:.1f} before, "
          f"{load_after:.1f} after ({os.cpu_count()} CPUs); torch threads {threads}; "
          f"python {sys.executable}")
    print(f"{'run':<30} {'epochs':>6} {'seconds':>8} {'CPU s':>8} {'redraw s':>9} {'redraws':>8} "
          f"{'train ppl':>10} {'val ppl':>8}")
    for r in results.values():
        print(f"{r['name']:<30} {r['epochs']:6d} {r['fit_s']:8.2f} {r['cpu_s']:8.2f} "
              f"{r.get('redraw_s', float('nan')):9.3f} {r.get('redraws', 0):8d} "
              f"{r.get('train_ppl', float('nan')):10.3f} {r.get('val_ppl', float('nan')):8.3f}")
    off, on = results.get("plot off"), results.get("plot on")
    if off and on:
        print(f"plot cost: {on['fit_s'] - off['fit_s']:+.2f} s by difference, "
              f"{on['redraw_s']:.2f} s inside redraws")
    ref = results.get("reference-style, plot off")
    if off and ref:
        print(f"speed-up of the chapter's model over the reference-style one (plot off): "
              f"{ref['fit_s'] / off['fit_s']:.2f}x wall, {ref['cpu_s'] / off['cpu_s']:.2f}x CPU")
    print("seconds: wall time of trainer.fit; CPU s: the kernel's CPU time for it (all threads; "
          "less sensitive to other load). Plot cost by difference is noisy on a busy machine.")


if __name__ == "__main__":
    main()
