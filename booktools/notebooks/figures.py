"""The figure check on a chapter's notebook: every image that reaches the page is a numbered
figure with a caption and alt text, and the prose refers to figures by number.

MyST-NB renders a code cell's image as a numbered figure when the cell's metadata says so
(in the chapter, the cell's YAML header)::

    mystnb:
      figure:
        caption: One or two sentences that say what to see.
        name: fig-<chapter>-<what>
      image:
        alt: What the image shows, for a screen reader.

Without it the page shows an anonymous ``<img>`` whose alt text is the image's hashed file
name, which a screen reader reads aloud. The check compares each cell's metadata with its
stored outputs (``make check``; ``make notebooks`` after executing). The axis labels of the
figures themselves are checked while the kernel draws them (``startup/figure_check.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

DISPLAY = {"display_data", "execute_result"}
HIDDEN = {"remove-cell", "remove-output"}  # tags whose outputs never reach the page
NAME = re.compile(r"^fig-[a-z0-9][a-z0-9_-]*$")
FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|gif|svg|pdf)$", re.IGNORECASE)
MIN_ALT_WORDS = 4
# "the figure below", "the plot above", "the figures above", "below figure"
ANONYMOUS = re.compile(
    r"\b(figure|figures|plot|plots|graph|diagram|chart|picture|panel)\s+(below|above)\b"
    r"|\b(below|above)\s+(figure|plot|graph|diagram|chart)\b",
    re.IGNORECASE,
)


def _is_image(output) -> bool:
    return output.get("output_type") in DISPLAY and any(
        mime.startswith("image/") for mime in output.get("data", {}))


def figure_options(cell) -> tuple[dict, dict]:
    """(figure options, image options) of a cell's ``mystnb`` metadata ({} where absent)."""
    mystnb = cell.get("metadata", {}).get("mystnb") or {}
    return (mystnb.get("figure") or {}), (mystnb.get("image") or {})


def header_example(stem: str, tags: list[str]) -> str:
    """The YAML header a figure cell needs, as the fix in an error message."""
    short = stem.replace("_", "-")
    tag_line = f"    tags: [{', '.join(tags)}]\n" if tags else ""
    return (
        "    ```{code-cell} ipython3\n    ---\n" + tag_line +
        "    mystnb:\n      figure:\n"
        "        caption: <one or two sentences: what to see in the figure>\n"
        f"        name: fig-{short}-<what>\n"
        "      image:\n"
        "        alt: <what the image shows, for a reader who cannot see it>\n"
        "    ---\n"
    )


def cell_problems(cell) -> list[str]:
    """What keeps one code cell's outputs from rendering as one captioned figure."""
    if cell.get("cell_type") != "code":
        return []
    if HIDDEN & set(cell.get("metadata", {}).get("tags", [])):
        return []
    figure, image = figure_options(cell)
    shown = [out for out in cell.get("outputs", []) if out.get("output_type") in DISPLAY]
    images = [out for out in shown if _is_image(out)]
    if not images:
        if figure or image:
            return ["it has figure metadata (mystnb) but shows no image: remove the metadata, "
                    "or make the cell show its figure"]
        return []
    problems = []
    caption = str(figure.get("caption") or "").strip()
    name = str(figure.get("name") or "").strip()
    alt = str(image.get("alt") or "").strip()
    if not caption:
        problems.append("its figure has no caption (mystnb.figure.caption)")
    if not name:
        problems.append("its figure has no name (mystnb.figure.name) to refer to it by")
    elif not NAME.match(name):
        problems.append(f"its figure name {name!r} is not of the form fig-<chapter>-<what> "
                        "(lower case, digits, '-')")
    if not alt:
        problems.append("its image has no alt text (mystnb.image.alt)")
    elif FILE_NAME.match(alt) or len(alt.split()) < MIN_ALT_WORDS:
        problems.append(f"its alt text {alt!r} does not describe the image (write at least "
                        f"{MIN_ALT_WORDS} words: the kind of plot, its axes, what the data do)")
    if len(shown) > 1:
        problems.append(
            f"it shows {len(shown)} outputs ({len(images)} of them images); MyST-NB wraps each "
            "in a figure with the same caption and name: show exactly one image (end the cell "
            "with plt.show() so no other value is displayed, or split the cell, one figure "
            "each)")
    return problems


def _cell_lines(md_text: str) -> list[int]:
    """For each cell of the chapter, the line (from 1) of its ```{code-cell} fence or of its
    first line of prose."""
    from jupytext.myst import myst_to_notebook

    return myst_to_notebook(md_text, add_source_map=True).metadata.get("source_map", [])


def _where(i: int, cell, starts: list[int]) -> str:
    first = (cell.source.splitlines() or [""])[0]
    line = f"line {starts[i]}, " if i < len(starts) else ""
    return f"{line}cell {i + 1} (starting {first[:50]!r})"


def _prose_line(i: int, starts: list[int], md_lines: list[str], text: str) -> int | None:
    """The chapter line (from 1) of `text`, searched from the start of markdown cell `i`."""
    start = starts[i] if i < len(starts) else 0
    for needle in (text, text.split()[0]):  # the phrase may be broken across two lines
        for n in range(max(start - 1, 0), len(md_lines)):
            if needle in md_lines[n]:
                return n + 1
    return None


def caption_problems(nb, md: Path, root: Path) -> list[str]:
    """Every figure problem of chapter `md`'s executed notebook `nb`, one message each.

    Each message names the chapter, the line of the cell in it, what is missing, and the fix.
    """
    rel = md.relative_to(root)
    md_text = md.read_text(encoding="utf8")
    md_lines = md_text.splitlines()
    starts = _cell_lines(md_text)
    rerun = f"then run `make notebooks CHAPTERS={md.stem}`"
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for match in ANONYMOUS.finditer(cell.source):
                snippet = " ".join(match.group(0).split())
                line = _prose_line(i, starts, md_lines, match.group(0))
                problems.append(
                    f"{rel}, line {line or '?'}: the prose says {snippet!r}; refer to the "
                    "figure by its number instead: {numref}`fig-<name>` (its mystnb.figure.name)")
            continue
        issues = cell_problems(cell)
        if not issues:
            continue
        message = f"{rel}, {_where(i, cell, starts)}: " + "; ".join(issues)
        if any(" has no " in issue for issue in issues):
            tags = cell.get("metadata", {}).get("tags", [])
            message += (". Give it a caption, a name and alt text in the cell's header:\n"
                        + header_example(md.stem, tags) + "  and refer to it in the prose as "
                        "{numref}`fig-...`; " + rerun)
        else:
            message += f"; {rerun}"
        problems.append(message)
    return problems


def duplicate_names(named: dict[str, list[str]]) -> list[str]:
    """Figure names used more than once in the book ({name: [chapters using it]})."""
    return [f"figure name {name!r} is used more than once ({', '.join(where)}); names must "
            "be unique in the book" for name, where in sorted(named.items()) if len(where) > 1]


def figure_names(nb, rel: str) -> dict[str, list[str]]:
    """{figure name: [where]} for the cells of one notebook."""
    names: dict[str, list[str]] = {}
    for i, cell in enumerate(nb.cells):
        name = str(figure_options(cell)[0].get("name") or "").strip()
        if name:
            names.setdefault(name, []).append(f"{rel} cell {i + 1}")
    return names
