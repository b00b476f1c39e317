"""`make nbval` runs the notebooks that took longest first (the root conftest.py)."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def root_conftest():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_longest_notebook_first_cells_in_order(monkeypatch):
    from booktools.notebooks import execution

    monkeypatch.setattr(execution, "cpu_seconds", lambda: {"short": 5.0, "long": 90.0})
    items = [SimpleNamespace(fspath=f"notebooks/{nb}.ipynb", cell=i)
             for nb, n in (("short", 3), ("unknown", 2), ("long", 3)) for i in range(n)]
    config = SimpleNamespace(getoption=lambda name, default=None: name == "nbval")
    root_conftest().pytest_collection_modifyitems(None, config, items)
    order = [(Path(i.fspath).stem, i.cell) for i in items]
    assert order == [("long", 0), ("long", 1), ("long", 2), ("short", 0), ("short", 1),
                     ("short", 2), ("unknown", 0), ("unknown", 1)]


def test_order_untouched_without_nbval():
    items = [SimpleNamespace(fspath="tests/test_b.py"), SimpleNamespace(fspath="tests/test_a.py")]
    config = SimpleNamespace(getoption=lambda name, default=None: False)
    root_conftest().pytest_collection_modifyitems(None, config, items)
    assert [i.fspath for i in items] == ["tests/test_b.py", "tests/test_a.py"]
