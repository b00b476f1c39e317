#!/usr/bin/env python3
"""Generate ``d2l_lib/core.py`` from the ``#@save`` code of the book's chapters.

Usage::

    python tools/extract_lib.py            # regenerate d2l_lib/core.py (``make lib``)
    python tools/extract_lib.py --check    # fail if d2l_lib/core.py is stale (``make check``)
    python tools/extract_lib.py --root DIR # work on another tree (the tests use this)
    python tools/extract_lib.py --allow-removal  # accept a library that loses names

Input: the chapters listed in ``_toc.yml`` (the root page, then the chapters and their
sections, in order). Each is a MyST notebook ``<file>.md`` whose code cells are
```` ```{code-cell} ipython3 ```` fences; jupytext's MyST reader splits it into cells.
``_toc.yml`` must have Jupyter Book's ``jb-book`` shape (``format: jb-book``, ``root``: a
page, ``chapters`` or ``parts``: non-empty lists of mappings, each with one ``file`` (a
string naming an existing ``.md`` page inside the book) or ``url``; ``sections`` likewise),
no key twice in a mapping, no page twice. Chapters are UTF-8 without a byte-order mark;
CRLF line ends are read as LF.

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
import ast
import difflib
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

GENERATED_MARK = "# ---- GENERATED BELOW"
LIB_PACKAGE = "d2l_lib"
MODULE_PATH = Path("d2l_lib") / "core.py"
MARK = "#@save"
# A line that may carry the mark (a quick filter: the tokens decide; strings can match too).
MARK_IN_LINE_RE = re.compile(r"#@save(?=\s*(?:#|$))")
# A comment part that starts, or ends, like the mark: '# @save', '#@Save', '#@save:', '##@save'
LOOKALIKE_START_RE = re.compile(r"#+\s*@+\s*save", re.IGNORECASE)
LOOKALIKE_END_RE = re.compile(r"#+\s*@+\s*save\s*$", re.IGNORECASE)
DOC_FENCE_LANGS = {"text", "md", "markdown"}
LINE_LIMIT = 100


class ExtractError(Exception):
    """Problems found in the chapters; ``args`` holds one message per problem."""


# --------------------------------------------------------------------------------------
# Small data types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a line of generated code comes from."""

    path: str  # chapter path relative to the root, posix style
    line: int  # 1-based line in the chapter file
    cell: int  # 1-based notebook cell index

    def where(self) -> str:
        return f"{self.path}:{self.line} (cell {self.cell})"


@dataclass
class Out:
    """One line of generated code and where it came from (None: made by the tool)."""

    text: str
    origin: Origin | None = None


@dataclass
class Cell:
    index: int  # 1-based, all cells counted, as in the .ipynb
    kind: str  # "code", "markdown" or "raw"
    lines: list[str]
    first_line: int  # 1-based file line of lines[0]


@dataclass
class Chapter:
    path: str
    cells: list[Cell]
    headings: list[tuple[int, str]]  # (file line, title), in order


@dataclass
class Item:
    """A saved top-level object of the generated module."""

    name: str | None  # the single name it binds, for replacement; None for others
    kind: str  # "def", "class", "assign" or "other"
    lines: list[Out]
    origin: Origin
    section: str
    exported: list[str] = field(default_factory=list)


@dataclass
class Member:
    """A chunk of a class body: a method (name set) or other statements/gap lines."""

    name: str | None
    lines: list[Out]
    origin: Origin | None = None


@dataclass
class ClassItem(Item):
    head: list[Out] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    indent: str = "    "

    def render(self) -> list[Out]:
        out = list(self.head)
        for m in self.members:
            out.extend(m.lines)
        return out


# --------------------------------------------------------------------------------------
# Reading chapters
# --------------------------------------------------------------------------------------


TOC = "_toc.yml"
# The keys Jupyter Book's jb-book format knows (sphinx-external-toc), by level.
TOC_TOP_KEYS = ("format", "root", "title", "options", "defaults", "meta", "parts", "chapters")
TOC_OPTION_KEYS = (
    "caption",
    "hidden",
    "maxdepth",
    "numbered",
    "reversed",
    "titlesonly",
    "style",
    "restart_numbering",
)
TOC_ENTRY_KEYS = ("file", "url", "glob", "title", "options", "sections", "subtrees")


def _kind(value: object) -> str:
    """How YAML calls a value's type, for messages."""
    if value is None:
        return "empty (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"the {type(value).__name__} {value!r}"


def decode_utf8(data: bytes, rel: str, bom_ok: bool = False) -> str:
    """``data`` as text, newlines normalised as ``Path.read_text`` does; clear errors.

    A chapter may not start with a byte-order mark: jupytext would then not see its
    front matter, and the paired notebook would lose its kernel.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ExtractError(
            f"{rel}: not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset {e.start} "
            f"(line {line}, byte {col} of the line)\n"
            "    fix: save the file as UTF-8 (replace or re-type the character there)"
        ) from None
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ExtractError(
            f"{rel}: a NUL byte at byte offset {nul} (line {line}), which no text file has\n"
            "    fix: delete it"
        )
    if text.startswith("\ufeff"):
        if not bom_ok:
            raise ExtractError(
                f"{rel}: starts with a UTF-8 byte-order mark (bytes ef bb bf), which hides the "
                "front matter from jupytext\n    fix: save the file as UTF-8 without BOM"
            )
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _load_toc(root: Path) -> object:
    """The parsed _toc.yml; a key given twice in one mapping is an error (YAML keeps the
    last one silently, which would drop chapters)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # construct_mapping reports it
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                raise ExtractError(
                    f"{TOC}:{line}: key {key!r} appears twice in one mapping (also on line "
                    f"{seen[key]}); YAML would keep only the last one\n"
                    "    fix: merge the two into one key"
                )
            seen[key] = line
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    path = root / TOC
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ExtractError(f"{TOC}: cannot read the table of contents: {e.strerror}") from None
    text = decode_utf8(data, TOC, bom_ok=True)
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{TOC}:{mark.line + 1}" if mark else TOC
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ExtractError(
            f"{where}: not valid YAML ({what})\n"
            "    fix: correct the syntax (indent with spaces, `- file: book/name` per chapter)"
        ) from None


