"""Pair the chapters (book/<name>.md) with their notebooks (notebooks/<name>.ipynb).

The chapters are the sources. A notebook is a generated copy of its chapter that also
carries the outputs of a reference CPU run, so that readers (and Colab) see results
without running anything, and so that nbval can compare a fresh run against them.

    python tools/notebooks.py list              the chapters that have a notebook
    python tools/notebooks.py sync [NAME ...]   regenerate and execute notebooks (`make notebooks`)
    python tools/notebooks.py check             notebooks in sync with chapters, Colab cells right
    python tools/notebooks.py stamp             rewrite every chapter's Colab setup cell
    python tools/notebooks.py run --out DIR     execute every notebook, report time and device
                                                (`make test-gpu`)

Which pages are chapters: every page listed in _toc.yml that has at least one
``{code-cell}``. Pages of prose only (no code) get no notebook and no Colab cell.

Why not ``jupytext --sync``: it decides the direction by file timestamps, so a fresh clone
or a touched notebook can silently overwrite an edited chapter. Here the direction is
fixed: chapter -> notebook, always; the check compares inputs only (cell types, sources,
cell metadata) and never looks at timestamps.

Execution: nbclient with the kernel ``python3`` of the Python running this script (the
project's .venv), working directory ``notebooks/`` (the notebook's own folder, as in nbval,
Colab's /content and a reader's Jupyter). D2L_DATA_DIR is taken from the environment (the
Makefile exports it when the shared data folder is there). Volatile metadata (timings,
kernel and Python versions, widget state) is stripped, cell ids are derived from the cell
content, and stream outputs are merged, so that re-running on the same machine gives no
diff.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 600  # seconds per cell, the same as execute.timeout in _config.yml
# A kernel that dies before answering its first message (seen on busy machines) is started
# again, up to this many times in all; a kernel whose cells fail is never retried.
KERNEL_STARTS = 3
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMES_FILE = "notebooks/execution_times.json"  # seconds per chapter and device (intro's table)

# The Colab setup cell: the first code cell of every chapter. {url} and {ref} come from
# repository.url and repository.branch in _config.yml (the one place that names them).
COLAB_TAGS = ["remove-cell"]
COLAB_TEMPLATE = """\
# Colab only: install the book's library, d2l_lib, at this page's version.
# Anywhere else this cell does nothing (the local setup installs d2l_lib).
import sys

if "google.colab" in sys.modules:
    source = "git+{url}@{ref}"
    %pip install -q --no-deps "d2l_lib @ {{source}}\""""

# Cell metadata that says nothing about a cell's input: left out of notebooks and of the
# pairing comparison.
VOLATILE_CELL_METADATA = {"execution", "ExecuteTime", "collapsed", "scrolled", "jupyter"}


class CheckError(Exception):
    """A problem that `check` reports; the message names the file and the fix."""


# ---------------------------------------------------------------------------------------
# Which pages are chapters


def toc_pages(root: Path = ROOT) -> list[str]:
    """The pages of _toc.yml in reading order, as paths without suffix ("book/intro")."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
            for part in entry.get("parts", []):
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return pages


def read_chapter_text(md: Path) -> str:
    """The chapter's text; bytes that are not UTF-8, or a byte-order mark (which hides the
    front matter from jupytext), are a CheckError naming the file and the byte offset."""
    data, name = md.read_bytes(), f"{md.parent.name}/{md.name}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CheckError(
            f"{name}: not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset {e.start} "
            f"(line {line}); save the file as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        raise CheckError(f"{name}: starts with a byte-order mark; save it as UTF-8 without BOM")
    return text


def has_code(md: Path) -> bool:
    """Whether the page has a code cell (as jupytext parses it: an example of a code cell
    shown inside a ````markdown fence does not count)."""
    text = read_chapter_text(md)
    if "{code-cell}" not in text:
        return False
    return any(cell.cell_type == "code" for cell in jupytext.reads(text, fmt="md:myst").cells)


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapter sources that are paired with a notebook, in reading order."""
    found = []
    for page in toc_pages(root):
        md = root / f"{page}.md"
        if md.exists() and has_code(md):
            found.append(md)
    return found


def notebook_path(md: Path, root: Path = ROOT) -> Path:
    return root / "notebooks" / f"{md.stem}.ipynb"


