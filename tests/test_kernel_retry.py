"""conftest.py: a kernel that dies while starting is started again (up to three times), and
what it printed is shown; a kernel that keeps dying still fails the run."""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def wrapped_start(monkeypatch, failures):
    """conftest's wrapper around a fake nbval start_new_kernel that dies `failures` times."""
    calls = []

    def start_new_kernel(*args, **kwargs):
        calls.append(kwargs)
        if len(calls) <= failures:
            kwargs["stderr"].write(f"boom {len(calls)}\n")
            kwargs["stderr"].flush()
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "km", "kc"

    kernel = types.SimpleNamespace(start_new_kernel=start_new_kernel)
    monkeypatch.setitem(sys.modules, "nbval", types.SimpleNamespace(kernel=kernel))
    monkeypatch.setitem(sys.modules, "nbval.kernel", kernel)
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    monkeypatch.setattr(conftest.time, "sleep", lambda seconds: None)
    conftest.pytest_configure(config=None)
    return kernel.start_new_kernel, calls


def test_a_kernel_that_dies_twice_is_started_a_third_time(monkeypatch):
    start, calls = wrapped_start(monkeypatch, failures=2)
    with pytest.warns(UserWarning) as caught:
        assert start(kernel_name="python3", startup_timeout=60) == ("km", "kc")
    assert len(calls) == 3
    assert ["boom 1" in str(w.message) for w in caught] == [True, False]
    assert "kernel start 2 of 3 failed" in str(caught[1].message)


def test_a_kernel_that_keeps_dying_fails(monkeypatch):
    start, calls = wrapped_start(monkeypatch, failures=3)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="Kernel died"):
        start(kernel_name="python3", startup_timeout=60)
    assert len(calls) == 3
