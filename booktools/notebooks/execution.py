"""Executing a notebook in a fresh kernel, cleaning what changes from run to run, and
``sync``: chapter -> notebook, executed (``make notebooks``)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from booktools import ROOT, BookError
from booktools.chapters import chapters
from booktools.notebooks.figures import caption_problems
from booktools.notebooks.pairing import (
    VOLATILE_CELL_METADATA,
    inputs,
    notebook_path,
    run_problems,
    to_notebook,
)

STARTUP = Path(__file__).with_name("startup")  # kernel startup files, copied as they are
CELL_TIMEOUT = 600  # seconds per cell, the same as execute.timeout in _config.yml
# A kernel that dies before answering its first message (seen on busy machines) is started
# again, up to this many times in all; a kernel whose cells fail is never retried.
KERNEL_STARTS = 3
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMES_FILE = "notebooks/execution_times.json"  # seconds per chapter and device (intro's table)


def _coalesce_streams(outputs):
    merged, streams = [], {}
    for out in outputs:
        if out.output_type == "stream":
            if out.name in streams:
                streams[out.name].text += out.text
                continue
            streams[out.name] = out
        merged.append(out)
    return merged


def clean(nb) -> nbformat.NotebookNode:
    """Strip what changes from run to run without the chapter changing."""
    kernelspec = nb.metadata.get("kernelspec")
    jupytext_meta = nb.metadata.get("jupytext")
    nb.metadata = nbformat.from_dict({"kernelspec": kernelspec} if kernelspec else {})
    if jupytext_meta:
        nb.metadata.jupytext = jupytext_meta
    # language_info (Python version), widgets (widget state) and any timing are dropped.
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = cell.execution_count
    return nb


def execute(nb, cwd: Path, timeout: int = CELL_TIMEOUT, name: str = "notebook",
            extra_env: dict[str, str] | None = None):
    """Run every cell in a fresh python3 kernel; a failing cell raises with its source.

    `extra_env` is added to the kernel's environment (the perturbation run's variants:
    booktools.notebooks.perturb); with D2L_SEED_SHIFT in it, startup/seed_shift.py shifts every seed.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    # A Makefile or CI may set MPLBACKEND=Agg for scripts; inside a kernel that would hide
    # every figure, so the kernel gets no MPLBACKEND and ipykernel picks its inline backend.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    # One torch thread: results do not depend on the machine's core count, and nbval
    # (which runs notebooks side by side, one thread each) reproduces them exactly.
    env.update(ONE_THREAD)
    env.update(extra_env or {})
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    with tempfile.TemporaryDirectory(prefix="book-kernel-") as tmp:
        # startup/figure_check.py runs at kernel start (IPython's startup folder) and reports
        # every figure drawn with an unlabelled axis into `report`.
        startup = Path(tmp) / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        shutil.copy(STARTUP / "figure_check.py", startup / "00-figure-check.py")
        if env.get("D2L_SEED_SHIFT"):
            shutil.copy(STARTUP / "seed_shift.py", startup / "01-seed-shift.py")
        report = Path(tmp) / "figures.jsonl"
        env.update(IPYTHONDIR=str(Path(tmp) / "ipython"), BOOK_FIGURE_REPORT=str(report))
        for attempt in range(1, KERNEL_STARTS + 1):
            try:
                client.execute(env=env)
                break
            except CellExecutionError as err:
                raise BookError(f"{name}: a cell failed:\n{err}") from None
            except RuntimeError as err:  # the kernel died before running any cell
                if "before replying" not in str(err) or attempt == KERNEL_STARTS:
                    raise
                print(f"{name}: kernel start {attempt} of {KERNEL_STARTS} failed ({err}); "
                      "starting another", file=sys.stderr, flush=True)
                time.sleep(2 * attempt)
        lines = report.read_text(encoding="utf8").splitlines() if report.exists() else []
    records = [json.loads(line) for line in lines]
    problems = [_figure_problem(nb, r) for r in records if r.get("problems")]
    if problems:
        raise BookError(f"{name}: figures without axis labels, or with a log axis labelled "
                        "$10^{-3}$ (label every axis with its quantity and unit, or switch a "
                        "diagram's axes off; write d2l.log_axis(ax, 'y') for a log axis):\n"
                        + "\n".join(dict.fromkeys(problems)))
    return nb


def _figure_problem(nb, record: dict) -> str:
    """One record of the figure report, with the cell it came from."""
    where = "a cell"
    for i, cell in enumerate(nb.cells):
        if cell.get("id") == record["cell_id"] or cell.source == record["source"]:
            first = (cell.source.splitlines() or [""])[0]
            where = f"cell {i + 1} (starting {first[:60]!r})"
            break
    return f"  {where}: " + "; ".join(record["problems"])


def _device() -> str:
    """'cuda' where the kernels will find a GPU, else 'cpu' (the chapters pick it the same way)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_seconds(root: Path = ROOT) -> dict[str, float]:
    """Each chapter's last recorded CPU execution time (TIMES_FILE), to run the longest first."""
    path = root / TIMES_FILE
    times = json.loads(path.read_text(encoding="utf8")) if path.exists() else {}
    return {name: by_device.get("cpu", {}).get("seconds", 0) for name, by_device in times.items()}


