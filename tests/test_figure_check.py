"""The figure checks. booktools/notebooks/startup/figure_check.py: executing a chapter fails
when one of its figures has an unlabelled axis, naming the cell; labelled figures and diagrams
with their axes off pass. booktools/notebooks/figures.py: a figure without a caption, a name
or alt text fails `make notebooks` and `make check`, naming the chapter's line and the fix."""

import importlib.util
from pathlib import Path

import matplotlib
import matplotlib.ticker
import nbformat
import pytest

from booktools import notebooks as nbt
from booktools.notebooks import figures
from booktools.notebooks.pairing import check_figures

matplotlib.use("Agg")
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
# A kernel startup file, copied into kernels as it is: loaded from its path, not the package.
spec = importlib.util.spec_from_file_location(
    "figure_check", ROOT / "booktools" / "notebooks" / "startup" / "figure_check.py")
figure_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figure_check)

HEADER = (ROOT / "book" / "intro.md").read_text().split("---\n")[1]


# The caption check (booktools/notebooks/figures.py): every image that reaches the page is a
# numbered figure with a caption, a name and alt text; it runs on the stored notebook.

CAPTIONED = """---
mystnb:
  figure:
    caption: A falling line.
    name: fig-figs-line
  image:
    alt: Line plot of loss against step, falling from 3 to 1.
---"""
LABELLED_PLOT = ('fig, ax = plt.subplots()\nax.plot([3, 2, 1])\n'
                 'ax.set(xlabel="step", ylabel="loss")\nplt.show()')


def test_unlabelled_axes_are_named():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([0, 1], [1, 0])
    ax1.set_xlabel("epoch")
    ax2.plot([0, 1], [0, 1])
    ax2.set_title("loss")
    assert figure_check.figure_problems(fig) == [
        "axes 1 has no y label",
        "axes 2 ('loss') has no x label",
        "axes 2 ('loss') has no y label",
    ]


def test_labelled_axes_diagrams_and_empty_axes_pass():
    fig = Figure()
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.plot([0, 1], [1, 0])
    ax1.set(xlabel="epoch", ylabel="perplexity")
    ax2.plot([0, 1], [0, 1])
    ax2.axis("off")  # a diagram
    del ax3  # no data at all
    assert figure_check.figure_problems(fig) == []


def chapter_with(cell: str) -> str:
    return (f"---\n{HEADER}---\n\n# Figures\n\n"
            f"```{{code-cell}} ipython3\nimport matplotlib.pyplot as plt\n```\n\n"
            f"```{{code-cell}} ipython3\n{cell}\n```\n")


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: book/figs\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    return tmp_path


def test_executing_a_chapter_with_an_unlabelled_figure_fails(book):
    (book / "book" / "figs.md").write_text(chapter_with(
        'fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nax.set_xlabel("step")'))
    with pytest.raises(nbt.BookError) as err:
        nbt.sync(["figs"], root=book)
    message = str(err.value)
    assert "book/figs.md: figures without axis labels" in message
    assert "cell 3 (starting 'fig, ax = plt.subplots()'): axes 1 has no y label" in message
    assert not (book / "notebooks" / "figs.ipynb").exists()


def test_executing_a_chapter_with_labelled_figures_passes(book):
    (book / "book" / "figs.md").write_text(chapter_with(f"{CAPTIONED}\n{LABELLED_PLOT}"))
    nbt.sync(["figs"], root=book)
    assert (book / "notebooks" / "figs.ipynb").exists()



def test_a_figure_without_caption_or_alt_text_fails_the_run(book):
    (book / "book" / "figs.md").write_text(chapter_with(LABELLED_PLOT))
    with pytest.raises(nbt.BookError) as err:
        nbt.sync(["figs"], root=book)
    message = str(err.value)
    assert "book/figs.md, line 21, cell 3 (starting 'fig, ax = plt.subplots()')" in message
    assert "its figure has no caption (mystnb.figure.caption)" in message
    assert "its image has no alt text (mystnb.image.alt)" in message
    assert "name: fig-figs-<what>" in message  # the header to add
    assert "then run `make notebooks CHAPTERS=figs`" in message
    assert not (book / "notebooks" / "figs.ipynb").exists()