def toc_files(root: Path) -> list[str]:
    """Chapter paths (relative, with .md) in table-of-contents order.

    _toc.yml is checked against the shape of Jupyter Book's ``jb-book`` format; every
    problem is reported with the key it is under (list positions counted from 0).
    """
    toc = _load_toc(root)
    errors: list[str] = []

    def err(key: str, what: str, todo: str) -> None:
        errors.append(f"{TOC}, key {key}: {what}\n    fix: {todo}")

    if not isinstance(toc, dict):
        raise ExtractError(
            f"{TOC}: the table of contents is {_kind(toc)}, not a mapping\n"
            "    fix: write `format: jb-book`, `root: book/intro` and a `chapters:` list of "
            "`- file: book/name` entries"
        )
    files: list[tuple[str, str]] = []  # (key, path without suffix)

    def add_file(key: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            err(key, f"is {_kind(value)}, not a file name", "give the page's path, e.g. book/name")
            return
        stem = value.strip()
        suffix = Path(stem).suffix
        if suffix == ".md":
            stem = stem[:-3]
        elif suffix:
            err(key, f"{value!r} is not a MyST markdown page", "list book/name.md pages only")
            return
        parts = Path(stem).parts
        if Path(stem).is_absolute() or ".." in parts:
            err(key, f"{value!r} is not a path inside the book", "use a path like book/name")
            return
        stem = Path(stem).as_posix()
        if not (root / f"{stem}.md").is_file():
            err(key, f"{stem}.md does not exist", "create the page or fix the path")
        files.append((key, stem))

    def unknown(key: str, entry: dict, allowed: tuple[str, ...]) -> None:
        for k in entry:
            if k not in allowed:
                err(
                    f"{key}.{k}" if key else str(k),
                    "is not a key of a Jupyter Book table of contents here",
                    f"use one of: {', '.join(allowed)}",
                )

    def a_list(key: str, value: object, what: str) -> list:
        if not isinstance(value, list) or not value:
            err(key, f"is {_kind(value)}, not a non-empty list of {what}", f"list the {what}")
            return []
        return value

    def entries(key: str, value: object) -> None:
        for i, entry in enumerate(a_list(key, value, "entries (`- file: book/name`)")):
            here = f"{key}[{i}]"
            if not isinstance(entry, dict):
                err(here, f"is {_kind(entry)}, not a mapping", "write `- file: book/name`")
                continue
            unknown(here, entry, TOC_ENTRY_KEYS)
            links = [k for k in ("file", "url", "glob") if k in entry]
            if len(links) != 1:
                err(here, "needs exactly one of file, url, glob", "write `- file: book/name`")
                continue
            if links == ["glob"]:
                err(f"{here}.glob", "glob entries are not supported", "list each file")
                continue
            if links == ["url"]:
                if not isinstance(entry["url"], str):
                    err(f"{here}.url", f"is {_kind(entry['url'])}, not a URL", "give a URL")
                continue
            add_file(f"{here}.file", entry["file"])
            if "sections" in entry:
                entries(f"{here}.sections", entry["sections"])
            if "subtrees" in entry:
                for j, sub in enumerate(a_list(f"{here}.subtrees", entry["subtrees"], "mappings")):
                    where = f"{here}.subtrees[{j}]"
                    if not isinstance(sub, dict):
                        err(where, f"is {_kind(sub)}, not a mapping", "write `- sections: [...]`")
                        continue
                    unknown(where, sub, ("sections", *TOC_OPTION_KEYS))
                    entries(f"{where}.sections", sub.get("sections"))

    unknown("", toc, TOC_TOP_KEYS)
    if toc.get("format") != "jb-book":
        err("format", f"is {_kind(toc.get('format'))}, not 'jb-book'", "write `format: jb-book`")
    if "root" not in toc:
        err("root", "is missing", "name the first page: `root: book/intro`")
    else:
        add_file("root", toc["root"])
    if "chapters" in toc and "parts" in toc:
        err("parts", "a table of contents has either chapters or parts", "keep one of them")
    elif "chapters" in toc:
        entries("chapters", toc["chapters"])
    elif "parts" in toc:
        for i, part in enumerate(a_list("parts", toc["parts"], "parts")):
            if not isinstance(part, dict):
                err(f"parts[{i}]", f"is {_kind(part)}, not a mapping", "write `- chapters: [...]`")
                continue
            unknown(f"parts[{i}]", part, ("chapters", *TOC_OPTION_KEYS))
            entries(f"parts[{i}].chapters", part.get("chapters"))
    first: dict[str, str] = {}
    for key, stem in files:
        if stem in first:
            err(key, f"{stem}.md is listed twice (also at {first[stem]})", "list each page once")
        else:
            first[stem] = key
    if errors:
        raise ExtractError(*errors)
    return [f"{stem}.md" for _key, stem in files]


def _find_block(lines: list[str], block: list[str], start: int) -> int:
    """Index in ``lines`` at or after ``start`` where ``block`` appears.

    Trailing whitespace is ignored: jupytext strips it from the end of markdown cells.
    """
    n = len(block)
    want = [b.rstrip() for b in block]
    for i in range(start, len(lines) - n + 1):
        if [x.rstrip() for x in lines[i : i + n]] == want:
            return i
    return -1


def read_chapter(root: Path, rel: str) -> Chapter:
    from jupytext.myst import MystMetadataParsingError, myst_to_notebook

    path = root / rel
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ExtractError(f"{rel}: cannot read the chapter listed in _toc.yml: {e}") from None
    text = decode_utf8(data, rel)
    file_lines = text.splitlines()
    try:
        nb = myst_to_notebook(text, add_source_map=True)
    except MystMetadataParsingError as e:
        raise ExtractError(f"{rel}: jupytext cannot read this MyST notebook: {e}") from None
    except Exception as e:  # noqa: BLE001  (bad front matter or cell options: YAML tags, lists)
        first = (str(e).strip().splitlines() or [""])[0]
        raise ExtractError(
            f"{rel}: jupytext cannot read this MyST notebook ({type(e).__name__}: {first})\n"
            "    fix: the front matter and each cell's options must be YAML mappings of plain "
            "values"
        ) from None
    starts = nb.metadata.get("source_map", [])
    cells: list[Cell] = []
    cursor = 0
    for i, (nb_cell, start) in enumerate(zip(nb.cells, starts, strict=True)):
        lines = nb_cell.source.splitlines()
        begin = max(start, cursor)
        at = _find_block(file_lines, lines, begin) if lines else begin
        if at < 0:
            raise ExtractError(
                f"{rel}:{start + 1} (cell {i + 1}): cannot locate this cell's text in the file"
                " (is its fence indented?)"
            )
        cells.append(Cell(i + 1, nb_cell.cell_type, lines, at + 1))
        cursor = at + len(lines)
    headings: list[tuple[int, str]] = []
    for cell in cells:
        if cell.kind != "markdown":
            continue
        for k, line, in_fence, _lang in _markdown_lines(cell.lines):
            if in_fence:
                continue
            m = re.match(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if m and m.group(2):
                headings.append((cell.first_line + k, m.group(2)))
    return Chapter(rel, cells, headings)


def _markdown_lines(lines: list[str]):
    """Yield (index, line, inside_fence, fence_language) for markdown text."""
    fence: tuple[str, int, str] | None = None  # (char, length, language)
    for k, line in enumerate(lines):
        m = re.match(r"^\s*(`{3,}|~{3,})\s*(.*)$", line)
        if fence is None:
            if m:
                info = m.group(2).strip()
                dm = re.match(r"^\{([\w-]+)\}\s*(\S*)", info)
                if dm:  # a directive: only code directives have a language argument
                    code = dm.group(1) in ("code-block", "code", "sourcecode")
                    lang = dm.group(2) if code else ""
                else:
                    lang = info.split()[0] if info else ""
                fence = (m.group(1)[0], len(m.group(1)), lang.lower())
                yield k, line, True, fence[2]
                continue
            yield k, line, False, ""
        else:
            lang = fence[2]
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2):
                fence = None
            yield k, line, True, lang


# --------------------------------------------------------------------------------------
# Source text helpers
# --------------------------------------------------------------------------------------


def _char_col(line: str, byte_col: int) -> int:
    """ast gives UTF-8 byte offsets; convert one to a character offset in ``line``."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _tokens(src: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(src).readline))


def _string_inner_rows(src: str, docstring_starts: set[tuple[int, int]]) -> set[int]:
    """1-based rows that start inside a multi-line string literal (not a docstring)."""
    rows: set[int] = set()
    fstring_start: list[tuple[int, int]] = []
    for tok in _tokens(src):
        name = tokenize.tok_name[tok.type]
        if name == "FSTRING_START":
            fstring_start.append(tok.start)
        elif name == "FSTRING_END" and fstring_start:
            srow, _ = fstring_start.pop()
            rows.update(range(srow + 1, tok.end[0] + 1))
        elif (
            tok.type == tokenize.STRING
            and tok.end[0] > tok.start[0]
            and tok.start not in docstring_starts
        ):
            rows.update(range(tok.start[0] + 1, tok.end[0] + 1))
    return rows


def _docstring_starts(tree: ast.AST, lines: list[str]) -> set[tuple[int, int]]:
    starts = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                v = body[0].value
                starts.add((v.lineno, _char_col(lines[v.lineno - 1], v.col_offset)))
    return starts


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    if decorators:
        return decorators[0].lineno
    return node.lineno


def _header_end(node: ast.stmt, toks: list[tokenize.TokenInfo], lines: list[str]) -> int:
    """Last line of a compound statement's header (the line of its colon)."""
    if not hasattr(node, "body"):
        return node.end_lineno
    start = (node.lineno, _char_col(lines[node.lineno - 1], node.col_offset))
    depth = 0
    for tok in toks:
        if tok.start < start or tok.type != tokenize.OP:
            continue
        if tok.string in "([{":
            depth += 1
        elif tok.string in ")]}":
            depth -= 1
        elif tok.string == ":" and depth == 0:
            return tok.start[0]
    return node.lineno


def comment_parts(comment: str) -> list[str]:
    """A comment cut before every ``#`` that starts it or follows whitespace:
    ``# seconds  #@save  # why`` has the parts ``# seconds  ``, ``#@save  ``, ``# why``."""
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s))#", comment)] or [0]
    return [comment[a:b] for a, b in zip(starts, starts[1:] + [len(comment)], strict=True)]


