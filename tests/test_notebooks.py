"""booktools.notebooks: chapter -> notebook pairing, its check, the Colab cell, cleaning.

Each test builds a small book in a temporary folder (its own _toc.yml, _config.yml,
book/ and notebooks/), so the real chapters are never touched.
"""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from booktools import notebooks as nbt

ROOT = Path(__file__).resolve().parent.parent

HEADER = (ROOT / "book" / "intro.md").read_text().split("---\n")[1]
COLAB = """```{code-cell} ipython3
:tags: [remove-cell]
# Colab only: install the book's library, d2l_lib, at this page's version.
# Anywhere else this cell does nothing (the local setup installs d2l_lib).
import sys

if "google.colab" in sys.modules:
    source = "git+https://github.com/example/book@v1.2"
    %pip install -q --no-deps "d2l_lib @ {source}"
```"""


def chapter(title: str, *cells: str, colab: str = COLAB) -> str:
    body = "\n\n".join(cells)
    return f"---\n{HEADER}---\n\n(chapter-{title})=\n# {title}\n\n{colab}\n\nSome prose.\n\n{body}\n"


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/alpha\n  - file: book/beta\n"
    )
    (tmp_path / "_config.yml").write_text(
        "title: t\nrepository:\n  url: https://github.com/example/book\n  branch: v1.2\n"
    )
    (tmp_path / "book" / "intro.md").write_text(f"---\n{HEADER}---\n\n# Intro\n\nProse only.\n")
    (tmp_path / "book" / "alpha.md").write_text(
        chapter(
            "alpha",
            "```{code-cell} ipython3\nx = 6 * 7\nprint(x)\n```",
            "```{code-cell} ipython3\n:tags: [nbval-ignore-output]\nx\n```",
        )
    )
    (tmp_path / "book" / "beta.md").write_text(
        chapter("beta", "```{code-cell} ipython3\nfor i in range(3):\n    print(i)\n```")
    )
    return tmp_path


def write_unexecuted(book: Path) -> None:
    """Notebooks as `sync` writes them, with fake outputs instead of a kernel run."""
    for md in nbt.chapters(book):
        nb = nbt.to_notebook(md)
        for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = n + 1
        nbt.notebook_path(md, book).write_text(nbt.dumps(nbt.clean(nb)))


def test_chapters_are_toc_pages_with_code(book):
    assert [p.stem for p in nbt.chapters(book)] == ["alpha", "beta"]
    assert nbt.toc_pages(book) == ["book/intro", "book/alpha", "book/beta"]


def test_a_code_cell_shown_in_a_fence_is_not_code(book):
    (book / "book" / "intro.md").write_text(
        f"---\n{HEADER}---\n\n# Intro\n\n````markdown\n```{{code-cell}} ipython3\nx = 1\n```\n````\n"
    )
    assert [p.stem for p in nbt.chapters(book)] == ["alpha", "beta"]


def test_inputs_are_deterministic(book):
    md = book / "book" / "alpha.md"
    first, second = nbt.dumps(nbt.to_notebook(md)), nbt.dumps(nbt.to_notebook(md))
    assert first == second
    nb = nbt.to_notebook(md)
    assert set(nb.metadata) == {"kernelspec", "jupytext"}
    assert [c.metadata.get("tags") for c in nb.cells if c.cell_type == "code"] == [
        ["remove-cell"],
        None,
        ["nbval-ignore-output"],
    ]


def test_check_passes_when_paired(book):
    write_unexecuted(book)
    assert nbt.check(book) == []


def test_missing_and_orphan_notebooks_are_named(book):
    write_unexecuted(book)
    (book / "notebooks" / "beta.ipynb").unlink()
    shutil.copy(book / "notebooks" / "alpha.ipynb", book / "notebooks" / "gamma.ipynb")
    problems = "\n".join(nbt.check(book))
    assert "book/beta.md has no notebook notebooks/beta.ipynb" in problems
    assert "make notebooks CHAPTERS=beta" in problems
    assert "notebooks/gamma.ipynb has no chapter" in problems


