"""The benchmark: this book's RNN language models side by side with d2l 1.0.3, and the book build.

    make bench                      (sets up the reference, then runs this with .venv's python)
    BENCH_REPS=1 make bench         one repetition instead of 3
    .venv/bin/python bench/run.py --reps 1 --only ref --no-book

Items, each measured in its own process (bench/measure.py: a notebook executed in a Jupyter
kernel), repeated --reps times, interleaved (every repetition runs every item once, in an order
rotated from one repetition to the next), repetition r using seed r for both implementations:

    ours-scratch-on / -off     this book: d2l_lib.RNNScratch + RNNLMScratch, plot on / off
    ours-concise-on / -off     this book: d2l_lib.RNN + RNNLM
    ref-scratch-on / -off      d2l==1.0.3 from PyPI (bench/setup_reference.sh), its chapter code
    ref-concise-on / -off
    book                       a clean build of the whole book with execution (`make book-exec`
                               in a fresh copy of the working tree, so no cache or earlier
                               output helps)

Configuration (d2l's): batch 1024, 32 steps, 32 hidden units, lr 1, gradient clipping 1,
100 epochs. Prints a markdown table and writes bench/results/latest.json and latest.md with the
median and range of each figure, the ratios ours/reference, whether the targets are met, and the
machine. The targets are reported, never asserted: timings depend on the machine and its load.
"""

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("BENCH_DIR", ROOT / ".bench")).resolve()
RESULTS = ROOT / "bench" / "results"
MARK = "BENCH_RESULT "

TRAIN_ITEMS = [(impl, model, plot) for impl in ("ours", "ref")
               for model in ("scratch", "concise") for plot in ("on", "off")]
NEEDS = {  # what this book's library must provide for an item to run
    "scratch": ["TimeMachine", "RNNScratch", "RNNLMScratch", "Trainer"],
    "concise": ["TimeMachine", "RNN", "RNNLM", "Trainer"],
}
# Targets of issue 8 on the 2-core CPU (reported, not asserted).
TARGET_BOOK_S = 180
PPL_TOLERANCE = 0.01  # "same or better" validation perplexity: ours <= reference * (1 + this)


def item_name(impl, model, plot):
    return f"{impl}-{model}-{plot}"


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


def data_dir():
    env = os.environ.get("D2L_DATA_DIR")
    if env:
        return env
    shared = ROOT.parent / "shared" / "data"
    return str(shared) if (shared / "timemachine.txt").exists() else None


def missing_names(model):
    """Names the library lacks for `model` ([] when it can run), asked in a fresh process."""
    code = ("import d2l_lib as d2l, json, sys; "
            f"print(json.dumps([n for n in {NEEDS[model]!r} if not hasattr(d2l, n)]))")
    r = sh(str(ROOT / ".venv" / "bin" / "python"), "-c", code, cwd=ROOT)
    if r.returncode != 0:
        return ["(import d2l_lib failed: " + r.stderr.strip().splitlines()[-1] + ")"]
    return json.loads(r.stdout)


def has_book_target():
    return sh("make", "-n", "book", cwd=ROOT).returncode == 0


def machine():
    model_name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gib = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    commit = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).stdout.strip()
    dirty = bool(sh("git", "status", "--porcelain", "--untracked-files=no", cwd=ROOT).stdout.strip())
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "?"
    return {
        "cores": os.cpu_count(), "cpu": model_name, "memory_gib": mem_gib, "torch": torch_version,
        "os": platform.platform(), "python": platform.python_version(),
        "git_commit": commit + ("+dirty" if dirty else ""),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def measure(impl, model, plot, seed, epochs):
    cmd = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "measure.py"),
           "--impl", impl, "--model", model, "--plot", plot, "--seed", str(seed),
           "--epochs", str(epochs)]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT,
                       timeout=3600)
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (r.stderr or r.stdout).strip().splitlines()[-15:]
    return {"error": f"exit {r.returncode}", "log": tail}