def is_mark(comment: str) -> bool:
    """Does the comment carry the mark: one of its parts is exactly ``#@save``?"""
    return any(p.rstrip() == MARK for p in comment_parts(comment))


def lookalikes(comment: str, after_code: bool) -> list[str]:
    """Parts of a comment that look like a garbled mark and would silently save nothing.

    A part that starts like the mark (``#@save:``, ``#@save this``, ``# @Save``) is one when
    it starts the comment or the comment follows code on its line; a part that ends like
    the mark (``# note#@Save``) always is. Further on in a comment line's prose, words that
    merely begin with the mark (``# cells marked #@save go to d2l``) are text.
    """
    found = []
    for k, part in enumerate(comment_parts(comment)):
        p = part.rstrip()
        if p == MARK:
            continue
        if LOOKALIKE_END_RE.search(p) or (
            (k == 0 or after_code) and LOOKALIKE_START_RE.match(p)
        ):
            found.append(p)
    return found


def marker_comments(lines: list[str]) -> list[tuple[int, int, str]]:
    """(row, char col, comment) of every comment carrying the mark, in a parsable cell."""
    src = "\n".join(lines) + "\n"
    return [
        (t.start[0], t.start[1], t.string)
        for t in _tokens(src)
        if t.type == tokenize.COMMENT and is_mark(t.string)
    ]


