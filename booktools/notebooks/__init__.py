"""Pair the chapters (book/<name>.md) with their notebooks (notebooks/<name>.ipynb).

The chapters are the sources. A notebook is a generated copy of its chapter that also
carries the outputs of a reference CPU run, so that readers (and Colab) see results
without running anything, and so that nbval can compare a fresh run against them.

    python -m booktools.notebooks list              the chapters that have a notebook
    python -m booktools.notebooks sync [NAME ...]   regenerate and execute (`make notebooks`)
    python -m booktools.notebooks check             in sync with the chapters, Colab cells right
    python -m booktools.notebooks stamp             rewrite every chapter's Colab setup cell
    python -m booktools.notebooks run --out DIR     execute every notebook, report time and
                                                    device (`make test-gpu`)
    python -m booktools.notebooks.perturb           the perturbation run (`make perturb`)

Which pages are chapters: every page listed in _toc.yml that has at least one
``{code-cell}`` (``booktools.chapters``). Pages of prose only (no code) get no notebook and
no Colab cell. The parts: ``pairing`` (chapter -> notebook, the check), ``figures`` (every
image a numbered figure with a caption and alt text), ``colab`` (the setup cell),
``execution`` (kernels, cleaning, ``sync``), ``device_run`` (``make test-gpu``),
``perturb`` (``make perturb``), ``startup/`` (files copied into each kernel's IPython
startup folder: the figure check, the seed shift).

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
import sys
from pathlib import Path

from booktools import ROOT, BookError, print_errors
from booktools.chapters import chapters
from booktools.notebooks.colab import COLAB_TEMPLATE, check_colab, colab_source, stamp, stamp_text
from booktools.notebooks.device_run import run_all
from booktools.notebooks.execution import TIMES_FILE, clean, dumps, execute, sync
from booktools.notebooks.pairing import chapter_problems, check, notebook_path, to_notebook
from booktools.toc import toc_pages

__all__ = [
    "COLAB_TEMPLATE",
    "TIMES_FILE",
    "BookError",
    "chapter_problems",
    "chapters",
    "check",
    "check_colab",
    "clean",
    "colab_source",
    "dumps",
    "execute",
    "main",
    "notebook_path",
    "run_all",
    "stamp",
    "stamp_text",
    "sync",
    "to_notebook",
    "toc_pages",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the chapters that have a notebook")
    p_sync = sub.add_parser("sync", help="regenerate and execute notebooks")
    p_sync.add_argument("names", nargs="*", help="chapter names (file stems); default all")
    p_sync.add_argument("--no-execute", action="store_true", help="inputs only (not for commits)")
    p_sync.add_argument("--prose-only", action="store_true",
                        help="only markdown changed: refresh it, keep the stored outputs")
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
            sync(names, run=not args.no_execute, prose_only=args.prose_only)
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
    except BookError as err:
        print_errors(err, sys.stderr)
        return 1
    return 0