def build_book():
    """`make book-exec` (the site built while executing every chapter) in a fresh copy of
    the working tree (tracked and untracked, not ignored files), with the shared .venv linked
    in. Returns its wall seconds. (`make book` itself executes nothing: about 15 s.)"""
    files = sh("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT).stdout
    tmp = Path(tempfile.mkdtemp(prefix="bench-book-"))
    try:
        for rel in filter(None, files.split("\0")):
            src = ROOT / rel
            if src.is_file():
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)  # keeps mtimes: make sees .venv as up to date
        (tmp / ".venv").symlink_to(ROOT / ".venv")
        env = dict(os.environ)
        env.pop("JUPYTER_PATH", None)
        env["PYTHONPATH"] = str(tmp)  # the copy's d2l_lib, not the editable install's
        if data_dir():
            env["D2L_DATA_DIR"] = data_dir()
        t0 = time.perf_counter()
        r = subprocess.run(["make", "book-exec"], check=False, cwd=tmp, env=env, capture_output=True,
                           text=True, timeout=3600)
        seconds = time.perf_counter() - t0
        log = BENCH_DIR / "book-build.log"
        log.write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            return {"error": f"make book-exec: exit {r.returncode} (log: {log})",
                    "log": (r.stderr or r.stdout).strip().splitlines()[-15:]}
        pages = len(list((tmp / "_build" / "html").rglob("*.html")))
        return {"build_s": seconds, "html_pages": pages}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt(s, digits=1, rng=True):
    if not s:
        return "–"
    m = f"{s['median']:.{digits}f}"
    if rng and s["n"] > 1:
        m += f" ({s['min']:.{digits}f}–{s['max']:.{digits}f})"
    return m


def summarize(runs, skipped, meta):
    items = {}
    order = [item_name(i, m, p) for m in ("scratch", "concise") for p in ("on", "off")
             for i in ("ours", "ref")] + ["book"]
    for name in sorted({r["item"] for r in runs}, key=order.index):
        ok = [r for r in runs if r["item"] == name and "error" not in r]
        errors = [r for r in runs if r["item"] == name and "error" in r]
        entry = {"runs": len(ok), "errors": [e["error"] for e in errors]}
        if name == "book":
            entry["build_s"] = summary([r["build_s"] for r in ok])
        else:
            for key in ("train_s", "fit_s", "fit_cpu_s", "tokens_per_s", "train_ppl", "val_ppl",
                        "plotted_val_ppl"):
                entry[key] = summary([r.get(key) for r in ok])
            entry["seeds"] = [r["seed"] for r in ok]
        items[name] = entry

    ratios = {}
    for model in ("scratch", "concise"):
        for plot in ("on", "off"):
            ours, ref = (items.get(item_name(i, model, plot)) for i in ("ours", "ref"))
            if not (ours and ref and ours.get("train_s") and ref.get("train_s")):
                continue
            ratios[f"{model}-{plot}"] = {
                "time": ours["train_s"]["median"] / ref["train_s"]["median"],
                "val_ppl": ours["val_ppl"]["median"] / ref["val_ppl"]["median"],
            }

    def target(desc, value, ok):
        return {"target": desc, "value": value, "met": ok}

    targets = []
    for plot, frac, text in (("on", 1 / 3, "one third"), ("off", 2 / 3, "two thirds")):
        r = ratios.get(f"scratch-{plot}")
        targets.append(target(f"scratch, plot {plot}: time at most {text} of the reference's",
                              None if r is None else round(r["time"], 3),
                              None if r is None else r["time"] <= frac))
    r = ratios.get("scratch-off") or ratios.get("scratch-on")
    targets.append(target(
        f"scratch: validation perplexity same or better (ours <= reference x {1 + PPL_TOLERANCE})",
        None if r is None else round(r["val_ppl"], 3),
        None if r is None else r["val_ppl"] <= 1 + PPL_TOLERANCE))
    book = items.get("book", {}).get("build_s")
    targets.append(target(f"whole book clean build with execution under {TARGET_BOOK_S} s",
                          None if not book else round(book["median"], 1),
                          None if not book else book["median"] < TARGET_BOOK_S))

    torch_info = next(({k: r[k] for k in ("torch", "threads", "interop_threads", "device")}
                       for r in runs if "torch" in r and r["impl"] == "ours"), None) or next(
        ({k: r[k] for k in ("torch", "threads", "interop_threads", "device")}
         for r in runs if "torch" in r), {})
    loads = [x for r in runs for x in (r.get("load_before"), r.get("load_after")) if x is not None]
    meta = dict(meta, **torch_info)
    meta["load_average_1min"] = summary(loads)
    # The 1-minute load average includes the benchmark's own torch threads (each item runs right
    # after the previous one), so only load beyond them, plus half a core, counts as other work.
    own_threads = min(meta.get("threads") or 1, os.cpu_count() or 1)
    meta["noisy"] = bool(loads) and max(loads) > own_threads + 0.5
    return {"meta": meta, "items": items, "ratios": ratios, "targets": targets,
            "skipped": skipped, "runs": runs}


