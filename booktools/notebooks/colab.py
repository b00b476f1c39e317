"""The Colab setup cell: the first code cell of every chapter installs d2l_lib in Colab.

Its source is built from ``repository.url`` and ``repository.branch`` in ``_config.yml``
(the one place that names them); ``check_colab`` compares a chapter's cell with it and
``stamp`` rewrites the cell in every chapter (``python -m booktools.notebooks stamp``).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import yaml

from booktools import ROOT, BookError
from booktools.chapters import chapters

# The Colab setup cell: the first code cell of every chapter. {url} and {ref} come from
# repository.url and repository.branch in _config.yml (the one place that names them).
COLAB_TAGS = ["remove-cell"]
COLAB_TEMPLATE = """\
# Colab only: install the book's library, d2l_lib, at this page's version.
# Anywhere else this cell does nothing (the local setup installs d2l_lib).
import sys

if "google.colab" in sys.modules:
    source = "git+{url}@{ref}"
    %pip install -q --no-deps "d2l_lib @ {{source}}\""""


def colab_source(root: Path = ROOT) -> str:
    """The exact source of the Colab setup cell, built from _config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config.get("repository") or {}
    url, ref = repo.get("url"), repo.get("branch")
    if not url or not ref:
        raise BookError("_config.yml: repository.url and repository.branch must both be set")
    return COLAB_TEMPLATE.format(url=url.rstrip("/"), ref=ref)


def _first_code_cell(nb):
    return next((cell for cell in nb.cells if cell.cell_type == "code"), None)


def check_colab(md: Path, root: Path = ROOT) -> list[str]:
    """The chapter's first code cell must be the Colab setup cell, exactly."""
    rel = md.relative_to(root)
    cell = _first_code_cell(jupytext.read(md, fmt="md:myst"))
    want = colab_source(root)
    fix = "run `python -m booktools.notebooks stamp` (it rewrites the cell from _config.yml)"
    if cell is None or "google.colab" not in cell.source:
        return [f"{rel}: the first code cell is not the Colab setup cell; {fix}"]
    problems = []
    if cell.source != want:
        m = re.search(r"git\+(\S+?)@([^\"\s]+)", cell.source)
        where = f" (it installs from {m.group(1)} at {m.group(2)})" if m else ""
        problems.append(
            f"{rel}: the Colab setup cell differs from the one built from _config.yml"
            f"{where}; {fix}"
        )
    if cell.metadata.get("tags") != COLAB_TAGS:
        problems.append(f"{rel}: the Colab setup cell must carry exactly the tags {COLAB_TAGS}; {fix}")
    return problems


_CODE_CELL = re.compile(r"^```{code-cell}[^\n]*\n.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def stamp_text(text: str, source: str) -> str:
    """The chapter text with its Colab setup cell replaced (or inserted) from source."""
    block = "```{code-cell} ipython3\n:tags: [" + ", ".join(COLAB_TAGS) + "]\n" + source + "\n```"
    match = _CODE_CELL.search(text)
    if match is None:
        return text
    if "google.colab" in match.group(0):
        return text[: match.start()] + block + text[match.end():]
    return text[: match.start()] + block + "\n\n" + text[match.start():]


def stamp(root: Path = ROOT) -> list[Path]:
    source = colab_source(root)
    changed = []
    for md in chapters(root):
        text = md.read_text()
        new = stamp_text(text, source)
        if new != text:
            md.write_text(new)
            changed.append(md)
            print(f"{md.relative_to(root)}: Colab setup cell stamped")
    return changed
