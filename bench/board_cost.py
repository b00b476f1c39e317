"""How much time does the ProgressBoard spend drawing during a 100-epoch training run?

The run imitates the plotting pattern of the book's standard RNN run (batch size 1024 on The
Time Machine): per epoch, 10 training minibatches (10,000 windows in batches of 1024) and 5
validation minibatches, the training perplexity plotted twice per epoch and the validation
perplexity once. The "model" is one
parameter, so the run's cost is the trainer, the board and, optionally, a simulated compute time
per minibatch (`--train-ms`, `--val-ms`): the board's redraw throttle depends on how long
training takes, so a realistic run length matters.

The runs execute inside a real Jupyter kernel (a notebook executed with nbclient), so the board
takes its Jupyter path: PNG rendering, display(..., display_id=True), handle.update(...). After a
short warm-up run (the first figure of a kernel pays matplotlib's one-time setup), three runs:
board off without simulated compute (the trainer alone), board on without simulated compute
(the board's overhead), and board on with simulated compute (the realistic case).

    .venv/bin/python bench/board_cost.py                 # ~30 s
    .venv/bin/python bench/board_cost.py --train-ms 0    # only the fast runs

Prints numbers; asserts nothing about time (the target is < 2 s of drawing per 100 epochs).
"""

import argparse
import base64
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent

SETUP = r'''
import json, time
import torch
import d2l_lib as d2l

class PlotPattern(d2l.DataModule):
    """10 training and 5 validation minibatches per epoch, as the RNN run with batch 1024."""
    def __init__(self, train_batches=10, val_batches=5):
        super().__init__()
        self.save_hyperparameters()
        self.batch = (torch.zeros(4, 1), torch.zeros(4, 1))
    def get_dataloader(self, train):
        return [self.batch] * (self.train_batches if train else self.val_batches)

class FakeLM(d2l.Classifier):
    """One parameter; logs 'ppl' like the RNN language models; may sleep to simulate compute."""
    def __init__(self, train_s=0.0, val_s=0.0, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.w = torch.nn.Parameter(torch.tensor(2.0))
    def step_loss(self, seconds):
        if seconds:
            time.sleep(seconds)
        return 1.0 + self.w ** 2
    def training_step(self, batch):
        loss = self.step_loss(self.train_s)
        self.plot("ppl", torch.exp(loss), train=True)
        return loss
    def validation_step(self, batch):
        self.plot("ppl", torch.exp(self.step_loss(self.val_s)), train=False)

def run(name, epochs, train_ms, val_ms, board_on):
    d2l.set_seed(0)
    model = FakeLM(train_ms / 1000, val_ms / 1000)
    board = model.board
    board.display = board_on
    spent = [0.0, 0]
    def timed(method):
        def wrapper(*args, **kwargs):
            tic = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - tic
                spent[1] += 1
        return wrapper
    board.draw, board.flush = timed(board.draw), timed(board.flush)
    trainer = d2l.Trainer(max_epochs=epochs)
    tic = time.perf_counter()
    trainer.fit(model, PlotPattern())
    total = time.perf_counter() - tic
    print("RESULT " + json.dumps({
        "name": name, "live": board.live, "fit_s": total, "board_s": spent[0],
        "board_calls": spent[1], "redraw_s": board.draw_seconds, "redraws": board.redraws,
        "lines": len(board.axes.lines) if board.axes is not None else 0,
        "epochs": len(trainer.history["val_ppl"])}))
'''


def make_notebook(epochs, train_ms, val_ms):
    cells = [nbformat.v4.new_code_cell(SETUP)]
    runs = [
        # The first figure of a kernel pays matplotlib's one-time setup (fonts): a short run
        # takes it, so that the rows below show the steady cost.
        ("warm-up: first figure, 3 epochs", 0, 0, True, 3),
        ("board off, no compute", 0, 0, False, epochs),
        ("board on, no compute", 0, 0, True, epochs),
    ]
    if train_ms or val_ms:
        runs.append((f"board on, {train_ms:g}/{val_ms:g} ms per batch", train_ms, val_ms, True,
                     epochs))
    for name, t, v, on, n in runs:
        cells.append(nbformat.v4.new_code_cell(f"run({name!r}, {n}, {t}, {v}, {on})"))
    return nbformat.v4.new_notebook(cells=cells)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--train-ms", type=float, default=20.0,
                        help="simulated compute per training minibatch (default 20)")
    parser.add_argument("--val-ms", type=float, default=10.0,
                        help="simulated compute per validation minibatch (default 10)")
    args = parser.parse_args()

    nb = make_notebook(args.epochs, args.train_ms, args.val_ms)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(ROOT)}})
    tic = time.perf_counter()
    client.execute()
    print(f"notebook executed in {time.perf_counter() - tic:.1f} s "
          f"(kernel python: {sys.executable})")
    print(f"{'run':<34} {'epochs':>6} {'fit s':>7} {'board s':>8} {'redraw s':>9} {'redraws':>8} "
          f"{'lines':>6} {'images':>7} {'PNG kB':>7}")
    for cell in nb.cells[1:]:
        result, images, png_bytes = None, 0, 0
        for out in cell.outputs:
            if out.output_type == "stream":
                for line in out.text.splitlines():
                    if line.startswith("RESULT "):
                        result = json.loads(line[len("RESULT "):])
            data = out.get("data", {})
            if "image/png" in data:
                images += 1
                png_bytes += len(base64.b64decode(data["image/png"]))
            if "image/svg+xml" in data:
                images += 1
        if result is None:
            print("no result:", cell.source, cell.outputs)
            continue
        if result["name"] != "board off, no compute":
            assert result["live"], "the board did not detect the Jupyter kernel"
        print(f"{result['name']:<34} {result['epochs']:6d} {result['fit_s']:7.2f} {result['board_s']:8.3f} "
              f"{result['redraw_s']:9.3f} {result['redraws']:8d} {result['lines']:6d} "
              f"{images:7d} {png_bytes / 1000:7.1f}")
    print("board s: time inside board.draw/flush (averaging, redraws, PNG, display); "
          "redraw s: the redraws alone; images: image outputs the notebook keeps.")


if __name__ == "__main__":
    main()
