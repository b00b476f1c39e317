"""booktools.toc: one reader of _toc.yml, so every command that reads it gives the same error.

A malformed _toc.yml gets the message of ``booktools.toc`` (naming the file, the key and the
fix, as tests/test_extract_lib.py checks in detail) from `make lib`, `make notebooks` and
`make book`, and from each subcommand of ``python -m booktools.notebooks``; never a
traceback. The site build itself is tested in tests/test_stored_outputs.py.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from booktools import BookError, toc

ROOT = Path(__file__).resolve().parent.parent
BAD_TOC = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nope\n"
MESSAGE = ("error: _toc.yml, key chapters[0].file: book/nope.md does not exist\n"
           "    fix: create the page or fix the path\n")


@pytest.fixture
def book(tmp_path):
    """A copy of the book's commands (Makefile, booktools, the library) around one page."""
    for name in ("Makefile", "requirements.txt", "pyproject.toml", "_config.yml"):
        shutil.copy2(ROOT / name, tmp_path / name)  # copy2: older than .venv's stamp
    for folder in ("booktools", "d2l_lib"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nProse only.\n")
    (tmp_path / "_toc.yml").write_text(BAD_TOC)
    return tmp_path


def test_toc_pages_and_files_agree(tmp_path):
    (tmp_path / "book").mkdir()
    for stem in ("intro", "a", "b"):
        (tmp_path / "book" / f"{stem}.md").write_text(f"# {stem}\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/a.md\n"
        "    sections:\n      - file: book/b\n")
    assert toc.toc_files(tmp_path) == ["book/intro.md", "book/a.md", "book/b.md"]
    assert toc.toc_pages(tmp_path) == ["book/intro", "book/a", "book/b"]
    (tmp_path / "_toc.yml").write_text(BAD_TOC.replace("book/intro", "book/a"))
    with pytest.raises(BookError) as err:
        toc.toc_pages(tmp_path)
    assert "error: " + str(err.value.args[0]) + "\n" == MESSAGE


@pytest.mark.parametrize("command", ["list", "check", "sync", "stamp"])
def test_notebooks_command_gives_the_toc_error(book, command):
    res = subprocess.run([sys.executable, "-m", "booktools.notebooks", command], cwd=book,
                         capture_output=True, text=True, check=False, timeout=120)
    assert res.returncode == 1
    assert res.stderr == MESSAGE


@pytest.mark.parametrize("target", ["lib", "notebooks", "book"])
def test_make_targets_give_the_same_toc_error(book, target):
    """`-o` keeps make from re-creating .venv (the real one, linked) whatever its age."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    res = subprocess.run(["make", "-s", "-o", ".venv/.installed-stamp", target], cwd=book,
                         env=env, capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode != 0
    assert res.stderr.startswith(MESSAGE), res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not (book / "_build" / "html").exists()