def test_edited_chapter_makes_its_notebook_stale(book):
    write_unexecuted(book)
    md = book / "book" / "alpha.md"
    md.write_text(md.read_text().replace("6 * 7", "6 * 9"))
    (problem,) = nbt.check(book)
    assert problem.startswith("notebooks/alpha.ipynb is stale: cell 4 (code, starting 'x = 6 * 9', line 32 of the chapter) differs in its source")
    assert "book/alpha.md" in problem and "run `make notebooks CHAPTERS=alpha`" in problem


def test_edited_tags_make_the_notebook_stale(book):
    write_unexecuted(book)
    md = book / "book" / "alpha.md"
    md.write_text(md.read_text().replace(":tags: [nbval-ignore-output]\n", ""))
    (problem,) = nbt.check(book)
    assert "notebooks/alpha.ipynb is stale" in problem and "metadata" in problem


def test_outputs_and_volatile_metadata_do_not_count(book):
    write_unexecuted(book)
    path = book / "notebooks" / "alpha.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="anything\n")]
    nb.cells[-1].metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    nbformat.write(nb, path)
    assert nbt.check(book) == []


def test_unexecuted_notebook_is_reported(book):
    write_unexecuted(book)
    nbt.sync(["beta"], root=book, run=False)
    (problem,) = nbt.check(book)
    assert problem.startswith("notebooks/beta.ipynb: cell 2 was never executed")


def test_colab_cell_must_match_config(book):
    write_unexecuted(book)
    (book / "_config.yml").write_text(
        "repository:\n  url: https://github.com/other/fork\n  branch: main\n"
    )
    problems = [p for p in nbt.check(book) if "Colab" in p]
    assert len(problems) == 2
    assert "book/alpha.md: the Colab setup cell differs" in problems[0]
    assert "https://github.com/example/book at v1.2" in problems[0]
    assert 'source = "git+https://github.com/other/fork@main"' in nbt.colab_source(book)


def test_missing_colab_cell_is_reported_and_stamped(book):
    md = book / "book" / "beta.md"
    md.write_text(md.read_text().replace(COLAB + "\n\n", ""))
    assert nbt.check_colab(md, book) == [
        (
            "book/beta.md: the first code cell is not the Colab setup cell; "
            "run `python -m booktools.notebooks stamp` (it rewrites the cell from _config.yml)"
        )
    ]
    assert nbt.stamp(book) == [md]
    assert nbt.check_colab(md, book) == []
    assert nbt.stamp(book) == []  # idempotent
    first_code = next(c for c in nbt.to_notebook(md).cells if c.cell_type == "code")
    assert first_code.source == nbt.colab_source(book)


def test_clean_strips_volatile_metadata_and_merges_streams():
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "version": "3.11.7"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {}},
    }
    cell = nbformat.v4.new_code_cell("print(1); print(2)", execution_count=3)
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    cell.outputs = [
        nbformat.v4.new_output("stream", text="1\n"),
        nbformat.v4.new_output("stream", text="2\n"),
    ]
    nb.cells = [cell]
    nbt.clean(nb)
    assert set(nb.metadata) == {"kernelspec"}
    assert cell.metadata == {}
    assert [o.text for o in cell.outputs] == ["1\n2\n"]