def _strip_marker(line: str, col: int, comment: str) -> str:
    """The line without the mark; the comment's other parts are kept."""
    rest = [p.rstrip() for p in comment_parts(comment) if p.rstrip() not in (MARK, "#")]
    if not rest:
        return line[:col].rstrip()
    return line[:col] + "  ".join(rest)


def _lenient_parse(lines: list[str]) -> ast.Module | None:
    """Parse a cell that may contain IPython magics (masked as ``pass``)."""
    src = "\n".join(lines)
    try:
        return ast.parse(src)
    except SyntaxError:
        pass
    masked = []
    for line in lines:
        s = line.lstrip()
        if s.startswith(("%", "!")) or (s.endswith("?") and not s.startswith("#")):
            masked.append(line[: len(line) - len(s)] + "pass")
        else:
            masked.append(line)
    try:
        return ast.parse("\n".join(masked))
    except SyntaxError:
        return None


# --------------------------------------------------------------------------------------
# Import normalisation (the order of ruff's isort rules, default settings)
# --------------------------------------------------------------------------------------


def _natural(s: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s) if p != "")


def _natkey(s: str) -> tuple:
    # Mixed int/str tuples are not comparable; tag each part so they are.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in _natural(s))


def _member_type(name: str) -> int:
    if len(name) > 1 and name.isupper():
        return 0  # CONSTANT
    if name[:1].isupper():
        return 1  # Class
    return 2  # variable


def _member_key(name: str, asname: str | None) -> tuple:
    return (
        _member_type(name),
        _natkey(name.lower()),
        _natkey(name),
        _natkey(asname.lower()) if asname else (),
        _natkey(asname) if asname else (),
    )


def _module_key(module: str, asname: str | None = None) -> tuple:
    return (
        _natkey(module.lower()),
        _natkey(module),
        asname is not None,
        _natkey(asname.lower()) if asname else (),
        _natkey(asname) if asname else (),
    )


@dataclass(frozen=True)
class Binding:
    """One imported name: ``import module [as asname]`` or ``from module import name``."""

    module: str
    name: str | None  # None for ``import module``
    asname: str | None

    def bound(self) -> str:
        """The name the import binds."""
        if self.name is None:
            return self.asname or self.module.split(".")[0]
        return self.asname or self.name

    def text(self) -> str:
        if self.name is None:
            return f"import {self.module}" + (f" as {self.asname}" if self.asname else "")
        return f"from {self.module} import {self.name}" + (
            f" as {self.asname}" if self.asname else ""
        )


def _bindings(node: ast.Import | ast.ImportFrom) -> list[Binding]:
    if isinstance(node, ast.Import):
        return [Binding(a.name, None, a.asname) for a in node.names]
    return [Binding(node.module or "", a.name, a.asname) for a in node.names]


def format_imports(bindings: list[Binding], first_party: set[str]) -> list[str]:
    """Import lines grouped and ordered as ruff's isort (default settings) wants them."""
    stdlib = set(sys.stdlib_module_names)
    sections: dict[int, list[Binding]] = {}
    for b in bindings:
        top = b.module.split(".")[0]
        sec = 0 if top in stdlib else (2 if top in first_party else 1)
        sections.setdefault(sec, []).append(b)
    blocks: list[list[str]] = []
    for sec in sorted(sections):
        bs = sections[sec]
        straight = sorted(
            {b for b in bs if b.name is None}, key=lambda b: _module_key(b.module, b.asname)
        )
        lines = [b.text() for b in straight]
        # from-imports: plain names of one module share a statement; each ``as`` is alone
        stmts: list[tuple[tuple, str]] = []
        modules = sorted({b.module for b in bs if b.name is not None}, key=_module_key)
        for mod in modules:
            plain = sorted(
                {b.name for b in bs if b.module == mod and b.name and not b.asname},
                key=lambda n: _member_key(n, None),
            )
            if plain:
                stmts.append(
                    (_module_key(mod) + (_member_key(plain[0], None),), _from_text(mod, plain))
                )
            for b in {b for b in bs if b.module == mod and b.name and b.asname}:
                stmts.append(
                    (_module_key(mod) + (_member_key(b.name, b.asname),), b.text())
                )
        lines += [t for _, t in sorted(stmts)]
        blocks.append(lines)
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            out.append("")
        out.extend(block)
    return out


def _from_text(module: str, names: list[str]) -> str:
    one = f"from {module} import {', '.join(names)}"
    if len(one) <= LINE_LIMIT:
        return one
    return f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"


def _all_key(name: str) -> tuple:
    """RUF022's isort-style order: CONSTANTS, then Classes, then the rest; natural sort."""
    if name.isupper() and len(name) > 1:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return (kind, _natkey(name))


# --------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------


@dataclass
class Library:
    """The generated module under construction."""

    items: list[Item] = field(default_factory=list)
    imports: list[Binding] = field(default_factory=list)
    import_origins: dict[Binding, Origin] = field(default_factory=dict)
    header_bindings: set[Binding] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    aliases: set[str] = field(default_factory=lambda: {"d2l", LIB_PACKAGE})
    per_chapter: dict[str, list[str]] = field(default_factory=dict)

    def find(self, name: str) -> Item | None:
        for item in self.items:
            if item.name == name:
                return item
        return None