# ---------------------------------------------------------------------------------------
# Chapter -> notebook (inputs)


def colab_source(root: Path = ROOT) -> str:
    """The exact source of the Colab setup cell, built from _config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config.get("repository") or {}
    url, ref = repo.get("url"), repo.get("branch")
    if not url or not ref:
        raise CheckError("_config.yml: repository.url and repository.branch must both be set")
    return COLAB_TEMPLATE.format(url=url.rstrip("/"), ref=ref)


def _cell_id(cell, seen: dict[str, int]) -> str:
    digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
    n = seen.get(digest, 0)
    seen[digest] = n + 1
    return digest if n == 0 else f"{digest}-{n}"


def to_notebook(md: Path) -> nbformat.NotebookNode:
    """The chapter as a notebook without outputs, with deterministic ids and metadata."""
    nb = jupytext.read(md, fmt="md:myst")
    seen: dict[str, int] = {}
    for cell in nb.cells:
        cell.id = _cell_id(cell, seen)
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    # Keep the kernelspec and the jupytext pairing (so that a reader's Jupyter with
    # jupytext knows the chapter this notebook comes from); drop the rest.
    meta = {"kernelspec": nb.metadata.get("kernelspec", {})}
    formats = nb.metadata.get("jupytext", {}).get("formats")
    if formats:
        meta["jupytext"] = {"formats": formats}
    nb.metadata = nbformat.from_dict(meta)
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def inputs(nb) -> list[tuple]:
    """What the pairing check compares: per cell its type, source and metadata."""
    out = []
    for cell in nb.cells:
        meta = {k: v for k, v in cell.get("metadata", {}).items() if k not in VOLATILE_CELL_METADATA}
        out.append((cell.cell_type, cell.source, meta))
    return out


# ---------------------------------------------------------------------------------------
# Execution and cleaning


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
    tools/perturb.py); with D2L_SEED_SHIFT in it, tools/seed_shift.py shifts every seed.
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
        # tools/figure_check.py runs at kernel start (IPython's startup folder) and reports
        # every figure drawn with an unlabelled axis into `report`.
        startup = Path(tmp) / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        shutil.copy(Path(__file__).with_name("figure_check.py"), startup / "00-figure-check.py")
        if env.get("D2L_SEED_SHIFT"):
            shutil.copy(Path(__file__).with_name("seed_shift.py"), startup / "01-seed-shift.py")
        report = Path(tmp) / "figures.jsonl"
        env.update(IPYTHONDIR=str(Path(tmp) / "ipython"), BOOK_FIGURE_REPORT=str(report))
        for attempt in range(1, KERNEL_STARTS + 1):
            try:
                client.execute(env=env)
                break
            except CellExecutionError as err:
                raise CheckError(f"{name}: a cell failed:\n{err}") from None
            except RuntimeError as err:  # the kernel died before running any cell
                if "before replying" not in str(err) or attempt == KERNEL_STARTS:
                    raise
                print(f"{name}: kernel start {attempt} of {KERNEL_STARTS} failed ({err}); "
                      "starting another", file=sys.stderr, flush=True)
                time.sleep(2 * attempt)
        problems = report.read_text(encoding="utf8").splitlines() if report.exists() else []
    if problems:
        raise CheckError(f"{name}: figures without axis labels (label every axis with its "
                         "quantity and unit, or switch a diagram's axes off):\n"
                         + "\n".join(_figure_problem(nb, line) for line in problems))
    return nb


def _figure_problem(nb, line: str) -> str:
    """One line of the figure report, with the cell it came from."""
    record = json.loads(line)
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


def sync(names: list[str], root: Path = ROOT, run: bool = True) -> list[Path]:
    """Regenerate notebooks/<name>.ipynb from book/<name>.md (all chapters if no names)."""
    all_chapters = chapters(root)
    if names:
        by_name = {md.stem: md for md in all_chapters}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise CheckError(
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
    times = json.loads((root / TIMES_FILE).read_text()) if (root / TIMES_FILE).exists() else {}
    order = sorted(selected, key=lambda md: -times.get(md.stem, {}).get("cpu", {}).get("seconds", 0))
    written = []
    if jobs <= 1 or not run:
        results = (_build_notebook(md, root, run) for md in order)
        return [_write_notebook(md, *result, root) for md, result in zip(order, results)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs) as pool:
        futures = {md: pool.submit(_build_notebook, md, root, run) for md in order}
        for md in order:
            written.append(_write_notebook(md, *futures[md].result(), root))
    return written


def _build_notebook(md: Path, root: Path, run: bool) -> tuple[str, float | None]:
    """The notebook text of chapter `md`, and the seconds its execution took (None: not run)."""
    path = notebook_path(md, root)
    nb = to_notebook(md)
    start = time.perf_counter()
    if run:
        execute(nb, cwd=path.parent, name=str(md.relative_to(root)))
    seconds = time.perf_counter() - start if run else None
    return dumps(clean(nb)), seconds


def _write_notebook(md: Path, text: str, seconds: float | None, root: Path) -> Path:
    path = notebook_path(md, root)
    if seconds is not None:
        record_time(md.stem, _device(), seconds, root)
    old = path.read_text() if path.exists() else None
    if old != text:
        path.write_text(text)
    state = "unchanged" if old == text else ("updated" if old else "created")
    print(f"{path.relative_to(root)}: {state} ({seconds or 0:.1f} s)", flush=True)
    return path


# ---------------------------------------------------------------------------------------
# Checks


def _first_code_cell(nb):
    return next((cell for cell in nb.cells if cell.cell_type == "code"), None)


def check_colab(md: Path, root: Path = ROOT) -> list[str]:
    """The chapter's first code cell must be the Colab setup cell, exactly."""
    rel = md.relative_to(root)
    cell = _first_code_cell(jupytext.read(md, fmt="md:myst"))
    want = colab_source(root)
    fix = "run `python tools/notebooks.py stamp` (it rewrites the cell from _config.yml)"
    if cell is None or "google.colab" not in cell.source:
        return [f"{rel}: the first code cell is not the Colab setup cell; {fix}"]
    problems = []
    if cell.source != want:
        m = re.search(r"git\+(\S+?)@([^\"\s]+)", cell.source)
        where = f" (it installs from {m.group(1)} at {m.group(2)})" if m else ""
        problems.append(
            f"{rel}: the Colab setup cell differs from the one built from _config.yml"
            f"{where}; {fix}"
        )
    if cell.metadata.get("tags") != COLAB_TAGS:
        problems.append(f"{rel}: the Colab setup cell must carry exactly the tags {COLAB_TAGS}; {fix}")
    return problems


