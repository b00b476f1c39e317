"""The table of contents, ``_toc.yml``: the reading order of the book's pages.

This module is the only place that parses ``_toc.yml``; ``make lib``, ``make notebooks``,
the site build and the tests all ask it. ``_toc.yml`` must have Jupyter Book's ``jb-book``
shape (``format: jb-book``, ``root``: a page, ``chapters`` or ``parts``: non-empty lists of
mappings, each with one ``file`` (a string naming an existing ``.md`` page inside the book)
or ``url``; ``sections`` likewise), no key twice in a mapping, no page twice. Every problem
is a BookError naming the key it is under (list positions counted from 0) and the fix.

    python -m booktools.toc [--root DIR]    check _toc.yml (``make book`` runs it first)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from booktools import ROOT, BookError, decode_utf8, print_errors

TOC = "_toc.yml"
# The keys Jupyter Book's jb-book format knows (sphinx-external-toc), by level.
TOC_TOP_KEYS = ("format", "root", "title", "options", "defaults", "meta", "parts", "chapters")
TOC_OPTION_KEYS = (
    "caption",
    "hidden",
    "maxdepth",
    "numbered",
    "reversed",
    "titlesonly",
    "style",
    "restart_numbering",
)
TOC_ENTRY_KEYS = ("file", "url", "glob", "title", "options", "sections", "subtrees")


def _kind(value: object) -> str:
    """How YAML calls a value's type, for messages."""
    if value is None:
        return "empty (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"the {type(value).__name__} {value!r}"


