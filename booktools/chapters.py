"""A chapter, ``book/<name>.md``: a MyST notebook read into cells, and which pages have code.

Chapters are UTF-8 without a byte-order mark; CRLF line ends are read as LF. Their code
cells are ```` ```{code-cell} ipython3 ```` fences; jupytext's MyST reader splits a chapter
into cells. The pages and their order come from ``booktools.toc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from booktools import ROOT, BookError, decode_utf8
from booktools.toc import toc_pages


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


def _to_notebook(text: str, rel: str):
    """jupytext's reading of a chapter's text, with the source map; clear errors."""
    from jupytext.myst import MystMetadataParsingError, myst_to_notebook

    try:
        return myst_to_notebook(text, add_source_map=True)
    except MystMetadataParsingError as e:
        raise BookError(f"{rel}: jupytext cannot read this MyST notebook: {e}") from None
    except Exception as e:  # noqa: BLE001  (bad front matter or cell options: YAML tags, lists)
        first = (str(e).strip().splitlines() or [""])[0]
        raise BookError(
            f"{rel}: jupytext cannot read this MyST notebook ({type(e).__name__}: {first})\n"
            "    fix: the front matter and each cell's options must be YAML mappings of plain "
            "values"
        ) from None


def read_chapter(root: Path, rel: str) -> Chapter:
    """The chapter ``rel`` (e.g. "book/intro.md") as cells that know their lines in the file."""
    path = root / rel
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BookError(f"{rel}: cannot read the chapter listed in _toc.yml: {e}") from None
    text = decode_utf8(data, rel)
    file_lines = text.splitlines()
    nb = _to_notebook(text, rel)
    starts = nb.metadata.get("source_map", [])
    cells: list[Cell] = []
    cursor = 0
    for i, (nb_cell, start) in enumerate(zip(nb.cells, starts, strict=True)):
        lines = nb_cell.source.splitlines()
        begin = max(start, cursor)
        at = _find_block(file_lines, lines, begin) if lines else begin
        if at < 0:
            raise BookError(
                f"{rel}:{start + 1} (cell {i + 1}): cannot locate this cell's text in the file"
                " (is its fence indented?)"
            )
        cells.append(Cell(i + 1, nb_cell.cell_type, lines, at + 1))
        cursor = at + len(lines)
    return Chapter(rel, cells, _headings(cells))


def _headings(cells: list[Cell]) -> list[tuple[int, str]]:
    headings: list[tuple[int, str]] = []
    for cell in cells:
        if cell.kind != "markdown":
            continue
        for k, line, in_fence, _lang in markdown_lines(cell.lines):
            if in_fence:
                continue
            m = re.match(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if m and m.group(2):
                headings.append((cell.first_line + k, m.group(2)))
    return headings


def markdown_lines(lines: list[str]):
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


# ---------------------------------------------------------------------------------------
# Which pages have code


def read_chapter_text(md: Path) -> str:
    """The chapter's text; bytes that are not UTF-8, or a byte-order mark (which hides the
    front matter from jupytext), are a BookError naming the file and the byte offset."""
    return decode_utf8(md.read_bytes(), f"{md.parent.name}/{md.name}")


def has_code(md: Path) -> bool:
    """Whether the page has a code cell (as jupytext parses it: an example of a code cell
    shown inside a ````markdown fence does not count)."""
    import jupytext

    text = read_chapter_text(md)
    if "{code-cell}" not in text:
        return False
    return any(cell.cell_type == "code" for cell in jupytext.reads(text, fmt="md:myst").cells)


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapter sources that are paired with a notebook, in reading order: the pages of
    _toc.yml with at least one code cell."""
    return [root / f"{page}.md" for page in toc_pages(root) if has_code(root / f"{page}.md")]
