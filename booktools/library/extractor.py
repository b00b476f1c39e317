"""Collecting one chapter's saved code into the library: which statements are saved, how
``d2l.X`` becomes ``X``, and how ``@add_to_class`` methods are merged into their classes."""

from __future__ import annotations

import ast
import re
import tokenize

from booktools.chapters import Cell, Chapter, markdown_lines
from booktools.library.imports import _bindings
from booktools.library.marks import (
    DOC_FENCE_LANGS,
    LOOKALIKE_START_RE,
    MARK_IN_LINE_RE,
    _char_col,
    _docstring_starts,
    _header_end,
    _lenient_parse,
    _start_line,
    _string_inner_rows,
    _strip_marker,
    _tokens,
    lookalikes,
    marker_comments,
)
from booktools.library.model import (
    LIB_PACKAGE,
    ClassItem,
    Item,
    Library,
    Member,
    Origin,
    Out,
    _marker,
    _short,
)


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
        for k, line, in_fence, lang in markdown_lines(cell.lines):
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
        chosen = self.marked_statements(cell, markers, spans)
        # marker comments are removed from the text below
        lines = list(cell.lines)
        for row, col, comment in markers:
            lines[row - 1] = _strip_marker(lines[row - 1], col, comment)
        for i in sorted(chosen):
            self.save_statement(cell, stmts[i], spans, i, lines, tree)

    def marked_statements(self, cell: Cell, markers, spans) -> list[int]:
        """Indices of the top-level statements the marks save; misplaced marks are errors."""
        # a comment line carrying the mark, first in the cell: the whole cell is saved
        whole = any(row == 1 and not cell.lines[0][:col].strip() for row, col, _ in markers)
        chosen: list[int] = list(range(len(spans))) if whole else []
        for row, col, _comment in markers:
            if whole and row == 1:
                continue
            hit = next((i for i, (s, _h, e) in enumerate(spans) if s <= row <= e), None)
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
            start, head_end, _end = spans[hit]
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
        return chosen

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


