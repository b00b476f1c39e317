"""Kernel startup file: report every figure that is drawn with an unlabelled axis.

`booktools/notebooks/execution.py` copies this file into the IPython startup folder of the kernels it
starts (`make notebooks`, `make test-gpu`) and sets BOOK_FIGURE_REPORT to a file. Whenever a
figure is rendered (the inline backend showing it, `savefig`, the progress board's PNG), each
of its visible axes that holds data must have an x label and a y label; every problem is
appended to that file as one JSON line, which the tool turns into an error naming the chapter
and the cell. Axes switched off (`ax.axis("off")`, diagrams) are not checked. A log axis
still labelled with matplotlib's default math text ($10^{-3}$) is a problem too: the style
wants 1e-3 (`d2l.log_axis`, defined in the toolkit chapter).
"""

import json
import os

from IPython import get_ipython
from matplotlib.backend_bases import FigureCanvasBase

REPORT = os.environ.get("BOOK_FIGURE_REPORT")


def _checked_axes(figure):
    """(name, axes) for every visible axes of `figure` that holds data and is switched on."""
    for number, ax in enumerate(figure.axes, start=1):
        if ax.axison and ax.get_visible() and ax.has_data():
            yield f"axes {number}" + (f" ({ax.get_title()!r})" if ax.get_title() else ""), ax


def figure_problems(figure) -> list[str]:
    """What is missing in `figure`: one sentence per unlabelled axis."""
    problems = []
    for name, ax in _checked_axes(figure):
        for axis in ("x", "y"):
            if not getattr(ax, f"get_{axis}label")().strip():
                problems.append(f"{name} has no {axis} label")
    return problems


def log_tick_problems(figure) -> list[str]:
    """Log axes that keep matplotlib's default tick labels, math text such as $10^{-3}$.

    The book's style writes them as plain numbers (1e-3, 0.01, 100): d2l.log_axis.
    """
    from matplotlib.ticker import LogFormatterMathtext

    problems = []
    for name, ax in _checked_axes(figure):
        for axis in ("x", "y"):
            getter = getattr(ax, f"get_{axis}axis")()
            if (getattr(ax, f"get_{axis}scale")() == "log"
                    and isinstance(getter.get_major_formatter(), LogFormatterMathtext)):
                problems.append(f"{name} has a log {axis} axis with 10^k tick labels "
                                f"(write d2l.log_axis(ax, {axis!r}) after setting its scale)")
    return problems


_running = {"cell_id": None, "source": ""}  # the cell being run


def _remember_cell(info):
    _running.update(cell_id=getattr(info, "cell_id", None), source=info.raw_cell or "")


_print_figure = FigureCanvasBase.print_figure


def print_figure(self, *args, **kwargs):
    problems = figure_problems(self.figure) + log_tick_problems(self.figure)
    if problems and REPORT:
        with open(REPORT, "a", encoding="utf8") as report:
            report.write(json.dumps({**_running, "problems": problems}) + "\n")
    return _print_figure(self, *args, **kwargs)


FigureCanvasBase.print_figure = print_figure
if get_ipython() is not None:
    get_ipython().events.register("pre_run_cell", _remember_cell)