def test_sync_executes_and_rerunning_gives_no_diff(book):
    """One real kernel run (a few seconds): outputs stored, a second run changes nothing."""
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/beta\n")
    (book / "notebooks" / "beta.ipynb").unlink(missing_ok=True)
    (path,) = nbt.sync(["beta"], root=book)
    first = path.read_text()
    nb = json.loads(first)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == [1, 2]
    assert code[1]["outputs"] == [
        {"name": "stdout", "output_type": "stream", "text": ["0\n", "1\n", "2\n"]}
    ]
    assert "language_info" not in nb["metadata"]
    assert nbt.check(book) == []
    nbt.sync(["beta"], root=book)
    assert path.read_text() == first

    # --prose-only: a prose edit is taken in without a kernel, the outputs kept
    md = book / "book" / "beta.md"
    md.write_text(md.read_text().replace("Some prose.", "Some prose, edited.\n\nA new paragraph."))
    assert nbt.check(book) != []  # stale
    nbt.sync(["beta"], root=book, prose_only=True)
    assert nbt.check(book) == []
    refreshed = json.loads(path.read_text())
    assert [c["outputs"] for c in refreshed["cells"] if c["cell_type"] == "code"] == [
        c["outputs"] for c in code]
    # MyST-NB's rendering metadata (captions, alt text, prompts) counts as prose
    md.write_text(md.read_text().replace(
        "```{code-cell} ipython3\nfor", "```{code-cell} ipython3\n---\nmystnb:\n"
        "  code_prompt_show: Show the loop\n---\nfor"))
    nbt.sync(["beta"], root=book, prose_only=True)
    assert nbt.check(book) == []
    # a code edit is refused, naming the command that executes the chapter
    md.write_text(md.read_text().replace("range(3)", "range(4)"))
    with pytest.raises(nbt.BookError, match=r"code cells changed.*CHAPTERS=beta"):
        nbt.sync(["beta"], root=book, prose_only=True)


def test_run_reports_device_and_checks_marked_outputs(book, capsys):
    """`make test-gpu`: executes the stored notebooks; only nbval-check-output cells compare."""
    md = book / "book" / "alpha.md"
    cell = "```{code-cell} ipython3\n"
    md.write_text(md.read_text().replace(f"{cell}x = 6", f"{cell}:tags: [nbval-check-output]\nx = 6"))
    write_unexecuted(book)  # stored outputs: none, so the marked cell's "42" differs
    out = book / "executed"
    sanitize = ROOT / "tests" / "nbval_sanitize.cfg"
    assert nbt.run_all(out, ["alpha"], sanitize, root=book) == 1
    report = capsys.readouterr()
    assert "notebooks/alpha.ipynb: cell 4 output differs" in report.err
    assert "alpha.ipynb" in report.out and "cpu / " in report.out and "FAILED" in report.out
    executed = nbformat.read(out / "alpha.ipynb", as_version=4)
    assert executed.cells[3].outputs[0].text == "42\n"
    assert len(executed.cells) == len(nbt.to_notebook(md).cells)  # the device probe is removed


def test_sync_rejects_unknown_chapter(book):
    with pytest.raises(nbt.BookError, match="no chapter with code named intro"):
        nbt.sync(["intro"], root=book, run=False)


def test_stale_cell_is_reported_at_its_own_line(book):
    """Several cells start with the same text: the line named is that of the changed cell."""
    md = book / "book" / "alpha.md"
    first = "```{code-cell} ipython3\nx = 6 * 7\nprint(x)\n```"
    md.write_text(md.read_text().replace(first, f"{first}\n\n{first}\n\n{first}"))
    write_unexecuted(book)
    text = md.read_text()
    head, _sep, tail = text.rpartition("print(x)")  # edit the third of the equal cells
    md.write_text(head + "print(x + 1)" + tail)
    lines = md.read_text().splitlines()
    want = lines.index("print(x + 1)")  # the 1-based number of the line above it
    (problem,) = nbt.check(book)
    assert f"cell 6 (code, starting 'x = 6 * 7', line {want} of the chapter)" in problem
    assert lines[want - 1] == "x = 6 * 7"


def test_chapter_not_utf8_is_a_check_error_with_byte_offset(book):
    md = book / "book" / "beta.md"
    data = md.read_bytes().replace(b"Some prose.", b"Some caf\xe9 prose.")
    md.write_bytes(data)
    offset = data.index(b"\xe9")
    with pytest.raises(nbt.BookError, match=f"book/beta.md: not valid UTF-8: byte 0xe9 at byte offset {offset} "):
        nbt.check(book)
    md.write_bytes(b"\xef\xbb\xbf" + data.replace(b"caf\xe9", b"cafe"))
    with pytest.raises(nbt.BookError, match="book/beta.md: starts with a UTF-8 byte-order mark"):
        nbt.check(book)