class ChapterExtractor:
    """Collects the saved code of one chapter into the library."""

    def __init__(self, chapter: Chapter, lib: Library, errors: list[str]):
        self.ch = chapter
        self.lib = lib
        self.errors = errors
        self.module_aliases: set[str] = set()  # names bound to the d2l_lib module
        self.name_aliases: dict[str, str] = {}  # from d2l_lib import X as Y: Y -> X
        self.saved: list[str] = []
        lib.per_chapter[chapter.path] = self.saved

    # -- helpers ------------------------------------------------------------------------

    def origin(self, cell: Cell, row: int) -> Origin:
        return Origin(self.ch.path, cell.first_line + row - 1, cell.index)

    def error(self, cell: Cell, row: int, what: str, todo: str) -> None:
        self.errors.append(f"{self.origin(cell, row).where()}: {what}\n    fix: {todo}")

    def section(self, file_line: int) -> str:
        title = ""
        for line, t in self.ch.headings:
            if line > file_line:
                break
            title = t
        return title

    # -- passes -------------------------------------------------------------------------

    def run(self) -> None:
        for cell in self.ch.cells:
            if cell.kind == "code":
                self.collect_aliases(cell)
        for cell in self.ch.cells:
            if cell.kind == "code":
                self.code_cell(cell)
            else:
                self.text_cell(cell)

    def collect_aliases(self, cell: Cell) -> None:
        tree = _lenient_parse(cell.lines)
        if tree is None:
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _is_lib(a.name):
                        self.module_aliases.add(a.asname or LIB_PACKAGE)
                        self.lib.aliases.add(a.asname or LIB_PACKAGE)
            elif isinstance(node, ast.ImportFrom) and _is_lib(node.module, node.level):
                for a in node.names:
                    if a.asname and a.asname != a.name:
                        self.name_aliases[a.asname] = a.name

    def near_misses(self, cell: Cell) -> None:
        """A misspelled or garbled mark would silently leave code out of the library."""
        if not any(LOOKALIKE_START_RE.search(line) for line in cell.lines):
            return
        try:
            comments = [
                (t.start[0], t.string, bool(cell.lines[t.start[0] - 1][: t.start[1]].strip()))
                for t in _tokens("\n".join(cell.lines) + "\n")
                if t.type == tokenize.COMMENT
            ]
        except (SyntaxError, tokenize.TokenError):  # not Python: take '#' to end of line
            comments = []
            for k, line in enumerate(cell.lines):
                at = line.find("#")
                if at >= 0:
                    comments.append((k + 1, line[at:], bool(line[:at].strip())))
        for row, text, after_code in comments:
            for part in lookalikes(text, after_code):
                self.error(
                    cell,
                    row,
                    f"this looks like a misspelled `#@save` mark ({part!r})",
                    "write exactly #@save (no space, lower case), optionally followed by "
                    "another comment (`#@save  # note`), or reword the comment",
                )

    def text_cell(self, cell: Cell) -> None:
        for k, line, in_fence, lang in _markdown_lines(cell.lines):
            if not in_fence:  # a mark shown in an inline code span is prose
                line = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", line)
            if MARK_IN_LINE_RE.search(line) and not (in_fence and lang in DOC_FENCE_LANGS):
                self.error(
                    cell,
                    k + 1,
                    f"`#@save` in a {cell.kind} cell saves nothing",
                    "put the code in a ```{code-cell} ipython3``` cell (a top-level one, not "
                    "nested in a directive); to show the mark in prose use a ```text fence",
                )

    def code_cell(self, cell: Cell) -> None:
        self.near_misses(cell)
        if not any(MARK_IN_LINE_RE.search(line) for line in cell.lines):
            return
        src = "\n".join(cell.lines) + "\n"
        try:
            tree = ast.parse(src)
        except SyntaxError as e:
            self.error(
                cell,
                e.lineno or 1,
                f"syntax error in a saved cell: {e.msg}",
                "saved cells must be plain Python (no %magics or !commands): fix the code, "
                "or move the #@save code to a cell of its own",
            )
            return
        markers = marker_comments(cell.lines)
        if not markers:
            return  # '#@save' only inside strings
        toks = _tokens(src)
        for tok in toks:
            if tok.type == tokenize.INDENT and "\t" in tok.string:
                self.error(
                    cell,
                    tok.start[0],
                    "a saved cell indented with tabs",
                    "indent with 4 spaces: the library is merged and checked with space indents",
                )
                return
        stmts = tree.body
        spans = [(_start_line(s), _header_end(s, toks, cell.lines), s.end_lineno) for s in stmts]
        # a comment line carrying the mark, first in the cell: the whole cell is saved
        whole = any(row == 1 and not cell.lines[0][:col].strip() for row, col, _ in markers)
        chosen: list[int] = []
        if whole:
            chosen = list(range(len(stmts)))
        for row, col, _comment in markers:
            if whole and row == 1:
                continue
            hit = None
            for i, (start, head_end, end) in enumerate(spans):
                if start <= row <= end:
                    hit = i
                    break
            if hit is None:
                if col > 0:
                    self.error(
                        cell,
                        row,
                        "`#@save` on an indented line",
                        "put #@save at the end of a top-level def/class line or statement",
                    )
                else:
                    self.error(
                        cell,
                        row,
                        "`#@save` on a line of its own that is not the cell's first line",
                        "a lone #@save line saves the whole cell only as its first line; to "
                        "save one definition, end its def/class line with #@save",
                    )
                continue
            start, head_end, end = spans[hit]
            if row > head_end:
                self.error(
                    cell,
                    row,
                    "`#@save` on a line inside an indented block (in the body of the "
                    f"statement starting at line {self.origin(cell, start).line})",
                    "mark the top-level def/class line instead: it saves the whole definition, "
                    "methods included; to add a method later use @d2l.add_to_class(Class)",
                )
                continue
            if hit not in chosen:
                chosen.append(hit)
        # marker comments are removed from the text below
        lines = list(cell.lines)
        for row, col, comment in markers:
            lines[row - 1] = _strip_marker(lines[row - 1], col, comment)
        for i in sorted(chosen):
            self.save_statement(cell, stmts[i], spans, i, lines, tree)

    # -- one saved statement ------------------------------------------------------------

    def save_statement(self, cell, node, spans, i, lines, tree) -> None:
        start, _head_end, end = spans[i]
        others = [s for j, s in enumerate(spans) if j != i]
        if any(not (e < start or s > end) for s, _, e in others):
            self.error(cell, start, "two statements share a saved line", "put one per line")
            return
        origin = self.origin(cell, start)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.save_import(cell, node)
            return
        edited = self.rewrite(node, lines, cell.lines)
        text = edited[start - 1 : end]
        outs = [Out(t, self.origin(cell, start + k)) for k, t in enumerate(text)]
        section = self.section(origin.line)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
            target = self.add_to_class_target(cell, node)
            if target is not None:
                if target:
                    self.merge_method(cell, node, target, outs, start, origin, section)
                return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            item = Item(node.name, "def", outs, origin, section, [node.name])
        elif isinstance(node, ast.ClassDef):
            item = self.class_item(cell, node, outs, start, origin, section)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            single = (
                len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id or None
            )
            item = Item(single, "assign", outs, origin, section, names)
        else:
            item = Item(None, "other", outs, origin, section, [])
        self.add_item(item)

    def add_item(self, item: Item) -> None:
        old = self.lib.find(item.name) if item.name else None
        if old is not None:
            idx = self.lib.items.index(old)
            self.lib.items[idx] = item
            self.lib.log.append(
                f"replaced {item.name} ({_short(item.origin)} replaces {_short(old.origin)})"
            )
        else:
            self.lib.items.append(item)
        self.saved.append(item.name or f"<statement at line {item.origin.line}>")

    def save_import(self, cell: Cell, node: ast.Import | ast.ImportFrom) -> None:
        row = node.lineno
        if isinstance(node, ast.ImportFrom):
            if node.level:
                self.error(cell, row, "relative import in saved code", "import absolutely")
                return
            if node.module == "__future__":
                self.error(
                    cell,
                    row,
                    "`from __future__` import in saved code",
                    "add it at the top of the header of d2l_lib/core.py instead",
                )
                return
            if any(a.name == "*" for a in node.names):
                self.error(cell, row, "star import in saved code", "import the names you use")
                return
        for b in _bindings(node):
            if _is_lib(b.module):
                continue
            if b in self.lib.header_bindings or b in self.lib.import_origins:
                continue
            self.lib.imports.append(b)
            self.lib.import_origins[b] = self.origin(cell, row)
            self.saved.append(b.text())

    def rewrite(self, node: ast.stmt, lines: list[str], orig: list[str]) -> list[str]:
        """Return ``lines`` with d2l.X -> X (and from-import aliases) inside ``node``."""
        edits: list[tuple[int, int, int, str]] = []  # row, start col, end col (bytes), new
        for n in ast.walk(node):
            if (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id in self.module_aliases
                and isinstance(n.ctx, ast.Load)
                and n.lineno == n.end_lineno
            ):
                edits.append((n.lineno, n.col_offset, n.end_col_offset, n.attr))
            elif isinstance(n, ast.Name) and n.id in self.name_aliases:
                edits.append((n.lineno, n.col_offset, n.end_col_offset, self.name_aliases[n.id]))
        if not edits:
            return lines
        out = list(lines)
        # Outer attributes (d2l.X.y) contain inner ones; keep only innermost-leftmost spans.
        edits.sort(key=lambda e: (e[0], -e[1]))
        for row, c0, c1, new in edits:
            raw = orig[row - 1]
            line = out[row - 1]
            a, b = _char_col(raw, c0), _char_col(raw, c1)
            # markers are only removed after the code, so columns before them are unchanged
            out[row - 1] = line[:a] + new + line[b:]
        return out

    def add_to_class_target(self, cell: Cell, node) -> str | None:
        """Class name for an add_to_class function; "" after an error; None otherwise."""
        for k, dec in enumerate(node.decorator_list):
            if not (isinstance(dec, ast.Call) and self.is_add_to_class(dec.func)):
                continue
            if k != 0:
                self.error(
                    cell,
                    dec.lineno,
                    "@add_to_class(...) is not the first decorator",
                    "put @add_to_class(Class) above the other decorators",
                )
                return ""
            arg = dec.args[0] if len(dec.args) == 1 and not dec.keywords else None
            if isinstance(arg, ast.Name):
                return self.name_aliases.get(arg.id, arg.id)
            if (
                isinstance(arg, ast.Attribute)
                and isinstance(arg.value, ast.Name)
                and arg.value.id in self.module_aliases
            ):
                return arg.attr
            self.error(
                cell,
                dec.lineno,
                "add_to_class needs one argument, the name of a saved class",
                "write @d2l.add_to_class(d2l.ClassName) or @add_to_class(ClassName)",
            )
            return ""
        return None

    def is_add_to_class(self, func: ast.expr) -> bool:
        if isinstance(func, ast.Name):
            return self.name_aliases.get(func.id, func.id) == "add_to_class"
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "add_to_class"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.module_aliases
        )

    def class_item(self, cell, node: ast.ClassDef, outs, start, origin, section) -> ClassItem:
        item = ClassItem(node.name, "class", outs, origin, section, [node.name])
        body = node.body
        first = _start_line(body[0])
        if first <= node.lineno:
            item.head = outs
            item.members = []
            item.indent = ""
            return item
        first_text = cell.lines[body[0].lineno - 1]
        item.indent = first_text[: len(first_text) - len(first_text.lstrip())]
        item.head = outs[: first - start]
        prev_end = first - 1
        for stmt in body:
            s, e = _start_line(stmt), stmt.end_lineno
            if s <= prev_end and item.members:
                last = item.members[-1]
                last.name = None
                last.lines.extend(outs[prev_end - start + 1 : e - start + 1])
                prev_end = max(prev_end, e)
                continue
            if s > prev_end + 1:
                item.members.append(Member(None, outs[prev_end - start + 1 : s - start]))
            name = stmt.name if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            item.members.append(Member(name, outs[s - start : e - start + 1], outs[s - start].origin))
            prev_end = e
        return item

    def merge_method(self, cell, node, target, outs, start, origin, section) -> None:
        cls = self.lib.find(target)
        if not isinstance(cls, ClassItem):
            what = (
                "is not a class" if cls is not None else "is not saved in this or an earlier chapter"
            )
            self.error(
                cell,
                start,
                f"add_to_class({target}): {target} {what} (table-of-contents order)",
                f"save class {target} with #@save before this cell (in this chapter or one listed "
                "earlier in _toc.yml), or do not mark this method #@save",
            )
            return
        if not cls.indent:
            self.error(
                cell,
                start,
                f"add_to_class({target}): class {target} is written on one line",
                f"write the body of class {target} on its own lines",
            )
            return
        dec = node.decorator_list[0]
        drop = dec.end_lineno - start + 1  # decorator lines to drop
        func = outs[drop:]
        func_src = "\n".join(o.text for o in func) + "\n"
        func_lines = [o.text for o in func]
        ftree = ast.parse(func_src)
        inner = _string_inner_rows(func_src, _docstring_starts(ftree, func_lines))
        ind = cls.indent
        body: list[Out] = [
            Out(ind + _marker(origin, section, len(ind)), None),
        ]
        for k, o in enumerate(func, start=1):
            if k in inner or not o.text.strip():
                body.append(Out(o.text if k in inner else "", o.origin))
            else:
                body.append(Out(ind + o.text, o.origin))
        name = node.name
        label = f"{target}.{name}"
        for m in cls.members:
            if m.name == name:
                old = m.origin
                m.lines, m.origin = body, origin
                self.lib.log.append(
                    f"replaced {label} ({_short(origin)} replaces {_short(old) if old else '?'})"
                )
                break
        else:
            cls.members.append(Member(None, [Out("", None)]))
            cls.members.append(Member(name, body, origin))
        self.saved.append(label)


