"""The perturbation run: execute every chapter under numeric and seed variants (`make perturb`).

A reader's processor, BLAS path or seeds differ from the machine that executed the stored
notebooks. This tool executes each chapter again under variants that one machine can
produce, and reports, per chapter and variant:

- every cell that raises (a bounding assert that does not hold elsewhere is a claim that was
  luck), with the first line of the cell and the error;
- how far each glued number (the numbers in the prose) moves from the stored one;
- every cell compared exactly by nbval (no `nbval-ignore-output` tag) whose text output
  differs from the stored one: nbval would fail on that cell off the reference machine.

    python -m booktools.notebooks.perturb                  all chapters, all variants
    python -m booktools.notebooks.perturb --variants seed+1 rnn_scratch
    python -m booktools.notebooks.perturb --report bench/results/perturbation   (.md, .json)

Variants (environment of the kernel; one torch thread as in `make notebooks`):
    aten-default     ATEN_CPU_CAPABILITY=default: ATen's scalar kernels, no AVX
    aten-avx2        ATEN_CPU_CAPABILITY=avx2 (skipped where AVX2 is the native level)
    mkl-compatible   MKL_CBWR=COMPATIBLE: MKL's conditional-reproducibility path
    default+compatible  both of the above (another processor's numerics, as in `make nbval`)
    seed+1, seed+2   every seed s becomes s + k (startup/seed_shift.py, D2L_SEED_SHIFT=k)

Exit status 1 when any cell raises under any variant.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from booktools import ROOT, BookError
from booktools.chapters import chapters as book_chapters
from booktools.notebooks.device_run import _texts, sanitizer
from booktools.notebooks.execution import cpu_seconds, execute, without_outputs

VARIANTS = {
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "default+compatible": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    "seed+1": {"D2L_SEED_SHIFT": "1"},
    "seed+2": {"D2L_SEED_SHIFT": "2"},
}
NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)


def native_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability().lower()


def _machine() -> str:
    import os
    import platform

    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else ""
    return f"{os.cpu_count()} cores, {platform.machine()}" + (f" ({model})" if model else "")


def glued(nb) -> dict[str, str]:
    """The values a notebook glues for its prose, by name (their text form)."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            book = out.get("metadata", {}).get("scrapbook")
            if out.get("output_type") == "display_data" and book:
                text = out["data"].get(book["mime_prefix"] + "text/plain", "")
                values[book["name"]] = text.strip("'\"")
    return values


def numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in NUMBER.findall(text)]


def _first_line(cell) -> str:
    lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")]
    return (lines or [""])[0][:100]


def _error_line(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.ename}: {out.evalue}"[:300]
    return ""


def run_one(chapter: str, variant: str) -> dict:
    """Execute one stored notebook under one variant; compare with its stored outputs."""
    path = ROOT / "notebooks" / f"{chapter}.ipynb"
    stored = nbformat.read(path, as_version=4)
    nb = without_outputs(stored)
    start = time.perf_counter()
    error = None
    try:
        execute(nb, cwd=path.parent, name=f"{chapter} [{variant}]",
                          extra_env=VARIANTS[variant])
    except BookError as err:
        error = str(err).splitlines()[0]
    seconds = time.perf_counter() - start
    sanitize = sanitizer(ROOT / "tests" / "nbval_sanitize.cfg")
    raised, differs = [], []
    for i, (ref, cell) in enumerate(zip(stored.cells, nb.cells)):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            raised.append({"cell": i + 1, "code": _first_line(cell), "error": _error_line(cell)})
            break
        tags = ref.metadata.get("tags", [])
        if "nbval-ignore-output" in tags or "nbval-skip" in tags:
            continue
        if _texts(ref.outputs, sanitize) != _texts(cell.outputs, sanitize):
            differs.append({"cell": i + 1, "code": _first_line(cell)})
    if error and not raised:  # e.g. the figure check, or a kernel that died
        raised.append({"cell": 0, "code": "", "error": error})
    return {"chapter": chapter, "variant": variant, "seconds": round(seconds, 1),
            "raised": raised, "differs": differs, "glue": glued(nb), "stored_glue": glued(stored)}


