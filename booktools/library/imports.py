"""Saved imports, hoisted into one block in the order ruff's isort rules (default settings)
want: one binding per line, standard library, third party, then first party."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from booktools.library.model import LINE_LIMIT


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


def first_party(root: Path) -> set[str]:
    names = set()
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            names.add(p.name)
        elif p.suffix == ".py":
            names.add(p.stem)
    return names
