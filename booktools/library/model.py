"""The generated module's parts: where each line comes from, the saved objects (functions,
classes with their members, assignments) and the library under construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from booktools.library.imports import Binding

GENERATED_MARK = "# ---- GENERATED BELOW"
LIB_PACKAGE = "d2l_lib"
MODULE_PATH = Path("d2l_lib") / "core.py"
LINE_LIMIT = 100


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