def _first_difference(a: list[tuple], b: list[tuple], md_text: str = "") -> str:
    """Where the chapter's cells (a) and the notebook's (b) first differ, for humans."""
    from jupytext.myst import myst_to_notebook

    # where each cell starts in the file (jupytext's source map: the line after a code
    # cell's fence, or a markdown cell's first line, counted from 0)
    starts = myst_to_notebook(md_text, add_source_map=True).metadata.get("source_map", [])
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = "type" if x[0] != y[0] else "source" if x[1] != y[1] else "metadata"
            first_line = (x[1].splitlines() or [""])[0]
            line = ""
            if first_line.strip() and i < len(starts):
                # the cell's first source line, searched from the cell's own start
                lines = md_text.splitlines()
                for n in range(starts[i], len(lines)):
                    if lines[n] == first_line:
                        line = f", line {n + 1} of the chapter"
                        break
            return (
                f"cell {i + 1} ({x[0]}, starting {first_line[:60]!r}{line}) differs in its {what}"
            )
    return f"the chapter has {len(a)} cells, the notebook {len(b)}"


def chapter_problems(md: Path, root: Path = ROOT) -> list[str]:
    """Why notebooks/<name>.ipynb cannot stand for book/<name>.md (empty: it can).

    The notebook must exist, hold the chapter's cells (inputs only), and have been executed
    without an error output. Used by `check` and by the site build (_ext/stored_outputs.py).
    """
    path = notebook_path(md, root)
    rel, rel_md = path.relative_to(root), md.relative_to(root)
    fix = f"run `make notebooks CHAPTERS={md.stem}`"
    if not path.exists():
        return [f"{rel_md} has no notebook {rel}; {fix}"]
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001  (report any unreadable file)
        return [f"{rel}: not a readable notebook ({err}); {fix}"]
    chapter = to_notebook(md)
    want = inputs(chapter)
    have = inputs(nb)
    if want != have:
        where = _first_difference(want, have, md.read_text())
        return [f"{rel} is stale: {where} from {rel_md}; {fix}"]
    problems = []
    if nb.metadata.get("kernelspec") != chapter.metadata.get("kernelspec"):
        problems.append(f"{rel}: its kernelspec differs from {rel_md}; {fix}")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            problems.append(f"{rel}: cell {i + 1} was never executed; {fix}")
            break
        if any(out.output_type == "error" for out in cell.outputs):
            problems.append(f"{rel}: cell {i + 1} stores an error output; {fix}")
            break
    return problems


