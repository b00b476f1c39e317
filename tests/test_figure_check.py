"""booktools/notebooks/startup/figure_check.py: executing a chapter fails when one of its
figures has an unlabelled axis, naming the cell; labelled figures and diagrams with their axes off pass."""

import importlib.util
from pathlib import Path

import matplotlib
import pytest

from booktools import notebooks as nbt

matplotlib.use("Agg")
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
# A kernel startup file, copied into kernels as it is: loaded from its path, not the package.
spec = importlib.util.spec_from_file_location(
    "figure_check", ROOT / "booktools" / "notebooks" / "startup" / "figure_check.py")
figure_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figure_check)

HEADER = (ROOT / "book" / "intro.md").read_text().split("---\n")[1]


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
    (book / "book" / "figs.md").write_text(chapter_with(
        'fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nax.set(xlabel="step", ylabel="loss")'))
    nbt.sync(["figs"], root=book)
    assert (book / "notebooks" / "figs.ipynb").exists()