def _is_lib(module: str | None, level: int = 0) -> bool:
    """Is ``module`` the book's library (d2l_lib or one of its submodules)?"""
    return (
        level == 0
        and module is not None
        and (module == LIB_PACKAGE or module.startswith(LIB_PACKAGE + "."))
    )


def _short(o: Origin) -> str:
    return f"{o.path}:{o.line}"


def _marker(origin: Origin, section: str, indent: int = 0) -> str:
    base = f"# Defined in {origin.path}"
    tail = f" (line {origin.line})"
    if section:
        room = LINE_LIMIT - indent - len(base) - len(tail) - len(', section ""')
        title = section if len(section) <= room else section[: max(room - 3, 0)] + "..."
        return f'{base}, section "{title}"{tail}'
    return base + tail


# --------------------------------------------------------------------------------------
# Assembling and checking the module
# --------------------------------------------------------------------------------------


def split_header(text: str, where: str) -> str:
    """The hand-written header: everything through the GENERATED line."""
    pos = 0
    for line in text.splitlines(keepends=True):
        if line.startswith(GENERATED_MARK):
            return text[: pos + len(line)] if line.endswith("\n") else text[:pos] + line + "\n"
        pos += len(line)
    raise ExtractError(
        f"{where}: no line starting with {GENERATED_MARK!r}; restore the header's last line"
    )


