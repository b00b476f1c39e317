"""How long a chapter reads: the words of its prose (``python -m booktools.prose [chapters]``).

Counted: the words of the markdown cells, as a reader sees them. Not counted: code cells
(shown, hidden or collapsed), displayed and inline math, directive option lines, label
targets, HTML comments; a glued number (``{glue:text}`name```) counts as one word.
"""

from __future__ import annotations

import re
import sys

from booktools import ROOT
from booktools.chapters import chapters, read_chapter

_DROP = [
    re.compile(r"\$\$.*?\$\$", re.DOTALL),  # displayed math
    re.compile(r"^(`{3,})\{math\}.*?^\1", re.DOTALL | re.MULTILINE),  # math directives
    re.compile(r"^(`{3,})[a-z]*\n.*?^\1", re.DOTALL | re.MULTILINE),  # fenced code in prose
    re.compile(r"^`{3,}.*$", re.MULTILINE),  # other directive fences (their bodies are prose)
    re.compile(r"^:[a-z_-]+:.*$", re.MULTILINE),  # directive options
    re.compile(r"<!--.*?-->", re.DOTALL),
    re.compile(r"^\([A-Za-z0-9_-]+\)=\s*$", re.MULTILINE),  # label targets
]
_GLUE = re.compile(r"\{glue(?::[a-z]+)?\}`[^`]*`")
_INLINE_MATH = re.compile(r"(?<!\\)\$[^$\n]+\$")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


def prose_words(markdown: str) -> int:
    """Words in one markdown cell's text, by the rules of the module docstring."""
    for pattern in _DROP:
        markdown = pattern.sub(" ", markdown)
    markdown = _GLUE.sub(" N ", markdown)
    markdown = _INLINE_MATH.sub(" ", markdown)
    return len(_WORD.findall(markdown))


def chapter_words(md) -> int:
    """Words of prose in the chapter file ``md`` (all its markdown cells)."""
    chapter = read_chapter(md.parent.parent, f"{md.parent.name}/{md.name}")
    return sum(prose_words("\n".join(c.lines)) for c in chapter.cells if c.kind == "markdown")


def main(argv: list[str]) -> int:
    paths = chapters(ROOT)
    if argv:
        paths = [p for p in paths if p.stem in argv]
    for md in paths:
        print(f"{md.stem:20s} {chapter_words(md):6d} words of prose")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