def without_outputs(stored) -> nbformat.NotebookNode:
    """A copy of a stored notebook with every code cell's outputs and count cleared."""
    nb = copy.deepcopy(stored)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def record_time(name: str, device: str, seconds: float, root: Path = ROOT) -> None:
    """Store how long chapter `name` took to execute on `device` in TIMES_FILE.

    The intro's table of running times is rendered from this file (_ext/execution_times.py).
    """
    import platform

    import torch

    path = root / TIMES_FILE
    times = json.loads(path.read_text(encoding="utf8")) if path.exists() else {}
    times.setdefault(name, {})[device] = {
        "seconds": round(seconds, 1),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}"
        + (f", {torch.cuda.get_device_name(0)}" if device == "cuda" else ""),
        "torch_threads": int(ONE_THREAD["OMP_NUM_THREADS"]),
        "torch": torch.__version__,
    }
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n", encoding="utf8")


def dumps(nb) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def sync(names: list[str], root: Path = ROOT, run: bool = True,
         prose_only: bool = False) -> list[Path]:
    """Regenerate notebooks/<name>.ipynb from book/<name>.md (all chapters if no names).

    prose_only: where only prose changed (markdown cells, and figure captions and alt text,
    the `mystnb` metadata of a code cell), take it in and keep every code cell's stored
    outputs, without executing (prose never changes what the code computes); a chapter whose
    code changed is a BookError naming the command that executes it.
    """
    all_chapters = chapters(root)
    if names:
        by_name = {md.stem: md for md in all_chapters}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise BookError(
                f"no chapter with code named {', '.join(unknown)} in _toc.yml "
                f"(chapters: {', '.join(by_name)})"
            )
        selected = [by_name[n] for n in names]
    else:
        selected = all_chapters
    (root / "notebooks").mkdir(exist_ok=True)
    # Two chapters at a time on two cores (one torch thread each, so the outputs are the
    # same as one at a time), the longest first: `make notebooks` stays within its budget.
    jobs = min(len(selected), int(os.environ.get("BOOK_JOBS", min(2, os.cpu_count() or 1))))
    seconds = cpu_seconds(root)
    order = sorted(selected, key=lambda md: -seconds.get(md.stem, 0))
    if prose_only or jobs <= 1 or not run:
        results = (_with_stored_outputs(md, root) if prose_only else _build_notebook(md, root, run)
                   for md in order)
        return [_write_notebook(md, *result, root) for md, result in zip(order, results)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs) as pool:
        futures = {md: pool.submit(_build_notebook, md, root, run) for md in order}
        return [_write_notebook(md, *futures[md].result(), root) for md in order]


def _build_notebook(md: Path, root: Path, run: bool) -> tuple[str, float | None]:
    """The notebook text of chapter `md`, and the seconds its execution took (None: not run)."""
    path = notebook_path(md, root)
    nb = to_notebook(md)
    start = time.perf_counter()
    if run:
        execute(nb, cwd=path.parent, name=str(md.relative_to(root)))
        _require_captions(nb, md, root)
    seconds = time.perf_counter() - start if run else None
    return dumps(clean(nb)), seconds


def _with_stored_outputs(md: Path, root: Path) -> tuple[str, None]:
    """The notebook of chapter `md` with its new markdown cells and the stored notebook's code
    cells, outputs included; a BookError if any code cell differs in its source or in metadata
    other than MyST-NB's rendering options (`mystnb`: captions, alt text)."""
    path = notebook_path(md, root)
    fix = f"run `make notebooks CHAPTERS={md.stem}`, which executes it"
    if not path.exists():
        raise BookError(f"{md.relative_to(root)}: no stored notebook to keep outputs from; {fix}")
    stored = nbformat.read(path, as_version=4)
    nb = to_notebook(md)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    stored_code = [c for c in stored.cells if c.cell_type == "code"]

    def code(cells):  # what execution depends on: source, and metadata but `mystnb`
        return [(kind, source, {k: v for k, v in meta.items() if k != "mystnb"})
                for kind, source, meta in inputs(nbformat.v4.new_notebook(cells=cells))]

    if code(code_cells) != code(stored_code):
        raise BookError(f"{md.relative_to(root)}: its code cells changed, not only its prose; "
                        f"{fix}")
    problems = run_problems(stored, path.relative_to(root), fix)
    if problems:
        raise BookError(problems[0])
    for cell, old in zip(code_cells, stored_code):
        cell.outputs, cell.execution_count = old.outputs, old.execution_count
    _require_captions(nb, md, root)
    return dumps(clean(nb)), None


def _require_captions(nb, md: Path, root: Path) -> None:
    """A BookError listing the figures of an executed notebook without caption or alt text."""
    problems = caption_problems(nb, md, root)
    if problems:
        raise BookError("figures without a caption or alt text (the notebook is not "
                        "written):\n  " + "\n  ".join(problems))


def _write_notebook(md: Path, text: str, seconds: float | None, root: Path) -> Path:
    """Write the notebook of chapter `md` if its text changed, and record the run's time."""
    path = notebook_path(md, root)
    if seconds is not None:
        record_time(md.stem, _device(), seconds, root)
    old = path.read_text() if path.exists() else None
    if old != text:
        path.write_text(text)
    state = "unchanged" if old == text else ("updated" if old else "created")
    how = f"{seconds:.1f} s" if seconds is not None else "prose only, stored outputs kept"
    print(f"{path.relative_to(root)}: {state} ({how})", flush=True)
    return path
