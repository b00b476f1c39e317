"""Executing the stored notebooks afresh on this machine's device, a GPU where there is
one (``make test-gpu``): the bounding asserts must hold, outputs are compared laxly."""

from __future__ import annotations

import copy
import json
import re
import sys
import time
from pathlib import Path

import nbformat

from booktools import ROOT, BookError
from booktools.chapters import chapters
from booktools.notebooks.execution import (
    _coalesce_streams,
    clean,
    execute,
    record_time,
    without_outputs,
)
from booktools.notebooks.pairing import notebook_path

# Appended to each notebook for the run and removed afterwards: which device torch sees.
DEVICE_PROBE = """\
import json as _json, torch as _torch
print(_json.dumps({"device": _torch.cuda.get_device_name(0) if _torch.cuda.is_available()
                   else "cpu", "torch": _torch.__version__}))"""


def sanitizer(cfg: Path):
    """The regex replacements of an nbval sanitize file (parsed as nbval does), as one function."""
    from nbval.plugin import get_sanitize_patterns

    pairs = [(re.compile(r), rep) for r, rep in get_sanitize_patterns(cfg.read_text())]

    def sanitize(text: str) -> str:
        for regex, replace in pairs:
            text = regex.sub(replace, text)
        return text

    return sanitize


def _texts(outputs, sanitize) -> list[str]:
    texts = []
    for out in _coalesce_streams(copy.deepcopy(outputs)):
        if out.output_type == "stream":
            texts.append(sanitize(out.text))
        elif out.output_type in ("execute_result", "display_data"):
            # every plain-text form, as nbval compares them: the glued values of the prose
            # live under application/papermill.record/text/plain
            data = out.get("data", {})
            texts += [sanitize(data[key]) for key in sorted(data) if key.endswith("text/plain")]
    return texts


def _checks_output(cell) -> bool:
    """nbval-lax semantics: only cells marked to check their output are compared."""
    tags = cell.metadata.get("tags", [])
    return "nbval-check-output" in tags or any(
        line.strip().lstrip("#").strip() == "NBVAL_CHECK_OUTPUT" for line in cell.source.splitlines()
    )


def run_all(out: Path, names: list[str], sanitize_cfg: Path, root: Path = ROOT) -> int:
    """Execute the stored notebooks afresh, save them under out, print time and device.

    A notebook fails when a cell raises (the bounding asserts after hardware-dependent
    cells included) or when a cell marked nbval-check-output prints something else than
    the stored reference. Everything else is compared laxly, i.e. not at all: numbers on
    a GPU differ from the CPU reference run.
    """
    sanitize = sanitizer(sanitize_cfg)
    out.mkdir(parents=True, exist_ok=True)
    selected = [md for md in chapters(root) if not names or md.stem in names]
    failures, rows = [], []
    for md in selected:
        path = notebook_path(md, root)
        stored = nbformat.read(path, as_version=4)
        nb = without_outputs(stored)
        nb.cells.append(nbformat.v4.new_code_cell(DEVICE_PROBE))
        start = time.perf_counter()
        info, status = {"device": "?", "torch": "?"}, "ok"
        try:
            execute(nb, cwd=path.parent, name=str(path.relative_to(root)))
            probe = nb.cells[-1]
            info = json.loads("".join(o.get("text", "") for o in probe.outputs))
        except BookError as err:
            failures.append(str(err))
            status = "FAILED"
        elapsed = time.perf_counter() - start
        nb.cells.pop()
        for i, (ref, cell) in enumerate(zip(stored.cells, nb.cells)):
            if (
                status == "ok"
                and cell.cell_type == "code"
                and _checks_output(ref)
                and _texts(ref.outputs, sanitize) != _texts(cell.outputs, sanitize)
            ):
                failures.append(f"{path.relative_to(root)}: cell {i + 1} output differs")
                status = "FAILED"
        if status == "ok" and info["device"] != "cpu":  # CPU times come from `make notebooks`
            record_time(md.stem, "cuda", elapsed, root)
        nbformat.write(clean(nb), out / path.name)
        rows.append((path.name, elapsed, info["device"], info["torch"], status))
        print(f"{path.name:32s} {elapsed:8.1f} s  {info['device']}  torch {info['torch']}  {status}",
              flush=True)
    print(f"\nexecuted notebooks saved in {out}")
    print(f"{'notebook':32s} {'seconds':>10s}  device / torch / result")
    for name, elapsed, device, torch_version, status in rows:
        print(f"{name:32s} {elapsed:10.1f}  {device} / {torch_version} / {status}")
    print(f"{'total':32s} {sum(r[1] for r in rows):10.1f}")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0
