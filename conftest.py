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
