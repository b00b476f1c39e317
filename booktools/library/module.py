"""Assembling ``d2l_lib/core.py`` from the saved objects, and checking it: the hand-written
header kept, ``__all__``, the hoisted imports, names that the module would not define."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from booktools import BookError, decode_utf8
from booktools.chapters import read_chapter
from booktools.library.extractor import ChapterExtractor
from booktools.library.imports import Binding, _all_key, _bindings, first_party, format_imports
from booktools.library.model import (
    GENERATED_MARK,
    MODULE_PATH,
    ClassItem,
    Library,
    Origin,
    Out,
    _marker,
)
from booktools.toc import toc_files


def split_header(text: str, where: str) -> str:
    """The hand-written header: everything through the GENERATED line."""
    pos = 0
    for line in text.splitlines(keepends=True):
        if line.startswith(GENERATED_MARK):
            return text[: pos + len(line)] if line.endswith("\n") else text[:pos] + line + "\n"
        pos += len(line)
    raise BookError(
        f"{where}: no line starting with {GENERATED_MARK!r}; restore the header's last line"
    )


def header_bindings(header: str) -> set[Binding]:
    try:
        tree = ast.parse(header)
    except SyntaxError as e:
        raise BookError(f"{MODULE_PATH}:{e.lineno}: syntax error in the header: {e.msg}") from None
    out: set[Binding] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(_bindings(node))
    return out


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
        raise BookError(f"{MODULE_PATH}: cannot read it: {e.strerror}") from None
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
        raise BookError(*errors)
    out = assemble(header, lib, root)
    errors = check_names(out, lib.aliases)
    if errors:
        raise BookError(*errors)
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


