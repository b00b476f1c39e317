"""The pairing check: ``notebooks/<name>.ipynb`` holds exactly the cells of ``book/<name>.md``
(inputs only, never by timestamps) and was executed without an error output.

``to_notebook`` is the one conversion of a chapter into a notebook (deterministic ids and
metadata); ``make check`` and the site build (``_ext/stored_outputs.py``) use ``chapter_problems``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jupytext
import nbformat

from booktools import ROOT
from booktools.chapters import chapters
from booktools.notebooks.colab import check_colab
from booktools.notebooks.figures import caption_problems, duplicate_names, figure_names

# Cell metadata that says nothing about a cell's input: left out of notebooks and of the
# pairing comparison.
VOLATILE_CELL_METADATA = {"execution", "ExecuteTime", "collapsed", "scrolled", "jupyter"}


def notebook_path(md: Path, root: Path = ROOT) -> Path:
    return root / "notebooks" / f"{md.stem}.ipynb"


def _cell_id(cell, seen: dict[str, int]) -> str:
    digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
    n = seen.get(digest, 0)
    seen[digest] = n + 1
    return digest if n == 0 else f"{digest}-{n}"


def to_notebook(md: Path) -> nbformat.NotebookNode:
    """The chapter as a notebook without outputs, with deterministic ids and metadata."""
    nb = jupytext.read(md, fmt="md:myst")
    seen: dict[str, int] = {}
    for cell in nb.cells:
        cell.id = _cell_id(cell, seen)
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    # Keep the kernelspec and the jupytext pairing (so that a reader's Jupyter with
    # jupytext knows the chapter this notebook comes from); drop the rest.
    meta = {"kernelspec": nb.metadata.get("kernelspec", {})}
    formats = nb.metadata.get("jupytext", {}).get("formats")
    if formats:
        meta["jupytext"] = {"formats": formats}
    nb.metadata = nbformat.from_dict(meta)
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def inputs(nb) -> list[tuple]:
    """What the pairing check compares: per cell its type, source and metadata."""
    out = []
    for cell in nb.cells:
        meta = {k: v for k, v in cell.get("metadata", {}).items() if k not in VOLATILE_CELL_METADATA}
        out.append((cell.cell_type, cell.source, meta))
    return out


def _first_difference(a: list[tuple], b: list[tuple], md_text: str = "") -> str:
    """Where the chapter's cells (a) and the notebook's (b) first differ, for humans."""
    from jupytext.myst import myst_to_notebook

    # where each cell starts in the file (jupytext's source map: the line after a code
    # cell's fence, or a markdown cell's first line, counted from 0)
    starts = myst_to_notebook(md_text, add_source_map=True).metadata.get("source_map", [])
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = "type" if x[0] != y[0] else "source" if x[1] != y[1] else "metadata"
            first_line = (x[1].splitlines() or [""])[0]
            line = ""
            if first_line.strip() and i < len(starts):
                # the cell's first source line, searched from the cell's own start
                lines = md_text.splitlines()
                for n in range(starts[i], len(lines)):
                    if lines[n] == first_line:
                        line = f", line {n + 1} of the chapter"
                        break
            return (
                f"cell {i + 1} ({x[0]}, starting {first_line[:60]!r}{line}) differs in its {what}"
            )
    return f"the chapter has {len(a)} cells, the notebook {len(b)}"


def chapter_problems(md: Path, root: Path = ROOT) -> list[str]:
    """Why notebooks/<name>.ipynb cannot stand for book/<name>.md (empty: it can).

    The notebook must exist, hold the chapter's cells (inputs only), and have been executed
    without an error output. Used by `check` and by the site build (_ext/stored_outputs.py).
    """
    path = notebook_path(md, root)
    rel, rel_md = path.relative_to(root), md.relative_to(root)
    fix = f"run `make notebooks CHAPTERS={md.stem}`"
    if not path.exists():
        return [f"{rel_md} has no notebook {rel}; {fix}"]
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001  (report any unreadable file)
        return [f"{rel}: not a readable notebook ({err}); {fix}"]
    chapter = to_notebook(md)
    want = inputs(chapter)
    have = inputs(nb)
    if want != have:
        where = _first_difference(want, have, md.read_text())
        return [f"{rel} is stale: {where} from {rel_md}; {fix}"]
    problems = []
    if nb.metadata.get("kernelspec") != chapter.metadata.get("kernelspec"):
        problems.append(f"{rel}: its kernelspec differs from {rel_md}; {fix}")
    return problems + run_problems(nb, rel, fix)


def run_problems(nb, rel, fix: str) -> list[str]:
    """The first code cell of a stored notebook that was never executed or stores an error."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            return [f"{rel}: cell {i + 1} was never executed; {fix}"]
        if any(out.output_type == "error" for out in cell.outputs):
            return [f"{rel}: cell {i + 1} stores an error output; {fix}"]
    return []


def check_pairing(root: Path = ROOT, paired: list[Path] | None = None) -> list[str]:
    """Every chapter's notebook is usable and every notebook has a chapter; the chapters whose
    notebooks are usable are appended to `paired` when given."""
    problems = []
    mds = chapters(root)
    names = {md.stem for md in mds}
    for md in mds:
        found = chapter_problems(md, root)
        problems += found
        if not found and paired is not None:
            paired.append(md)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        if path.stem not in names:
            problems.append(
                f"{path.relative_to(root)} has no chapter: no page book/{path.stem}.md with "
                "code in _toc.yml; delete the notebook or add the chapter"
            )
    return problems


def check_figures(root: Path = ROOT, mds: list[Path] | None = None) -> list[str]:
    """Every image of the (paired) notebooks of `mds` (default: every chapter) is a captioned
    figure with alt text, and figure names are unique in the book."""
    problems, names = [], {}
    for md in chapters(root) if mds is None else mds:
        nb = nbformat.read(notebook_path(md, root), as_version=4)
        problems += caption_problems(nb, md, root)
        for name, where in figure_names(nb, str(md.relative_to(root))).items():
            names.setdefault(name, []).extend(where)
    return problems + duplicate_names(names)


def check(root: Path = ROOT) -> list[str]:
    problems = []
    for md in chapters(root):
        problems += check_colab(md, root)
    paired: list[Path] = []
    problems += check_pairing(root, paired)
    problems += check_figures(root, paired)  # a stale notebook's figures are not judged
    return problems