def _load_toc(root: Path) -> object:
    """The parsed _toc.yml; a key given twice in one mapping is an error (YAML keeps the
    last one silently, which would drop chapters)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # construct_mapping reports it
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                raise BookError(
                    f"{TOC}:{line}: key {key!r} appears twice in one mapping (also on line "
                    f"{seen[key]}); YAML would keep only the last one\n"
                    "    fix: merge the two into one key"
                )
            seen[key] = line
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    path = root / TOC
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BookError(f"{TOC}: cannot read the table of contents: {e.strerror}") from None
    text = decode_utf8(data, TOC, bom_ok=True)
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{TOC}:{mark.line + 1}" if mark else TOC
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BookError(
            f"{where}: not valid YAML ({what})\n"
            "    fix: correct the syntax (indent with spaces, `- file: book/name` per chapter)"
        ) from None


class _TocChecker:
    """Walks a parsed _toc.yml, collecting its pages and every problem with its key."""

    def __init__(self, root: Path):
        self.root = root
        self.errors: list[str] = []
        self.files: list[tuple[str, str]] = []  # (key, path without suffix)

    def err(self, key: str, what: str, todo: str) -> None:
        self.errors.append(f"{TOC}, key {key}: {what}\n    fix: {todo}")

    def add_file(self, key: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            self.err(key, f"is {_kind(value)}, not a file name",
                     "give the page's path, e.g. book/name")
            return
        stem = value.strip()
        suffix = Path(stem).suffix
        if suffix == ".md":
            stem = stem[:-3]
        elif suffix:
            self.err(key, f"{value!r} is not a MyST markdown page", "list book/name.md pages only")
            return
        parts = Path(stem).parts
        if Path(stem).is_absolute() or ".." in parts:
            self.err(key, f"{value!r} is not a path inside the book", "use a path like book/name")
            return
        stem = Path(stem).as_posix()
        if not (self.root / f"{stem}.md").is_file():
            self.err(key, f"{stem}.md does not exist", "create the page or fix the path")
        self.files.append((key, stem))

    def unknown(self, key: str, entry: dict, allowed: tuple[str, ...]) -> None:
        for k in entry:
            if k not in allowed:
                self.err(
                    f"{key}.{k}" if key else str(k),
                    "is not a key of a Jupyter Book table of contents here",
                    f"use one of: {', '.join(allowed)}",
                )

    def a_list(self, key: str, value: object, what: str) -> list:
        if not isinstance(value, list) or not value:
            self.err(key, f"is {_kind(value)}, not a non-empty list of {what}", f"list the {what}")
            return []
        return value

    def entries(self, key: str, value: object) -> None:
        for i, entry in enumerate(self.a_list(key, value, "entries (`- file: book/name`)")):
            here = f"{key}[{i}]"
            if not isinstance(entry, dict):
                self.err(here, f"is {_kind(entry)}, not a mapping", "write `- file: book/name`")
                continue
            self.unknown(here, entry, TOC_ENTRY_KEYS)
            links = [k for k in ("file", "url", "glob") if k in entry]
            if len(links) != 1:
                self.err(here, "needs exactly one of file, url, glob", "write `- file: book/name`")
                continue
            if links == ["glob"]:
                self.err(f"{here}.glob", "glob entries are not supported", "list each file")
                continue
            if links == ["url"]:
                if not isinstance(entry["url"], str):
                    self.err(f"{here}.url", f"is {_kind(entry['url'])}, not a URL", "give a URL")
                continue
            self.add_file(f"{here}.file", entry["file"])
            if "sections" in entry:
                self.entries(f"{here}.sections", entry["sections"])
            if "subtrees" in entry:
                self.subtrees(f"{here}.subtrees", entry["subtrees"])

    def subtrees(self, key: str, value: object) -> None:
        for j, sub in enumerate(self.a_list(key, value, "mappings")):
            where = f"{key}[{j}]"
            if not isinstance(sub, dict):
                self.err(where, f"is {_kind(sub)}, not a mapping", "write `- sections: [...]`")
                continue
            self.unknown(where, sub, ("sections", *TOC_OPTION_KEYS))
            self.entries(f"{where}.sections", sub.get("sections"))

    def top(self, toc: dict) -> None:
        self.unknown("", toc, TOC_TOP_KEYS)
        if toc.get("format") != "jb-book":
            self.err("format", f"is {_kind(toc.get('format'))}, not 'jb-book'",
                     "write `format: jb-book`")
        if "root" not in toc:
            self.err("root", "is missing", "name the first page: `root: book/intro`")
        else:
            self.add_file("root", toc["root"])
        if "chapters" in toc and "parts" in toc:
            self.err("parts", "a table of contents has either chapters or parts",
                     "keep one of them")
        elif "chapters" in toc:
            self.entries("chapters", toc["chapters"])
        elif "parts" in toc:
            for i, part in enumerate(self.a_list("parts", toc["parts"], "parts")):
                if not isinstance(part, dict):
                    self.err(f"parts[{i}]", f"is {_kind(part)}, not a mapping",
                             "write `- chapters: [...]`")
                    continue
                self.unknown(f"parts[{i}]", part, ("chapters", *TOC_OPTION_KEYS))
                self.entries(f"parts[{i}].chapters", part.get("chapters"))

    def no_page_twice(self) -> None:
        first: dict[str, str] = {}
        for key, stem in self.files:
            if stem in first:
                self.err(key, f"{stem}.md is listed twice (also at {first[stem]})",
                         "list each page once")
            else:
                first[stem] = key


def toc_files(root: Path = ROOT) -> list[str]:
    """Chapter paths (relative, with .md) in table-of-contents order.

    _toc.yml is checked against the shape of Jupyter Book's ``jb-book`` format; every
    problem is reported with the key it is under (list positions counted from 0).
    """
    toc = _load_toc(root)
    if not isinstance(toc, dict):
        raise BookError(
            f"{TOC}: the table of contents is {_kind(toc)}, not a mapping\n"
            "    fix: write `format: jb-book`, `root: book/intro` and a `chapters:` list of "
            "`- file: book/name` entries"
        )
    checker = _TocChecker(root)
    checker.top(toc)
    checker.no_page_twice()
    if checker.errors:
        raise BookError(*checker.errors)
    return [f"{stem}.md" for _key, stem in checker.files]


def toc_pages(root: Path = ROOT) -> list[str]:
    """The pages of _toc.yml in reading order, as paths without suffix ("book/intro")."""
    return [rel.removesuffix(".md") for rel in toc_files(root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check _toc.yml, the book's reading order.")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    try:
        pages = toc_files(args.root.resolve())
    except BookError as e:
        print_errors(e, sys.stderr)
        return 1
    print(f"{TOC}: {len(pages)} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
