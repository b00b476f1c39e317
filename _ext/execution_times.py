"""Sphinx extension: the ``{execution-times}`` directive, a table of how long each chapter
takes to run, read from ``notebooks/execution_times.json``.

``make notebooks`` writes that file (``booktools.notebooks.execution.record_time``): the wall time of
executing each chapter from top to bottom in a fresh kernel, per device. The CPU column comes
from the run whose outputs the site shows; the GPU column from ``make test-gpu`` on a machine
with one. A chapter or device never measured says so instead of showing a number.
"""

import json
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from booktools.chapters import chapters
from booktools.notebooks.execution import TIMES_FILE

ROOT = Path(__file__).resolve().parent.parent
TIMES = ROOT / TIMES_FILE


def _cell(entry):
    if not entry:
        return "not measured yet"
    seconds = entry["seconds"]
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _machine(times, device):
    seen = sorted({entry[device]["machine"] for entry in times.values() if device in entry})
    return "; ".join(seen) if seen else "none yet"


class ExecutionTimes(SphinxDirective):
    """A table: chapter | CPU time | GPU time, one row per chapter with code, in TOC order."""

    def run(self):
        times = json.loads(TIMES.read_text(encoding="utf8")) if TIMES.exists() else {}
        lines = ["| chapter | CPU, one thread | GPU |", "| --- | --- | --- |"]
        for md in chapters(ROOT):
            entry = times.get(md.stem, {})
            lines.append(f"| {{ref}}`chapter-{md.stem}` | {_cell(entry.get('cpu'))} "
                         f"| {_cell(entry.get('cuda'))} |")
        lines += ["", f"CPU: {_machine(times, 'cpu')}. GPU: {_machine(times, 'cuda')}."]
        self.env.note_dependency(str(TIMES))
        container = nodes.container(classes=["execution-times"])
        self.state.nested_parse(StringList(lines, source=str(TIMES)), self.content_offset,
                                container)
        return [container]


def setup(app):
    app.add_directive("execution-times", ExecutionTimes)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
