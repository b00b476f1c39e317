"""The bibliography keys a page cites, for the conventions test and the browser test."""

import re

MARKUP = re.compile(
    r"^(?P<fence>`{3,}|~{3,}).*?^(?P=fence)"  # a fenced block
    r"|``.+?``"  # a double-backtick code span
    r"|\{cite(?::[a-z]+)?\}`(?P<keys>[^`]+)`"  # a citation
    r"|`[^`\n]+`",  # a code span
    re.MULTILINE | re.DOTALL,
)


def cited_keys(text):
    """The keys cited in MyST text; a role shown inside code (a fence, ``...``) is not a
    citation. Fences, code spans and roles are matched left to right in one pass."""
    keys = []
    for match in MARKUP.finditer(text):
        if match.group("keys"):
            keys += [key.strip() for key in match.group("keys").split(",")]
    return keys