def markdown(res):
    m = res["meta"]
    out = [(f"Measured {m['date']} at commit {m['git_commit']} on {m['cores']} cores "
            f"({m['cpu'] or 'unknown CPU'}, {m['memory_gib']} GiB), "
            f"torch {m.get('torch', '?')}, {m.get('threads', '?')} thread(s), "
            f"Python {m['python']}, device {m.get('device', '?')}; {m['reps']} repetition(s) "
            f"of {m['epochs']} epochs, seeds 0, 1, ... (one per repetition); "
            "median (min–max)."
            + (f" Threads set with BENCH_THREADS={m['bench_threads']}."
               if m.get("bench_threads") else ""))]
    if m["noisy"]:
        la = m["load_average_1min"]
        out.append(f"\n**Noisy**: the machine was busy with other work (1-minute load average "
                   f"{la['min']:.1f}–{la['max']:.1f} on {m['cores']} cores, more than the "
                   "benchmark's own threads); times are not representative.")
    elif m.get("load_average_1min"):
        la = m["load_average_1min"]
        out.append(f"\nLoad: 1-minute load average {la['min']:.1f}–{la['max']:.1f} on "
                   f"{m['cores']} cores, the benchmark's own {m.get('threads', '?')} thread(s) "
                   "included.")
    out += ["", ("| item | runs | training wall s | training CPU s | tokens/s | train ppl | "
                 "val ppl | time ours/ref | val ppl ours/ref |"),
            "|---|---|---|---|---|---|---|---|---|"]
    for name, e in res["items"].items():
        if name == "book":
            continue
        impl, model, plot = name.split("-")
        r = res["ratios"].get(f"{model}-{plot}") if impl == "ours" else None
        label = f"{'this book' if impl == 'ours' else 'd2l 1.0.3'}, {model}, plot {plot}"
        time_ratio = f"{r['time']:.2f}" if r else ""
        ppl_ratio = f"{r['val_ppl']:.3f}" if r else ""
        out.append(f"| {label} | {e['runs']} | {fmt(e['train_s'])} | {fmt(e['fit_cpu_s'])} | "
                   f"{fmt(e['tokens_per_s'], 0, rng=False)} | {fmt(e['train_ppl'], 2)} | "
                   f"{fmt(e['val_ppl'], 2)} | {time_ratio} | {ppl_ratio} |")
    out += ["", ("Training wall s: the notebook cell that runs `trainer.fit`, timed by the "
                 "notebook client (plot drawing and its transport included); training CPU s: "
                 "the kernel's CPU time for it; tokens/s: training tokens per epoch x epochs / "
                 "wall s; perplexities: exp of the mean per-token loss over the whole train and "
                 "validation sets after training, computed the same way for both.")]
    book = res["items"].get("book")
    if book and book.get("build_s"):
        out += ["", (f"Whole book, clean build with execution (`make book-exec`): "
                     f"{fmt(book['build_s'])} s.")]
    out += ["", "| target | value | met |", "|---|---|---|"]
    for t in res["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "no")
        out.append(f"| {t['target']} | {'–' if t['value'] is None else t['value']} | {met} |")
    for s in res["skipped"]:
        out.append(f"\nSkipped {s['item']}: {s['why']}")
    errors = [(n, e["errors"]) for n, e in res["items"].items() if e["errors"]]
    for n, errs in errors:
        out.append(f"\n{n}: {len(errs)} failed run(s): {'; '.join(errs)}")
    return "\n".join(out) + "\n"


def write(res):
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, text in (("latest.json", json.dumps(res, indent=1) + "\n"),
                       ("latest.md", markdown(res))):
        tmp = RESULTS / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(RESULTS / name)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "3")))
    p.add_argument("--epochs", type=int, default=int(os.environ.get("BENCH_EPOCHS", "100")))
    p.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                   help="comma-separated substrings of item names to run (e.g. ref,book)")
    p.add_argument("--no-book", action="store_true", help="skip the book build")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--summarize", metavar="RUNS_JSONL",
                   help="run nothing: summarize the runs logged by an earlier invocation")
    a = p.parse_args(argv)

    if a.summarize:
        lines = [json.loads(x) for x in Path(a.summarize).read_text().splitlines() if x]
        metas = [x["meta"] for x in lines if "meta" in x]
        runs = [x for x in lines if "meta" not in x]
        meta = metas[0] if metas else dict(machine(), reps=max(r["rep"] for r in runs) + 1,
                                            epochs=next(r["epochs"] for r in runs
                                                        if "epochs" in r))
        skipped = next((x.get("skipped", []) for x in lines if "meta" in x), [])
        res = summarize(runs, skipped, meta)
        print(markdown(res))
        if not a.no_write:
            write(res)
        return

    if not (BENCH_DIR / "ref-venv" / ".bench-stamp").exists():
        sys.exit("bench: no reference environment; run `bash bench/setup_reference.sh` "
                 "(`make bench` does)")
    wanted = [s for s in a.only.split(",") if s]

    def chosen(name):
        return not wanted or any(w in name for w in wanted)

    items, skipped = [], []
    missing = {model: missing_names(model) for model in NEEDS}
    for impl, model, plot in TRAIN_ITEMS:
        name = item_name(impl, model, plot)
        if not chosen(name):
            continue
        if impl == "ours" and missing[model]:
            skipped.append({"item": name, "why": "d2l_lib does not provide "
                            + ", ".join(missing[model]) + " yet (`make lib` after the chapter)"})
            continue
        items.append(((impl, model, plot), name))
    if not a.no_book and chosen("book"):
        if has_book_target():
            items.append((None, "book"))
        else:
            skipped.append({"item": "book", "why": "the Makefile has no `book` target yet"})
    for s in skipped:
        print(f"bench: skipping {s['item']}: {s['why']}", flush=True)

    meta = dict(machine(), reps=a.reps, epochs=a.epochs,
                bench_threads=os.environ.get("BENCH_THREADS") or None)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    log = BENCH_DIR / f"runs-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    with log.open("a") as f:
        f.write(json.dumps({"meta": meta, "skipped": skipped}) + "\n")
    runs = []
    for rep in range(a.reps):
        shift = rep % len(items) if items else 0
        for spec, name in items[shift:] + items[:shift]:
            load_before = os.getloadavg()[0]
            print(f"bench: rep {rep + 1}/{a.reps} {name} ... ", end="", flush=True)
            if spec is None:
                r = build_book()
                r.update(item="book", rep=rep)
            else:
                r = measure(*spec, seed=rep, epochs=a.epochs)
                r.update(item=name, rep=rep, impl=spec[0])
            r.update(load_before=load_before, load_after=os.getloadavg()[0])
            runs.append(r)
            with log.open("a") as f:
                f.write(json.dumps(r) + "\n")
            if "error" in r:
                print(f"FAILED ({r['error']})\n  " + "\n  ".join(r["log"]), flush=True)
            elif name == "book":
                print(f"{r['build_s']:.1f} s", flush=True)
            else:
                print(f"{r['train_s']:.1f} s, val ppl {r['val_ppl']:.2f} "
                      f"(load {load_before:.1f})", flush=True)

    res = summarize(runs, skipped, meta)
    text = markdown(res)
    print("\n" + text)
    if not a.no_write:
        write(res)
        print(f"bench: wrote {RESULTS.relative_to(ROOT)}/latest.json and latest.md; "
              f"every run: {log}")


if __name__ == "__main__":
    main()