def test_a_captioned_figure_passes_and_check_then_fails_without_alt_text(book):
    md = book / "book" / "figs.md"
    md.write_text(chapter_with(f"{CAPTIONED}\n{LABELLED_PLOT}"))
    nbt.sync(["figs"], root=book)
    assert check_figures(book) == []
    # the stored notebook loses its alt text (as if it had been written without one)
    path = book / "notebooks" / "figs.ipynb"
    nb = nbformat.read(path, as_version=4)
    del nb.cells[2].metadata["mystnb"]["image"]
    md.write_text(md.read_text().replace(
        "  image:\n    alt: Line plot of loss against step, falling from 3 to 1.\n", ""))
    nbformat.write(nb, path)
    (problem,) = check_figures(book)
    assert problem.startswith("book/figs.md, line 21, cell 3")
    assert "its image has no alt text" in problem and "no caption" not in problem


def code_cell(outputs, metadata=None, tags=()):
    meta = dict(metadata or {})
    if tags:
        meta["tags"] = list(tags)
    return nbformat.v4.new_code_cell("plot()", metadata=meta, outputs=outputs)


PNG = nbformat.v4.new_output("display_data", data={"image/png": "iVBO", "text/plain": "<Figure>"})
TEXT = nbformat.v4.new_output("execute_result", data={"text/plain": "[<Line2D>]"},
                              execution_count=1)
META = {"mystnb": {"figure": {"caption": "A line.", "name": "fig-figs-line"},
                   "image": {"alt": "Line plot of loss against step."}}}


@pytest.mark.parametrize("alt", ["", "0a1b2c3d.png", "a plot"])
def test_alt_text_must_describe_the_image(alt):
    meta = {"mystnb": {**META["mystnb"], "image": {"alt": alt}}}
    (problem,) = figures.cell_problems(code_cell([PNG], meta))
    assert "alt text" in problem


def test_one_image_per_figure_cell_and_hidden_outputs_are_not_figures():
    assert figures.cell_problems(code_cell([PNG], META)) == []
    (problem,) = figures.cell_problems(code_cell([TEXT, PNG], META))
    assert "it shows 2 outputs (1 of them images)" in problem
    assert figures.cell_problems(code_cell([PNG], tags=["remove-output"])) == []
    (problem,) = figures.cell_problems(code_cell([TEXT], META))
    assert "shows no image" in problem
    (problem,) = figures.cell_problems(code_cell(
        [PNG], {"mystnb": {**META["mystnb"], "figure": {"caption": "A line.",
                                                        "name": "Figure 1"}}}))
    assert "not of the form fig-<chapter>-<what>" in problem


def test_prose_that_points_below_is_named_with_its_line(book):
    md = book / "book" / "figs.md"
    md.write_text(chapter_with("x = 1") + "\nAs the figure above shows, it falls.\n")
    nb = nbt.to_notebook(md)
    (problem,) = figures.caption_problems(nb, md, book)
    assert problem.startswith("book/figs.md, line 25: the prose says 'figure above'")
    assert "{numref}`fig-<name>`" in problem


def test_log_axes_with_math_text_ticks_are_flagged():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    for ax in (ax1, ax2):
        ax.plot([1, 10, 100])
        ax.set(xlabel="step", ylabel="norm", yscale="log")
    ax2.yaxis.set_major_formatter(matplotlib.ticker.LogFormatter())
    expected = ("axes 1 has a log y axis with 10^k tick labels "
                "(write d2l.log_axis(ax, 'y') after setting its scale)")
    assert figure_check.log_tick_problems(fig) == [expected]


def test_a_figure_name_used_twice_is_named():
    names = {"fig-a-loss": ["book/a.md cell 3", "book/b.md cell 7"], "fig-a-x": ["book/a.md cell 4"]}
    (problem,) = figures.duplicate_names(names)
    assert problem.startswith("figure name 'fig-a-loss' is used more than once (book/a.md cell 3")
