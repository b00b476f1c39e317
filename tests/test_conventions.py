"""The book's conventions for readers (maintainers page, "Style of figures and outputs"):

- no build plumbing on a reader's page: no visible `glue(` call, and no mention of `make`
  commands, the Makefile, `bench/`, CI or `tests/` outside the maintainers page;
- code that fits the page: visible code lines at most 80 characters;
- references: every chapter cites the literature it builds on, every cited key is in
  references.bib, and every entry there is complete.
"""

import re
from pathlib import Path

import jupytext
import pytest
from citations import cited_keys
from pybtex.database import parse_file

from booktools import toc as book_toc

ROOT = Path(__file__).resolve().parent.parent
MAX_COLUMNS = 80
HIDDEN = {"remove-cell", "remove-input"}
MAINTAINERS = "book/maintainers"
PLUMBING = re.compile(
    r"`make\b|\bmake (book|test|notebooks|lib|check|bench|nbval|unit|browser)\b|Makefile"
    r"|\bbench/|\bCI\b|\btests/|\bunit tests?\b|\bthe benchmark\b",
)


def toc_pages():
    """The pages of _toc.yml in reading order, as booktools.toc reads them."""
    return [page for page in book_toc.toc_pages(ROOT) if (ROOT / f"{page}.md").exists()]


def visible_cells(page):
    """The page's cells a reader sees: (kind, index, source) for markdown and code cells."""
    nb = jupytext.read(ROOT / f"{page}.md", fmt="md:myst")
    for i, cell in enumerate(nb.cells, start=1):
        if HIDDEN & set(cell.metadata.get("tags", [])):
            continue
        yield cell.cell_type, i, cell.source


def chapters_with_code():
    return [page for page in toc_pages()
            if any(kind == "code" for kind, _, _ in visible_cells(page))]


@pytest.mark.parametrize("page", toc_pages())
def test_no_glue_call_is_visible(page):
    shown = [f"{page}.md cell {i}" for kind, i, source in visible_cells(page)
             if kind == "code" and "glue(" in source]
    assert not shown, ("glue(...) in a visible cell: move it into a cell tagged remove-cell: "
                       + ", ".join(shown))


@pytest.mark.parametrize("page", [p for p in toc_pages() if p != MAINTAINERS])
def test_reader_pages_do_not_talk_about_the_build(page):
    found = []
    for _, i, source in visible_cells(page):
        for line in source.splitlines():
            match = PLUMBING.search(line)
            if match:
                found.append(f"cell {i}: {match.group(0)!r} in {line.strip()[:70]!r}")
    assert not found, (f"{page}.md mentions build plumbing (keep it on the maintainers page):\n"
                       + "\n".join(found))


@pytest.mark.parametrize("page", toc_pages())
def test_visible_code_fits_the_page(page):
    long = [f"cell {i}: {len(line)} characters: {line[:50]!r}..."
            for kind, i, source in visible_cells(page) if kind == "code"
            for line in source.splitlines() if len(line) > MAX_COLUMNS]
    assert not long, (f"{page}.md has code lines over {MAX_COLUMNS} characters, which the site "
                      "hides behind a scroll bar:\n" + "\n".join(long))


def bibliography():
    return parse_file(str(ROOT / "references.bib"), bib_format="bibtex")


@pytest.mark.parametrize("page", [p for p in chapters_with_code() if p != "book/intro"])
def test_every_chapter_cites_the_literature(page):
    text = (ROOT / f"{page}.md").read_text(encoding="utf8")
    assert cited_keys(text), f"{page}.md cites nothing: add {{cite}}`key` where results come from"


def test_every_cited_key_is_in_the_bibliography():
    keys = set(bibliography().entries)
    missing = []
    for page in toc_pages():
        text = (ROOT / f"{page}.md").read_text(encoding="utf8")
        missing += [f"{page}.md: {key}" for key in cited_keys(text) if key not in keys]
    assert not missing, "cited but not in references.bib: " + ", ".join(missing)


VENUE = {"article": "journal", "inproceedings": "booktitle", "phdthesis": "school",
         "book": "publisher", "misc": "howpublished"}


@pytest.mark.parametrize("key", sorted(bibliography().entries))
def test_bibliography_entries_are_complete(key):
    entry = bibliography().entries[key]
    assert entry.type in VENUE, f"{key}: entry type @{entry.type} is not one the book uses"
    assert entry.persons.get("author"), f"{key}: no author"
    for field in ("title", "year", VENUE[entry.type]):
        assert entry.fields.get(field), f"{key}: no {field}"
    assert entry.fields.get("doi") or entry.fields.get("url"), f"{key}: neither doi nor url"


@pytest.mark.parametrize("page", toc_pages())
def test_every_page_is_labelled_chapter_and_its_name(page):
    """Cross-references and the intro's table of running times ({ref}`chapter-<name>`) find
    every page by the label right above its title."""
    text = (ROOT / f"{page}.md").read_text(encoding="utf8")
    name = Path(page).name
    assert re.search(rf"^\(chapter-{re.escape(name)}\)=\n# ", text, re.MULTILINE), (
        f"{page}.md: put the label (chapter-{name})= on the line above its title")