def header_bindings(header: str) -> set[Binding]:
    try:
        tree = ast.parse(header)
    except SyntaxError as e:
        raise ExtractError(f"{MODULE_PATH}:{e.lineno}: syntax error in the header: {e.msg}") from None
    out: set[Binding] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(_bindings(node))
    return out


def first_party(root: Path) -> set[str]:
    names = set()
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            names.add(p.name)
        elif p.suffix == ".py":
            names.add(p.stem)
    return names


def assemble(header: str, lib: Library, root: Path) -> list[Out]:
    out: list[Out] = [Out(line) for line in header.splitlines()]
    exported: list[str] = []
    for item in lib.items:
        for n in item.exported:
            if not n.startswith("_") and n not in exported:
                exported.append(n)
    out.append(Out(""))
    if exported:
        out.append(Out("__all__ = ["))
        out.extend(Out(f'    "{n}",') for n in sorted(exported, key=_all_key))
        out.append(Out("]"))
    else:
        out.append(Out("__all__ = []"))
    if lib.imports:
        out.append(Out(""))
        for line in format_imports(lib.imports, first_party(root)):
            for sub in line.split("\n"):
                out.append(Out(sub))
    for k, item in enumerate(lib.items):
        # ruff (isort) wants one blank line after the imports, two before a def/class
        if k or not lib.imports or item.kind in ("def", "class"):
            out.append(Out(""))
        out.append(Out(""))
        out.append(Out(_marker(item.origin, item.section)))
        out.extend(item.render() if isinstance(item, ClassItem) else item.lines)
    return out