def check_pairing(root: Path = ROOT) -> list[str]:
    problems = []
    mds = chapters(root)
    names = {md.stem for md in mds}
    for md in mds:
        problems += chapter_problems(md, root)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        if path.stem not in names:
            problems.append(
                f"{path.relative_to(root)} has no chapter: no page book/{path.stem}.md with "
                "code in _toc.yml; delete the notebook or add the chapter"
            )
    return problems


def check(root: Path = ROOT) -> list[str]:
    problems = []
    for md in chapters(root):
        problems += check_colab(md, root)
    problems += check_pairing(root)
    return problems


# ---------------------------------------------------------------------------------------
# Stamping the Colab cell


_CODE_CELL = re.compile(r"^```{code-cell}[^\n]*\n.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def stamp_text(text: str, source: str) -> str:
    """The chapter text with its Colab setup cell replaced (or inserted) from source."""
    block = "```{code-cell} ipython3\n:tags: [" + ", ".join(COLAB_TAGS) + "]\n" + source + "\n```"
    match = _CODE_CELL.search(text)
    if match is None:
        return text
    if "google.colab" in match.group(0):
        return text[: match.start()] + block + text[match.end():]
    return text[: match.start()] + block + "\n\n" + text[match.start():]


def stamp(root: Path = ROOT) -> list[Path]:
    source = colab_source(root)
    changed = []
    for md in chapters(root):
        text = md.read_text()
        new = stamp_text(text, source)
        if new != text:
            md.write_text(new)
            changed.append(md)
            print(f"{md.relative_to(root)}: Colab setup cell stamped")
    return changed


# ---------------------------------------------------------------------------------------
# Executing the stored notebooks on this machine's device (`make test-gpu`)

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
            texts.append(sanitize(out.get("data", {}).get("text/plain", "")))
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
        nb = copy.deepcopy(stored)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.cells.append(nbformat.v4.new_code_cell(DEVICE_PROBE))
        start = time.perf_counter()
        info, status = {"device": "?", "torch": "?"}, "ok"
        try:
            execute(nb, cwd=path.parent, name=str(path.relative_to(root)))
            probe = nb.cells[-1]
            info = json.loads("".join(o.get("text", "") for o in probe.outputs))
        except CheckError as err:
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


# ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the chapters that have a notebook")
    p_sync = sub.add_parser("sync", help="regenerate and execute notebooks")
    p_sync.add_argument("names", nargs="*", help="chapter names (file stems); default all")
    p_sync.add_argument("--no-execute", action="store_true", help="inputs only (not for commits)")
    sub.add_parser("check", help="pairing and Colab-cell checks")
    sub.add_parser("stamp", help="rewrite the Colab setup cell of every chapter")
    p_run = sub.add_parser("run", help="execute the stored notebooks, report time and device")
    p_run.add_argument("names", nargs="*", help="chapter names (file stems); default all")
    p_run.add_argument("--out", type=Path, default=ROOT / "_build" / "executed")
    p_run.add_argument("--sanitize", type=Path, default=ROOT / "tests" / "nbval_sanitize.cfg")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for md in chapters():
                print(md.stem)
        elif args.command == "sync":
            names = [n for arg in args.names for n in arg.replace(",", " ").split()]
            sync(names, run=not args.no_execute)
        elif args.command == "stamp":
            stamp()
        elif args.command == "run":
            return run_all(args.out, args.names, args.sanitize)
        elif args.command == "check":
            problems = check()
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if problems:
                return 1
            print(f"notebooks: {len(chapters())} chapters paired, Colab setup cells match _config.yml")
    except CheckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
