"""The book's tools, in the order the book flows through them.

- ``booktools.toc``: the table of contents, ``_toc.yml`` (the one place that parses it).
- ``booktools.chapters``: reading a chapter, ``book/<name>.md``, and which pages have code.
- ``booktools.library``: ``make lib``, the chapters' ``#@save`` code into ``d2l_lib/core.py``.
- ``booktools.notebooks``: ``make notebooks``, each chapter into ``notebooks/<name>.ipynb``,
  executed; the pairing check, the Colab cell, ``make test-gpu`` and ``make perturb``.
- The site (``make book``) is built by the Sphinx extensions in ``_ext/``, which use the two
  above.

Every problem found in the book's sources is a ``BookError`` whose ``args`` are messages
that name the file and say how to fix it; the command lines print them and exit with 1.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BookError(Exception):
    """Problems found in the book's sources; ``args`` holds one message per problem."""


def print_errors(error: BookError, file) -> None:
    """Each message of ``error`` on its own ``error:`` line (a message may go on with a fix)."""
    for message in error.args:
        print(f"error: {message}", file=file)


def decode_utf8(data: bytes, rel: str, bom_ok: bool = False) -> str:
    """``data`` as text, newlines normalised as ``Path.read_text`` does; clear errors.

    A chapter may not start with a byte-order mark: jupytext would then not see its
    front matter, and the paired notebook would lose its kernel.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise BookError(
            f"{rel}: not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset {e.start} "
            f"(line {line}, byte {col} of the line)\n"
            "    fix: save the file as UTF-8 (replace or re-type the character there)"
        ) from None
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise BookError(
            f"{rel}: a NUL byte at byte offset {nul} (line {line}), which no text file has\n"
            "    fix: delete it"
        )
    if text.startswith("\ufeff"):
        if not bom_ok:
            raise BookError(
                f"{rel}: starts with a UTF-8 byte-order mark (bytes ef bb bf), which hides the "
                "front matter from jupytext\n    fix: save the file as UTF-8 without BOM"
            )
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")
