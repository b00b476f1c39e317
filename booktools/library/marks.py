"""Finding the ``#@save`` marks in a code cell, and the helpers that read its source text.

The mark is a comment part that is exactly ``#@save`` (a comment is cut into parts before
each ``#`` that follows whitespace); parts that merely look like it (``# @save``, ``#@Save``,
``#@save:``) are found too, so that a garbled mark is an error instead of saving nothing.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

MARK = "#@save"
# A line that may carry the mark (a quick filter: the tokens decide; strings can match too).
MARK_IN_LINE_RE = re.compile(r"#@save(?=\s*(?:#|$))")
# A comment part that starts, or ends, like the mark: '# @save', '#@Save', '#@save:', '##@save'
LOOKALIKE_START_RE = re.compile(r"#+\s*@+\s*save", re.IGNORECASE)
LOOKALIKE_END_RE = re.compile(r"#+\s*@+\s*save\s*$", re.IGNORECASE)
DOC_FENCE_LANGS = {"text", "md", "markdown"}


def _char_col(line: str, byte_col: int) -> int:
    """ast gives UTF-8 byte offsets; convert one to a character offset in ``line``."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _tokens(src: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(src).readline))


def _string_inner_rows(src: str, docstring_starts: set[tuple[int, int]]) -> set[int]:
    """1-based rows that start inside a multi-line string literal (not a docstring)."""
    rows: set[int] = set()
    fstring_start: list[tuple[int, int]] = []
    for tok in _tokens(src):
        name = tokenize.tok_name[tok.type]
        if name == "FSTRING_START":
            fstring_start.append(tok.start)
        elif name == "FSTRING_END" and fstring_start:
            srow, _ = fstring_start.pop()
            rows.update(range(srow + 1, tok.end[0] + 1))
        elif (
            tok.type == tokenize.STRING
            and tok.end[0] > tok.start[0]
            and tok.start not in docstring_starts
        ):
            rows.update(range(tok.start[0] + 1, tok.end[0] + 1))
    return rows


def _docstring_starts(tree: ast.AST, lines: list[str]) -> set[tuple[int, int]]:
    starts = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                v = body[0].value
                starts.add((v.lineno, _char_col(lines[v.lineno - 1], v.col_offset)))
    return starts


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    if decorators:
        return decorators[0].lineno
    return node.lineno


def _header_end(node: ast.stmt, toks: list[tokenize.TokenInfo], lines: list[str]) -> int:
    """Last line of a compound statement's header (the line of its colon)."""
    if not hasattr(node, "body"):
        return node.end_lineno
    start = (node.lineno, _char_col(lines[node.lineno - 1], node.col_offset))
    depth = 0
    for tok in toks:
        if tok.start < start or tok.type != tokenize.OP:
            continue
        if tok.string in "([{":
            depth += 1
        elif tok.string in ")]}":
            depth -= 1
        elif tok.string == ":" and depth == 0:
            return tok.start[0]
    return node.lineno


def comment_parts(comment: str) -> list[str]:
    """A comment cut before every ``#`` that starts it or follows whitespace:
    ``# seconds  #@save  # why`` has the parts ``# seconds  ``, ``#@save  ``, ``# why``."""
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s))#", comment)] or [0]
    return [comment[a:b] for a, b in zip(starts, starts[1:] + [len(comment)], strict=True)]


def is_mark(comment: str) -> bool:
    """Does the comment carry the mark: one of its parts is exactly ``#@save``?"""
    return any(p.rstrip() == MARK for p in comment_parts(comment))


def lookalikes(comment: str, after_code: bool) -> list[str]:
    """Parts of a comment that look like a garbled mark and would silently save nothing.

    A part that starts like the mark (``#@save:``, ``#@save this``, ``# @Save``) is one when
    it starts the comment or the comment follows code on its line; a part that ends like
    the mark (``# note#@Save``) always is. Further on in a comment line's prose, words that
    merely begin with the mark (``# cells marked #@save go to d2l``) are text.
    """
    found = []
    for k, part in enumerate(comment_parts(comment)):
        p = part.rstrip()
        if p == MARK:
            continue
        if LOOKALIKE_END_RE.search(p) or (
            (k == 0 or after_code) and LOOKALIKE_START_RE.match(p)
        ):
            found.append(p)
    return found


def marker_comments(lines: list[str]) -> list[tuple[int, int, str]]:
    """(row, char col, comment) of every comment carrying the mark, in a parsable cell."""
    src = "\n".join(lines) + "\n"
    return [
        (t.start[0], t.start[1], t.string)
        for t in _tokens(src)
        if t.type == tokenize.COMMENT and is_mark(t.string)
    ]


def _strip_marker(line: str, col: int, comment: str) -> str:
    """The line without the mark; the comment's other parts are kept."""
    rest = [p.rstrip() for p in comment_parts(comment) if p.rstrip() not in (MARK, "#")]
    if not rest:
        return line[:col].rstrip()
    return line[:col] + "  ".join(rest)


def _lenient_parse(lines: list[str]) -> ast.Module | None:
    """Parse a cell that may contain IPython magics (masked as ``pass``)."""
    src = "\n".join(lines)
    try:
        return ast.parse(src)
    except SyntaxError:
        pass
    masked = []
    for line in lines:
        s = line.lstrip()
        if s.startswith(("%", "!")) or (s.endswith("?") and not s.startswith("#")):
            masked.append(line[: len(line) - len(s)] + "pass")
        else:
            masked.append(line)
    try:
        return ast.parse("\n".join(masked))
    except SyntaxError:
        return None

