"""Generate ``d2l_lib/core.py`` from the ``#@save`` code of the book's chapters.

Usage::

    python -m booktools.library            # regenerate d2l_lib/core.py (``make lib``)
    python -m booktools.library --check    # fail if d2l_lib/core.py is stale (``make check``)
    python -m booktools.library --root DIR # work on another tree (the tests use this)
    python -m booktools.library --allow-removal  # accept a library that loses names

Input: the chapters listed in ``_toc.yml`` (the root page, then the chapters and their
sections, in order; ``booktools.toc`` reads and checks it), each read into cells by
``booktools.chapters``. The parts: ``marks`` (finding ``#@save``), ``extractor`` (one
chapter's saved code, methods merged into classes), ``imports`` (the hoisted import block),
``model`` (the saved objects), ``module`` (rendering and checking ``d2l_lib/core.py``).

Rules (each is tested in tests/test_extract_lib.py; book/maintainers.md explains them too):

1. Which code is saved. Only top-level statements of code cells are saved, and only these:

   - The mark is a comment part that is exactly ``#@save`` (a comment is cut into parts
     before each ``#`` that follows whitespace); other comment parts may precede or follow
     it: ``X = 3  # seconds  #@save  # see below`` is marked.
   - ``#@save`` at the end of the ``def``/``class`` line (or of its first decorator line,
     or of any line of the header up to the colon) saves that whole definition:
     decorators, docstring, body, comments inside it.
   - ``#@save`` at the end of any other top-level statement (an import, an assignment, an
     ``if``/``try`` block's first line) saves exactly that statement, never the code after it.
   - A cell whose first line is a comment carrying the mark (``#@save``, ``#@save  # why``)
     saves every top-level statement of the cell. Comment lines between the statements are
     not copied.
   - Comment lines above a saved statement are not part of it and are not copied.
   - The ``#@save`` part itself is removed from the generated code (``# note  #@save``
     keeps ``# note``, ``#@save  # note`` keeps ``# note``).
   - Cells without ``#@save`` are ignored, so they may use IPython syntax (``%pip``, ``!ls``);
     a saved cell must be valid Python.

2. Library references. ``import d2l_lib as d2l`` (any alias), ``import d2l_lib`` and
   ``from d2l_lib import X [as Y]`` in any code cell of a chapter make the chapter's
   references ``d2l.X`` (``d2l_lib.X``, ``Y``) read ``X`` in the generated code. Saved
   imports of ``d2l_lib`` are not emitted.

3. Imports. Saved import statements are hoisted into one block at the top of the generated
   part, one binding per line in the order ruff's isort rules want, without the ones the
   header already makes and without duplicates. ``from m import *``, relative imports and
   ``from __future__`` imports cannot be saved (put the latter in the header).

4. add_to_class. A saved function decorated first with ``@add_to_class(C)`` or
   ``@d2l.add_to_class(d2l.C)`` is merged into the body of class ``C``: the decorator is
   removed, the function is re-indented (multi-line strings other than docstrings are left
   untouched), and it replaces an existing method of the same name in place or is appended
   at the end of the class. ``C`` must be a class saved earlier in table-of-contents order.

5. Redefinitions. A later saved definition of a top-level name (``def``, ``class``, or an
   assignment to one name) replaces the earlier one in place; every replacement is printed.
   A replaced class loses the methods added to the old class, as in the notebooks.

6. Provenance. Each generated object (and each merged method) is preceded by a comment
   ``# Defined in book/x.md, section "..." (line N)``; ``N`` is the line in the chapter file.

7. Output. The hand-written header of d2l_lib/core.py (everything down to the line starting
   with ``# ---- GENERATED BELOW``) is kept byte for byte. Below it: ``__all__`` (every saved
   top-level ``def``, ``class`` and single-name assignment whose name has no leading
   underscore, sorted the way ruff's RUF022 wants), the hoisted imports, then the saved
   objects in table-of-contents order. Output is deterministic.

Errors (exit status 1, nothing written; each names the file and what to do; in a chapter
the line and notebook cell number, counting all cells from 1 as in the paired .ipynb; in
``_toc.yml`` the key, list positions counted from 0):

- ``add_to_class`` on a class that is not saved earlier in table-of-contents order;
- a syntax error in a saved cell;
- a name used by the generated code that is neither saved, imported in the header or by a
  saved import, nor a builtin (pyflakes on the generated module, mapped back to chapters);
- ``#@save`` in a markdown (or raw) cell, except inside a ```` ```text ````, ```` ```md ````
  or ```` ```markdown ```` fence, which is how the maintainer page shows examples;
- ``#@save`` on a line inside an indented block, or on a line of its own that is not the
  cell's first line;
- a misspelled or garbled mark in a code cell, which would silently save nothing: a comment
  part that starts like the mark (``# @save``, ``#@Save``, ``#@save:``, ``#@saved``,
  ``#@save this``) when it starts the comment or the comment follows code, or that ends
  like it (``# note#@save``); further on in a comment line, words that begin like the mark
  are prose (``# cells marked #@save go to d2l``);
- a malformed ``_toc.yml`` (not YAML, not a mapping, a key of the wrong type or unknown,
  an empty list, a missing page, a page or key twice), naming the file and the key;
- a chapter (or _toc.yml, d2l_lib/core.py) that is not UTF-8, naming the byte offset; a
  chapter with a NUL byte or a byte-order mark; front matter or cell options that are not
  YAML mappings;
- a saved cell indented with tabs; a saved object named like an import (header or saved);
- a library that would lose a name (a top-level ``def``/``class``/assignment, or a
  ``Class.method``) that d2l_lib/core.py defines now, e.g. because a chapter left
  ``_toc.yml``: pass ``--allow-removal`` when that is intended (``--check`` just reports
  the library as stale);
- smaller misuses: ``@add_to_class`` not the first decorator, two statements on one saved
  line, star/relative/``__future__`` imports.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from booktools import ROOT, BookError, print_errors
from booktools.chapters import read_chapter
from booktools.library.imports import Binding, first_party, format_imports
from booktools.library.model import MODULE_PATH
from booktools.library.module import defined_names, generate, read_module
from booktools.toc import TOC, toc_files

__all__ = [
    "Binding",
    "first_party",
    "format_imports",
    "generate",
    "main",
    "read_chapter",
    "toc_files",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument(
        "--check", action="store_true", help="fail if d2l_lib/core.py differs from a fresh run"
    )
    parser.add_argument(
        "--allow-removal",
        action="store_true",
        help="write the library even if it loses names that d2l_lib/core.py defines now",
    )
    return parser


def _refuse_lost_names(current: str, text: str) -> None:
    """A library that loses names it defines now is an error (``--allow-removal`` allows it)."""
    lost = sorted(defined_names(current) - defined_names(text))
    if lost:
        shown = ", ".join(lost[:30]) + (f" and {len(lost) - 30} more" if len(lost) > 30 else "")
        raise BookError(
            f"{MODULE_PATH}: the chapters no longer save {len(lost)} name(s) it defines: "
            f"{shown}\n    fix: if a chapter left {TOC} or lost its #@save marks by mistake, "
            "restore it; if the removal is intended, run "
            "`python -m booktools.library --allow-removal`"
        )


def _report_stale(current: str, text: str) -> int:
    """``--check``: 0 when d2l_lib/core.py is what the chapters make, else its diff and 1."""
    if current == text:
        print(f"{MODULE_PATH} is up to date with the chapters")
        return 0
    diff = list(
        difflib.unified_diff(
            current.splitlines(),
            text.splitlines(),
            f"{MODULE_PATH} (committed)",
            f"{MODULE_PATH} (from the chapters)",
            lineterm="",
        )
    )
    for line in diff[:40]:
        print(line)
    if len(diff) > 40:
        print(f"... ({len(diff) - 40} more diff lines)")
    print("d2l_lib is stale: run `make lib` (and commit d2l_lib/core.py)")
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = args.root.resolve()
    try:
        text, lib = generate(root)
        current = read_module(root)
        if not args.check and not args.allow_removal:
            _refuse_lost_names(current, text)
    except BookError as e:
        print_errors(e, sys.stderr)
        print("extract_lib: d2l_lib was not written; fix the chapters above", file=sys.stderr)
        return 1
    if args.check:
        return _report_stale(current, text)
    for line in lib.log:
        print(line)
    for rel, names in lib.per_chapter.items():
        if names:
            print(f"{rel}: {len(names)} saved: {', '.join(names)}")
    if current == text:
        print(f"{MODULE_PATH} unchanged")
    else:
        (root / MODULE_PATH).write_text(text, encoding="utf-8")
        print(f"wrote {MODULE_PATH}")
    return 0