def check_names(out: list[Out], aliases: set[str] = frozenset()) -> list[str]:
    """pyflakes on the generated module; undefined names become errors."""
    from pyflakes import checker, messages

    text = "\n".join(o.text for o in out) + "\n"
    try:
        tree = ast.parse(text)
    except SyntaxError as e:  # e.g. a method merged into a class that cannot hold it
        o = out[(e.lineno or 1) - 1]
        where = o.origin.where() if o.origin else f"{MODULE_PATH}:{e.lineno}"
        return [f"{where}: the generated module does not parse ({e.msg})\n    fix: see above"]
    w = checker.Checker(tree, filename=str(MODULE_PATH))
    errors = []
    undefined = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)
    for m in sorted(w.messages, key=lambda m: (m.lineno, m.col)):
        if not isinstance(m, undefined):
            continue
        o = out[m.lineno - 1]
        where = o.origin.where() if o.origin else f"{MODULE_PATH}:{m.lineno}"
        name = m.message_args[0]
        if name in aliases:
            fix = (
                f"write `import d2l_lib as {name}` in a code cell of this chapter, so that "
                f"{name}.X becomes X in the library, and use {name} only as {name}.X"
            )
        else:
            fix = (
                f"save the definition of {name!r} with #@save in this or an earlier chapter "
                "(before its first use at module level), save an import for it, or add its "
                "import to the header of d2l_lib/core.py"
            )
        errors.append(
            f"{where}: saved code uses {name!r}, which the generated module does not define "
            f"at that point ({m.message % m.message_args})\n    fix: {fix}"
        )
    return errors


def import_clashes(lib: Library) -> list[str]:
    """A saved object named like an import: the imports are hoisted to the top of the
    library, so the object would win there whatever the chapters' order (and a saved
    definition would shadow a header import the rest of the library relies on)."""
    imported: dict[str, tuple[Binding, Origin | None]] = {}
    for b in sorted(lib.header_bindings, key=Binding.text):
        imported.setdefault(b.bound(), (b, None))
    for b in lib.imports:
        imported.setdefault(b.bound(), (b, lib.import_origins.get(b)))
    errors = []
    for item in lib.items:
        for name in item.exported:
            if name not in imported:
                continue
            b, where = imported[name]
            source = f"saved at {where.where()}" if where else f"in the header of {MODULE_PATH}"
            errors.append(
                f"{item.origin.where()}: saved code defines {name!r}, which the import "
                f"`{b.text()}` ({source}) also binds; the library would keep only one of them\n"
                f"    fix: rename one of them, or import under another name (`as ...`)"
            )
    return errors


def read_module(root: Path) -> str:
    """The current d2l_lib/core.py."""
    try:
        data = (root / MODULE_PATH).read_bytes()
    except OSError as e:
        raise ExtractError(f"{MODULE_PATH}: cannot read it: {e.strerror}") from None
    return decode_utf8(data, str(MODULE_PATH))


def generate(root: Path) -> tuple[str, Library]:
    """The full text of d2l_lib/core.py for the chapters under ``root``."""
    current = read_module(root)
    header = split_header(current, str(MODULE_PATH))
    lib = Library(header_bindings=header_bindings(header))
    errors: list[str] = []
    for rel in toc_files(root):
        chapter = read_chapter(root, rel)
        ChapterExtractor(chapter, lib, errors).run()
    errors += import_clashes(lib)
    if errors:
        raise ExtractError(*errors)
    out = assemble(header, lib, root)
    errors = check_names(out, lib.aliases)
    if errors:
        raise ExtractError(*errors)
    return "\n".join(o.text for o in out) + "\n", lib


def defined_names(text: str) -> set[str]:
    """What the generated part of a core.py defines: its top-level ``def``, ``class`` and
    assigned names, and ``Class.method`` for the methods of its classes.

    A file that does not parse (a merge conflict, say) is scanned line by line instead.
    """
    at = text.find("\n" + GENERATED_MARK)
    body = text[text.index("\n", at + 1) + 1 :] if at >= 0 else text
    names: set[str] = set()
    try:
        tree = ast.parse(body)
    except SyntaxError:
        top = re.compile(r"^(?:async\s+def|def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=(?!=)")
        for line in body.splitlines():
            m = top.match(line)
            if m:
                names.add(m.group(1) or m.group(2))
        names.discard("__all__")
        return names
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(f"{node.name}.{sub.name}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    names.discard("__all__")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument(
        "--check", action="store_true", help="fail if d2l_lib/core.py differs from a fresh run"
    )
    parser.add_argument(
        "--allow-removal",
        action="store_true",
        help="write the library even if it loses names that d2l_lib/core.py defines now",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        text, lib = generate(root)
        module = root / MODULE_PATH
        current = read_module(root)
        lost = sorted(defined_names(current) - defined_names(text))
        if lost and not args.check and not args.allow_removal:
            shown = ", ".join(lost[:30]) + (f" and {len(lost) - 30} more" if len(lost) > 30 else "")
            raise ExtractError(
                f"{MODULE_PATH}: the chapters no longer save {len(lost)} name(s) it defines: "
                f"{shown}\n    fix: if a chapter left {TOC} or lost its #@save marks by mistake, "
                "restore it; if the removal is intended, run "
                "`python tools/extract_lib.py --allow-removal`"
            )
    except ExtractError as e:
        for message in e.args:
            print(f"error: {message}", file=sys.stderr)
        print("extract_lib: d2l_lib was not written; fix the chapters above", file=sys.stderr)
        return 1
    if args.check:
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
    for line in lib.log:
        print(line)
    for rel, names in lib.per_chapter.items():
        if names:
            print(f"{rel}: {len(names)} saved: {', '.join(names)}")
    if current == text:
        print(f"{MODULE_PATH} unchanged")
    else:
        module.write_text(text, encoding="utf-8")
        print(f"wrote {MODULE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
