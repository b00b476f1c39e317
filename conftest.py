"""pytest setup shared by every run in this repository.

`make nbval` starts one Jupyter kernel per notebook, two notebooks side by side. Once, on a
fresh clone, a kernel exited before answering its first message ("Kernel died before replying
to kernel_info"), with nbval sending the kernel's own error output to /dev/null. That is a
failure to start the tool, not a result of the book, so a kernel that dies while starting is
started again, up to three times, and what it printed is shown as a warning. A notebook whose
kernel starts but whose cells fail is never retried.
"""

import tempfile
import time
import warnings

STARTS = 3


def pytest_configure(config):
    try:
        from nbval import kernel
    except ImportError:  # nbval not installed: nothing to wrap
        return
    if getattr(kernel.start_new_kernel, "retries_dead_kernels", False):
        return
    start = kernel.start_new_kernel

    def start_new_kernel(*args, **kwargs):
        for attempt in range(1, STARTS + 1):
            with tempfile.TemporaryFile(mode="w+") as log:
                kwargs["stderr"] = log
                try:
                    return start(*args, **kwargs)
                except RuntimeError as err:
                    log.seek(0)
                    warnings.warn(f"kernel start {attempt} of {STARTS} failed ({err}); "
                                  f"the kernel printed:\n{log.read()[-2000:]}", stacklevel=1)
                    if attempt == STARTS:
                        raise
            time.sleep(2 * attempt)

    start_new_kernel.retries_dead_kernels = True
    kernel.start_new_kernel = start_new_kernel


def comparison_counts(paths) -> dict[str, int]:
    """How `make nbval` treats the code cells of the notebooks under `paths`: compared exactly
    ("exact"), run and bounded by the assert that follows ("bounded": nbval-ignore-output), or
    not run ("skipped": nbval-skip). Cells without any output count as exact (nothing printed
    must stay nothing printed)."""
    from pathlib import Path

    import nbformat

    counts = {"exact": 0, "bounded": 0, "skipped": 0}
    for path in paths:
        path = Path(path)
        for nb_path in sorted(path.glob("*.ipynb")) if path.is_dir() else [path]:
            if nb_path.suffix != ".ipynb":
                continue
            for cell in nbformat.read(nb_path, as_version=4).cells:
                if cell.cell_type != "code":
                    continue
                tags = cell.metadata.get("tags", [])
                key = ("skipped" if "nbval-skip" in tags
                       else "bounded" if "nbval-ignore-output" in tags else "exact")
                counts[key] += 1
    return counts


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After `make nbval`: how many cells were compared exactly and how many only bounded."""
    if not (config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False)):
        return
    counts = comparison_counts(config.args)
    total = sum(counts.values()) or 1
    terminalreporter.write_line(
        f"nbval: {counts['exact']} code cells compared exactly "
        f"({100 * counts['exact'] / total:.0f} %), {counts['bounded']} run and bounded by an "
        f"assert (nbval-ignore-output), {counts['skipped']} skipped"
    )


def pytest_collection_modifyitems(session, config, items):
    """`make nbval`: the notebooks that took longest when last executed (the recorded times of
    notebooks/execution_times.json) come first, so that the two workers, each taking the next
    notebook when it is done, end at about the same time; the cells of a notebook keep their
    order. (pytest-xdist's own order, by number of cells, once left one worker running the
    longest chapter alone at the end.)"""
    if not (config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False)):
        return
    from pathlib import Path

    from booktools.notebooks.execution import cpu_seconds

    seconds = cpu_seconds()

    def recorded(item):
        path = Path(str(item.fspath))
        return -seconds.get(path.stem, 0) if path.suffix == ".ipynb" else 0

    items.sort(key=recorded)  # stable: each notebook's cells stay in order
