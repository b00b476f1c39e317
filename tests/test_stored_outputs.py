"""_ext/stored_outputs.py: the site is rendered from the executed notebooks, never executed.

A small book is built in a temporary folder with the real extension and pairing tool: its
page must show the stored outputs (a printed value, a glued number in the prose) with no
kernel started, and a chapter whose notebook is stale, missing or unexecuted must stop the
build with a message that names the file and the command that fixes it.
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from sphinx.errors import ExtensionError

from booktools import notebooks

ROOT = Path(__file__).resolve().parent.parent
HEADER = (ROOT / "book" / "intro.md").read_text().split("---\n")[1]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The Colab setup cell the tool expects for this book's repository.
COLAB = ("```{code-cell} ipython3\n:tags: [remove-cell]\n"
         + notebooks.COLAB_TEMPLATE.format(url="https://github.com/example/book", ref="main")
         + "\n```")
CHAPTER = f"""---
{HEADER}---

(chapter-alpha)=
# Alpha

{COLAB}

```{{code-cell}} ipython3
from myst_nb import glue

answer = 6 * 7
print("the answer:", answer)
glue("answer", answer, display=False)
```

The prose quotes {{glue:text}}`answer` from the stored run.
"""


@pytest.fixture
def book(tmp_path):
    """A one-chapter book with the real extension and tools, its notebook executed."""
    for folder in ("book", "notebooks", "_ext"):
        (tmp_path / folder).mkdir()
    shutil.copy(ROOT / "_ext" / "stored_outputs.py", tmp_path / "_ext")
    shutil.copytree(ROOT / "booktools", tmp_path / "booktools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: book/alpha\n")
    (tmp_path / "_config.yml").write_text(
        "title: t\nonly_build_toc_files: true\n"
        "repository:\n  url: https://github.com/example/book\n  branch: main\n"
        "execute:\n  execute_notebooks: cache\n  cache: _build/.jupyter_cache\n"
        "sphinx:\n  local_extensions:\n    _ext.stored_outputs: .\n"
    )
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nProse only.\n")
    (tmp_path / "book" / "alpha.md").write_text(CHAPTER)
    notebooks.sync(["alpha"], root=tmp_path)
    return tmp_path


def build(root: Path) -> subprocess.CompletedProcess:
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    return subprocess.run(
        [str(jupyter_book), "build", str(root), "--builder", "html", "-W", "-n"],
        check=False, capture_output=True, text=True, timeout=300,
    )


def test_site_shows_stored_outputs_without_a_kernel(book):
    # Mark the stored output: the page must show this, not a fresh run's "42".
    path = book / "notebooks" / "alpha.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = next(cell for cell in nb.cells if "answer" in cell.source)
    stream = next(out for out in code.outputs if out.output_type == "stream")
    assert stream.text == "the answer: 42\n"
    stream.text = "the answer: 42 (stored)\n"
    nbformat.write(nb, path)

    result = build(book)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "Using cached notebook" in log
    assert "Executing notebook" not in log and "Executed notebook" not in log
    html = (book / "_build" / "html" / "book" / "alpha.html").read_text()
    assert "the answer: 42 (stored)" in html
    assert "quotes <span" in html and ">42<" in html  # the glued number in the prose


@pytest.fixture
def hook(book, monkeypatch):
    """check_chapter of the copied extension, bound to the temporary book."""
    module = load("stored_outputs_copy", book / "_ext" / "stored_outputs.py")
    monkeypatch.delenv("BOOK_EXECUTE", raising=False)

    class App:
        book_chapters = notebooks.chapters(book)

    def run():
        module.check_chapter(App(), "book/alpha", [(book / "book" / "alpha.md").read_text()])

    return run


def test_stale_notebook_stops_the_build(book, hook):
    md = book / "book" / "alpha.md"
    md.write_text(md.read_text().replace("answer = 6 * 7", "answer = 6 * 9"))
    with pytest.raises(ExtensionError) as err:
        hook()
    assert "notebooks/alpha.ipynb is stale" in str(err.value)
    assert "book/alpha.md" in str(err.value)
    assert "make notebooks CHAPTERS=alpha" in str(err.value)


def test_missing_notebook_stops_the_build(book, hook):
    (book / "notebooks" / "alpha.ipynb").unlink()
    with pytest.raises(ExtensionError) as err:
        hook()
    assert "book/alpha.md has no notebook notebooks/alpha.ipynb" in str(err.value)
    assert "make notebooks CHAPTERS=alpha" in str(err.value)


def test_unexecuted_notebook_stops_the_build(book, hook):
    path = book / "notebooks" / "alpha.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count, cell.outputs = None, []
    nbformat.write(nb, path)
    with pytest.raises(ExtensionError) as err:
        hook()
    assert "notebooks/alpha.ipynb: cell" in str(err.value) and "never executed" in str(err.value)
    assert "make notebooks CHAPTERS=alpha" in str(err.value)


def test_a_failed_build_names_the_file_end_to_end(book):
    md = book / "book" / "alpha.md"
    md.write_text(md.read_text().replace("answer = 6 * 7", "answer = 6 * 9"))
    result = build(book)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "notebooks/alpha.ipynb is stale" in log and "make notebooks CHAPTERS=alpha" in log
    assert "Executing notebook" not in log


@pytest.mark.parametrize("toc, message", [
    ("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nope\n",
     ("error: _toc.yml, key chapters[0].file: book/nope.md does not exist\n"
     "    fix: create the page or fix the path")),
    (("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/alpha\n"
     "chapters:\n  - file: book/alpha\n"),
     ("error: _toc.yml:5: key 'chapters' appears twice in one mapping (also on line 3); YAML "
     "would keep only the last one\n    fix: merge the two into one key")),
])
def test_a_malformed_toc_stops_the_build_with_the_tools_message(book, toc, message):
    """Jupyter Book lets these through; the extension stops with booktools.toc's message,
    the one `make lib` and `make notebooks` print (tests/test_toc.py)."""
    (book / "_toc.yml").write_text(toc)
    result = build(book)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in log
    assert "Executing notebook" not in log