def relative_moves(stored: str, values: list[str]) -> list[float]:
    """Each number of `values` against the same number of `stored`, as |new - old| / |old|
    (texts whose numbers do not pair up, and numbers that are 0 on the page, are left out)."""
    ref, moves = numbers(stored), []
    for value in values:
        got = numbers(value)
        if ref and len(got) == len(ref):
            moves += [abs(b - a) / abs(a) for a, b in zip(ref, got) if a]
    return moves


def _percent(x: float) -> str:
    if x == 0:
        return "0 %"
    return f"{100 * x:.2g} %" if x < 0.1 else f"{100 * x:.0f} %" if x < 10 else f"{x:.0f}x"


def _shown(values: list[str], stored: str) -> str:
    other = sorted(set(values) - {stored})
    if not other:
        return "="
    return ", ".join(other[:4]) + (", ..." if len(other) > 4 else "")


def report(results: list[dict], skipped: dict[str, str], meta: dict) -> str:
    chapters = sorted({r["chapter"] for r in results}, key=[r["chapter"] for r in results].index)
    variants = sorted({r["variant"] for r in results}, key=list(VARIANTS).index)
    by = {(r["chapter"], r["variant"]): r for r in results}
    lines = [
        "# Perturbation run",
        "",
        (f"{meta['date']}, commit {meta['commit']}, torch {meta['torch']}, "
        f"{meta['machine']} (native ATen capability {meta['capability']}); "
        "one torch thread per kernel."),
        "",
        "Variants: " + "; ".join(f"`{v}` ({' '.join(f'{k}={x}' for k, x in VARIANTS[v].items())})"
                                 for v in variants) + ".",
    ]
    for v, why in skipped.items():
        lines.append(f"Skipped `{v}`: {why}.")
    runs = {}
    for r in results:
        runs.setdefault(r.get("run", ""), []).append(f"{r['chapter']} [{r['variant']}]")
    if len(runs) > 1:  # a report updated chapter by chapter (--update)
        lines += ["", "Notebook runs from more than one invocation:"]
        lines += [f"- {run}: {', '.join(which)}" for run, which in runs.items()]
    lines += ["", "**Cells that raise.**", ""]
    failures = [(c, v, f) for (c, v), r in by.items() for f in r["raised"]]
    if not failures:
        lines.append(f"None: every chapter ran to the end under every variant "
                     f"({len(results)} notebook runs).")
    for chapter, variant, f in failures:
        lines.append(f"- {chapter} [{variant}] cell {f['cell']} `{f['code']}`: {f['error']}")
    lines += ["", "**Exactly compared cells whose output moves with the numerics.**", "",
              ("Cells without `nbval-ignore-output` whose text differs from the stored output "
              "under a numeric variant (`make nbval` would fail on them on such a processor; "
              "the seed variants change seeded outputs by design and are not listed):"), ""]
    moved = [(c, v, d) for (c, v), r in by.items() for d in r["differs"]
             if "D2L_SEED_SHIFT" not in VARIANTS[v]]
    if not moved:
        lines.append("None.")
    for chapter, variant, d in moved:
        lines.append(f"- {chapter} [{variant}] cell {d['cell']} `{d['code']}`")
    numeric = [v for v in variants if "D2L_SEED_SHIFT" not in VARIANTS[v]]
    seeded = [v for v in variants if v not in numeric]
    lines += [
        "",
        "**How far the glued numbers move.**",
        "",
        ("The numbers the prose quotes (glued), against the page: under the numeric variants "
        "(what another processor does to the same seeds) and under the seed shifts. "
        "A move is |variant - page| / |page| for each number of a value."),
        "",
        ("| chapter | glued values | unchanged, numeric | median move, numeric | largest, numeric "
        "| median move, seeds | seconds per run |"),
        "|---|---|---|---|---|---|---|",
    ]
    details = [
        "",
        "**Every glued value that moves.**",
        "",
        "| chapter | name | page | numeric variants | seed shifts |",
        "|---|---|---|---|---|",
    ]
    for chapter in chapters:
        runs = {v: by[chapter, v] for v in variants if (chapter, v) in by}
        stored = next(iter(runs.values()))["stored_glue"]
        same, moves_num, moves_seed = 0, [], []
        for name, value in stored.items():
            num = [runs[v]["glue"].get(name, "(missing)") for v in numeric if v in runs]
            seed = [runs[v]["glue"].get(name, "(missing)") for v in seeded if v in runs]
            moves_num += relative_moves(value, num)
            moves_seed += relative_moves(value, seed)
            same += all(x == value for x in num)
            if any(x != value for x in num + seed):
                details.append(f"| {chapter} | `{name}` | {value} | {_shown(num, value)} "
                               f"| {_shown(seed, value)} |")
        secs = sorted({min(r["seconds"] for r in runs.values()),
                       max(r["seconds"] for r in runs.values())})

        def med(xs):
            return _percent(statistics.median(xs)) if xs else "-"

        lines.append(f"| {chapter} | {len(stored)} | {same} | {med(moves_num)} "
                     f"| {_percent(max(moves_num)) if moves_num else '-'} | {med(moves_seed)} "
                     f"| {'–'.join(f'{x:.0f}' for x in secs)} |")
    return "\n".join(lines + details) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter names (file stems); default all")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed side by side")
    parser.add_argument("--report", type=Path, help="write REPORT.md and REPORT.json")
    parser.add_argument("--update", action="store_true",
                        help="keep the other chapters' and variants' results of REPORT.json")
    parser.add_argument("--from-json", type=Path, metavar="JSON",
                        help="no run: write the report again from the .json of a past run")
    args = parser.parse_args(argv)
    if args.from_json:
        past = json.loads(args.from_json.read_text())
        text = report(past["results"], past["skipped"], past["meta"])
        (args.report or args.from_json).with_suffix(".md").write_text(text)
        print(text)
        return 1 if any(r["raised"] for r in past["results"]) else 0
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    all_chapters = [md.stem for md in book_chapters()]
    missing = [c for c in args.chapters if c not in all_chapters]
    if missing:
        parser.error(f"no chapter named {', '.join(missing)}; chapters: {', '.join(all_chapters)}")
    chapters = args.chapters or all_chapters
    skipped = {}
    capability = native_capability()
    for v in list(variants):
        if VARIANTS[v].get("ATEN_CPU_CAPABILITY") == capability and len(VARIANTS[v]) == 1:
            skipped[v] = f"{capability.upper()} is this processor's native level"
            variants.remove(v)
    jobs = [(c, v) for v in variants for c in chapters]
    # The longest chapters first, so that the two workers finish together.
    seconds = cpu_seconds()
    jobs.sort(key=lambda j: -seconds.get(j[0], 0))
    print(f"{len(jobs)} notebook runs ({len(chapters)} chapters x {len(variants)} variants), "
          f"{args.jobs} at a time", flush=True)
    results = []
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, c, v) for c, v in jobs]
        for future in futures:
            r = future.result()
            state = "RAISED" if r["raised"] else "ok"
            print(f"{r['chapter']:20s} {r['variant']:20s} {r['seconds']:6.1f} s  {state}"
                  f"  {len(r['differs'])} exact cell(s) moved", flush=True)
            for f in r["raised"]:
                print(f"    raised: cell {f['cell']} `{f['code']}`: {f['error']}", flush=True)
            for d in r["differs"]:
                print(f"    moved: cell {d['cell']} `{d['code']}`", flush=True)
            results.append(r)
    import torch

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=False,
                                 capture_output=True, text=True).stdout.strip() or "?",
        "torch": torch.__version__, "capability": capability.upper(),
        "machine": _machine(),
    }
    for r in results:
        r["run"] = f"commit {meta['commit']}, {meta['date']}"
    if args.update and args.report and args.report.with_suffix(".json").exists():
        past = json.loads(args.report.with_suffix(".json").read_text())
        label = f"commit {past['meta']['commit']}, {past['meta']['date']}"
        fresh = {(r["chapter"], r["variant"]) for r in results}
        kept = [{"run": label, **r} for r in past["results"]
                if (r["chapter"], r["variant"]) not in fresh]
        results = kept + results
        skipped = {**past["skipped"], **skipped}
    text = report(results, skipped, meta)
    print("\n" + text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.with_suffix(".md").write_text(text)
        args.report.with_suffix(".json").write_text(
            json.dumps({"meta": meta, "skipped": skipped, "results": results}, indent=1) + "\n")
    return 1 if any(r["raised"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
