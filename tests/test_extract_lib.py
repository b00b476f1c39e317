"""booktools.library (make lib): the #@save extractor that generates d2l_lib/core.py.

Every test builds a small book in a temporary folder (its own _toc.yml, chapters and
d2l_lib/core.py header), runs the tool on it with --root, and checks one rule or one error.
The real chapters are only read, in the last tests.
"""

import contextlib
import importlib.util
import inspect
import io
import pydoc
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from booktools import library as xl

ROOT = Path(__file__).resolve().parent.parent
TOOL = ["-m", "booktools.library"]  # the command line of `make lib`, run from ROOT

MD_HEADER = (ROOT / "book" / "intro.md").read_text().split("---\n")[1]
GENERATED = "# ---- GENERATED BELOW: do not edit; change the chapters in book/ and run `make lib` ----"
CORE_HEADER = f'"""Test library."""\n\nimport math\n\n{GENERATED}\n'
RUFF = ROOT / ".venv" / "bin" / "ruff"


def cell(src: str, options: str = "") -> str:
    return "```{code-cell} ipython3\n" + options + src.strip("\n") + "\n```"


def chapter(title: str, *parts: str) -> str:
    """A MyST notebook: the jupytext header, a title, then the parts (cells or prose)."""
    return f"---\n{MD_HEADER}---\n\n(chapter-{title})=\n# {title}\n\n" + "\n\n".join(parts) + "\n"


def make_book(root: Path, chapters: dict, header: str = CORE_HEADER, toc: str | None = None):
    """Write chapters {stem: text}, a _toc.yml listing them in order, and the core header."""
    (root / "book").mkdir(exist_ok=True)
    (root / "d2l_lib").mkdir(exist_ok=True)
    for stem, text in chapters.items():
        (root / "book" / f"{stem}.md").write_text(text)
    if toc is None:
        stems = list(chapters)
        toc = f"format: jb-book\nroot: book/{stems[0]}\n"
        if stems[1:]:
            toc += "chapters:\n" + "".join(f"  - file: book/{s}\n" for s in stems[1:])
    (root / "_toc.yml").write_text(toc)
    (root / "d2l_lib" / "core.py").write_text(header + "\n__all__ = []\n")
    shutil.copy(ROOT / "d2l_lib" / "__init__.py", root / "d2l_lib" / "__init__.py")
    return root


def run(root: Path, *args: str):
    """Run the tool in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = xl.main(["--root", str(root), *args])
    return rc, out.getvalue(), err.getvalue()


def lib_text(root: Path) -> str:
    return (root / "d2l_lib" / "core.py").read_text()


def generated(root: Path) -> str:
    """The generated part of core.py (below the GENERATED line)."""
    return lib_text(root).split(GENERATED + "\n", 1)[1]


def extract(tmp_path, chapters, **kw) -> str:
    make_book(tmp_path, chapters, **kw)
    rc, _out, err = run(tmp_path)
    assert rc == 0, err
    return generated(tmp_path)


def fails(tmp_path, chapters, **kw) -> str:
    make_book(tmp_path, chapters, **kw)
    before = lib_text(tmp_path)
    rc, _out, err = run(tmp_path)
    assert rc == 1, "expected an error"
    assert lib_text(tmp_path) == before, "the library must not be written after an error"
    return err


def line_of(root: Path, stem: str, needle: str) -> int:
    lines = (root / "book" / f"{stem}.md").read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def cell_of(root: Path, stem: str, needle: str) -> int:
    """1-based notebook cell index (as jupytext reads the chapter) of the cell containing needle."""
    nb = jupytext.read(root / "book" / f"{stem}.md")
    hits = [i + 1 for i, c in enumerate(nb.cells) if needle in c.source]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def import_lib(root: Path, name: str):
    """Import the generated package from the temporary tree under a fresh name."""
    spec = importlib.util.spec_from_file_location(
        name, root / "d2l_lib" / "__init__.py", submodule_search_locations=[str(root / "d2l_lib")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ruff_errors(path: Path) -> str:
    res = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if res.returncode == 0 else res.stdout + res.stderr


# --------------------------------------------------------------------------------------
# What is saved
# --------------------------------------------------------------------------------------


def test_def_line_marker_saves_the_whole_definition(tmp_path):
    code = '''
@staticmethod
def helper(x):  #@save
    """Twice x.

    Indented docstring text
        stays as written.
    """
    # a comment inside the body
    y = x * 2

    return y
'''
    gen = extract(tmp_path, {"a": chapter("a", cell(code))})
    body = code.strip("\n").replace("  #@save", "")
    assert body + "\n" in gen
    assert "#@save" not in gen


def test_marker_on_first_decorator_line_or_signature_line(tmp_path):
    gen = extract(
        tmp_path,
        {
            "a": chapter(
                "a",
                cell("@property  #@save\n@staticmethod\ndef f():\n    return 1"),
                cell("def g(a,\n      b):  #@save\n    return a + b"),
                cell("class K(\n    object,\n):  #@save\n    x = 1"),
            )
        },
    )
    assert "@property\n@staticmethod\ndef f():\n    return 1\n" in gen
    assert "def g(a,\n      b):\n    return a + b\n" in gen
    assert "class K(\n    object,\n):\n    x = 1\n" in gen


def test_statement_marker_saves_exactly_that_statement(tmp_path):
    # d2l's extractor would drag the unmarked lines after a one-line `#@save` along.
    code = """
X = 1  #@save
Y = 2
def not_saved():
    return 3
TABLE = {  #@save
    "a": 1,
    "b": 2,
}
Z = 4
"""
    gen = extract(tmp_path, {"a": chapter("a", cell(code))})
    assert "X = 1\n" in gen
    assert 'TABLE = {\n    "a": 1,\n    "b": 2,\n}\n' in gen
    for absent in ("Y = 2", "not_saved", "Z = 4"):
        assert absent not in gen


def test_lone_marker_on_first_line_saves_every_statement_of_the_cell(tmp_path):
    code = """
#@save
import collections
# comment lines between statements are not copied
A = 1
def f():
    return collections.Counter([A])
class C:
    pass
"""
    gen = extract(tmp_path, {"a": chapter("a", cell(code), cell("B = 2\n#nothing #@save-ish"))})
    assert "\nimport collections\n" in gen
    assert "A = 1\n" in gen
    assert "def f():\n    return collections.Counter([A])\n" in gen
    assert "class C:\n    pass\n" in gen
    assert "comment lines between" not in gen
    assert "B = 2" not in gen  # a cell without a marker of its own is not saved


def test_lone_marker_is_only_a_cell_marker_on_the_first_line(tmp_path):
    err = fails(tmp_path, {"a": chapter("a", cell("A = 1\n#@save\nB = 2"))})
    assert "on a line of its own that is not the cell's first line" in err
    assert f"book/a.md:{line_of(tmp_path, 'a', '#@save')} " in err


def test_cells_without_marker_are_ignored_and_may_use_magics(tmp_path):
    gen = extract(
        tmp_path,
        {
            "a": chapter(
                "a",
                cell("%pip install foo\n!ls\nunused = 1", ":tags: [remove-cell]\n"),
                cell("import sys\nif True:\n    %time x = 1"),
                cell("def f():  #@save\n    return 1"),
                cell('S = "#@save"\nT = """\n#@save\n"""'),  # marks inside strings
            )
        },
    )
    assert "def f():\n    return 1\n" in gen
    assert "unused" not in gen and "S = " not in gen and "T = " not in gen


def test_marker_comment_is_removed_other_comment_text_kept(tmp_path):
    gen = extract(tmp_path, {"a": chapter("a", cell("UNITS = 3  # seconds  #@save"))})
    assert "UNITS = 3  # seconds\n" in gen
    assert "#@save" not in gen


def test_toc_order_not_file_order(tmp_path):
    toc = (
        "format: jb-book\nroot: book/zz\nparts:\n  - caption: P\n    chapters:\n"
        "      - file: book/mm\n        sections:\n          - file: book/aa\n"
    )
    chapters = {
        "aa": chapter("aa", cell("def third():  #@save\n    return second()")),
        "mm": chapter("mm", cell("def second():  #@save\n    return first()")),
        "zz": chapter("zz", cell("def first():  #@save\n    return 1")),
    }
    gen = extract(tmp_path, chapters, toc=toc)
    assert gen.index("def first") < gen.index("def second") < gen.index("def third")


# --------------------------------------------------------------------------------------
# Library references, imports, __all__
# --------------------------------------------------------------------------------------


def test_library_aliases_are_rewritten_to_bare_names(tmp_path):
    chapters = {
        "a": chapter("a", cell("class Base:  #@save\n    pass\n\ndef helper():  #@save\n    return 1")),
        "b": chapter(
            "b",
            cell("import d2l_lib as foo\nimport d2l_lib\nfrom d2l_lib import helper as h"),
            cell(
                "#@save\nimport d2l_lib as foo\nclass Child(foo.Base):\n"
                "    def run(self):\n        return foo.helper() + d2l_lib.helper() + h()"
            ),
        ),
    }
    gen = extract(tmp_path, chapters)
    assert "class Child(Base):\n    def run(self):\n        return helper() + helper() + helper()\n" in gen
    assert "import d2l_lib" not in gen
    assert "foo" not in gen


def test_saved_imports_are_hoisted_deduplicated_and_sorted(tmp_path):
    header = f'"""H."""\n\nimport math\n\nimport numpy as np\n\n{GENERATED}\n'
    chapters = {
        "a": chapter(
            "a",
            cell("import re  #@save\nimport math  #@save\nfrom typing import cast  #@save"),
            cell("def f(x):  #@save\n    return cast(str, re.escape(x)), math.pi, np.pi"),
        ),
        "b": chapter(
            "b",
            cell("import re  #@save\nimport collections  #@save\nfrom typing import Any  #@save"),
            cell("def g(x: Any):  #@save\n    return collections.Counter(x)"),
        ),
    }
    gen = extract(tmp_path, chapters, header=header)
    block = "import collections\nimport re\nfrom typing import Any, cast\n\n\n# Defined in"
    assert block in gen
    assert gen.count("import re") == 1
    assert "import math" not in gen  # the header already has it
    assert gen.index("import collections") < gen.index("def f")
    assert ruff_errors(tmp_path / "d2l_lib" / "core.py") == ""


def test_import_order_matches_ruff(tmp_path):
    bindings = [
        xl.Binding("zlib", None, None),
        xl.Binding("torch", None, None),
        xl.Binding("Bio", None, None),
        xl.Binding("a10", None, None),
        xl.Binding("a9", None, None),
        xl.Binding("os.path", None, None),
        xl.Binding("os", None, "oo"),
        xl.Binding("typing", "cast", None),
        xl.Binding("typing", "TYPE_CHECKING", None),
        xl.Binding("typing", "Any", None),
        xl.Binding("typing", "List", "L"),
        xl.Binding("collections", "abc", "cabc"),
        xl.Binding("collections", "OrderedDict", None),
        xl.Binding("torch.nn", "Module", None),
        xl.Binding("book", "thing", None),  # first party: a folder of the project
        xl.Binding("verylongmodulename.sub", None, None),
        *[xl.Binding("verylongmodulename.sub", f"name_number_{i}", None) for i in range(12)],
    ]
    (tmp_path / "book").mkdir()
    lines = xl.format_imports(bindings, xl.first_party(tmp_path))
    uses = "\n".join(
        f"print({b.asname or (b.name or b.module.split('.')[0])})" for b in bindings
    )
    path = tmp_path / "mod.py"
    path.write_text('"""M."""\n\n' + "\n".join(lines) + "\n\n" + uses + "\n")
    res = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--isolated", "--select", "I", "--line-length", "100",
         "--config", "lint.isort.known-first-party = ['book']", str(path)],
        capture_output=True, text=True, check=False,
    )
    assert res.returncode == 0, res.stdout + "\n" + path.read_text()


def test_unsupported_imports_are_errors(tmp_path):
    err = fails(
        tmp_path,
        {
            "a": chapter(
                "a",
                cell("from os.path import *  #@save"),
                cell("from . import x  #@save"),
                cell("from __future__ import annotations  #@save"),
            )
        },
    )
    assert "star import" in err and "relative import" in err and "__future__" in err


def test_all_lists_public_saved_names_in_ruff_order(tmp_path):
    code = """
#@save
import re
MAX_LEN = 10
_private = 1
a2, a10 = 2, 10
def b_func():
    return re, _private
class Zeta:
    pass
class Alpha:
    pass
"""
    gen = extract(tmp_path, {"a": chapter("a", cell(code))}, header=f'"""H."""\n\n{GENERATED}\n')
    names = re.search(r"__all__ = \[\n(.*?)\]", gen, re.DOTALL).group(1).split()
    assert names == ['"MAX_LEN",', '"Alpha",', '"Zeta",', '"a2",', '"a10",', '"b_func",']
    assert ruff_errors(tmp_path / "d2l_lib" / "core.py") == ""


# --------------------------------------------------------------------------------------
# add_to_class and redefinitions
# --------------------------------------------------------------------------------------

TRAINER = '''
class Trainer:  #@save
    """Trains a model."""

    def __init__(self, n):
        self.n = n

    def fit(self):
        raise NotImplementedError

    def stop(self):
        return "stop"
'''


def test_add_to_class_merges_methods_into_the_class(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell("def add_to_class(Class):  #@save\n    def wrapper(obj):\n"
                 "        setattr(Class, obj.__name__, obj)\n    return wrapper"),
            cell(TRAINER),
        ),
        "b": chapter(
            "b",
            "## Fitting\n\nProse.",
            cell("import d2l_lib as d2l"),
            cell('''
@d2l.add_to_class(d2l.Trainer)  #@save
def fit(self):
    """Fit for n steps.

    Returns the number of steps.
    """
    template = """line one
  line two keeps its two spaces"""
    return self.n + len(template) * 0
'''),
            cell('''
@d2l.add_to_class(d2l.Trainer)  #@save
@property
def twice(self):
    return 2 * self.n
'''),
        ),
    }
    make_book(tmp_path, chapters)
    rc, out, err = run(tmp_path)
    assert rc == 0, err
    gen = generated(tmp_path)
    fit_line = line_of(tmp_path, "b", "def fit(self):")
    assert f"replaced Trainer.fit (book/b.md:{fit_line - 1} replaces book/a.md:" in out
    assert "add_to_class(" not in gen.split("class Trainer")[1]  # decorators removed
    cls = gen.split("class Trainer")[1]
    # in place: fit stays between __init__ and stop; the new method is appended at the end
    assert cls.index("def __init__") < cls.index("def fit") < cls.index("def stop")
    assert cls.index("def stop") < cls.index("def twice")
    assert "raise NotImplementedError" not in gen
    assert '        """Fit for n steps.\n\n        Returns the number of steps.\n        """\n' in cls
    assert '        template = """line one\n  line two keeps its two spaces"""\n' in cls
    assert f'    # Defined in book/b.md, section "Fitting" (line {fit_line - 1})\n' in cls
    assert gen.count("def fit") == 1

    lib = import_lib(tmp_path, "d2l_lib_merge")
    trainer = lib.Trainer(3)
    assert trainer.fit() == 3
    assert trainer.twice == 6 and trainer.stop() == "stop"
    source = inspect.getsource(lib.Trainer)
    assert "def fit(self):" in source and "def twice(self):" in source
    assert "Returns the number of steps." in pydoc.render_doc(lib.Trainer, renderer=pydoc.plaintext)
    assert inspect.getdoc(lib.Trainer.fit) == "Fit for n steps.\n\nReturns the number of steps."


def test_bare_add_to_class_and_from_import_forms(tmp_path):
    chapters = {
        "a": chapter("a", cell("def add_to_class(C):  #@save\n    return C"), cell(TRAINER)),
        "b": chapter(
            "b",
            cell("from d2l_lib import add_to_class as atc, Trainer as T"),
            cell("@atc(T)  #@save\ndef extra(self):\n    return 1"),
        ),
        "c": chapter("c", cell("@add_to_class(Trainer)  #@save\ndef more(self):\n    return 2")),
    }
    gen = extract(tmp_path, chapters)
    cls = gen.split("class Trainer")[1]
    assert "    def extra(self):\n        return 1\n" in cls
    assert "    def more(self):\n        return 2\n" in cls


def test_later_top_level_definition_replaces_earlier_in_place(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell("def add_to_class(C):  #@save\n    return C"),
            cell("def helper():  #@save\n    return 'old'"),
            cell("class Box:  #@save\n    pass"),
            cell("@add_to_class(Box)  #@save\ndef added(self):\n    return 1"),
            cell("LIMIT = 1  #@save"),
            cell("def after():  #@save\n    return helper()"),
        ),
        "b": chapter(
            "b",
            cell("def helper():  #@save\n    return 'new'"),
            cell("class Box:  #@save\n    size = 2"),
            cell("LIMIT = 2  #@save"),
        ),
    }
    make_book(tmp_path, chapters)
    rc, out, err = run(tmp_path)
    assert rc == 0, err
    gen = generated(tmp_path)
    new_line = line_of(tmp_path, "b", "def helper")
    old_line = line_of(tmp_path, "a", "def helper")
    assert f"replaced helper (book/b.md:{new_line} replaces book/a.md:{old_line})" in out
    assert "replaced Box (" in out and "replaced LIMIT (" in out
    assert gen.count("def helper") == 1 and "'old'" not in gen
    assert gen.index("def helper") < gen.index("class Box") < gen.index("def after")
    assert "LIMIT = 2" in gen and "LIMIT = 1" not in gen
    assert "def added" not in gen  # the new class is a new class, as in the notebook
    assert f'# Defined in book/b.md, section "b" (line {new_line})\ndef helper' in gen


# --------------------------------------------------------------------------------------
# Provenance, header, determinism
# --------------------------------------------------------------------------------------


def test_source_marker_names_file_section_and_line(tmp_path):
    long_title = "A section title that is far too long to fit on one line of the generated code " * 2
    chapters = {
        "a": chapter(
            "a",
            "## Making things\n\nProse with a ```python``` mention.",
            cell("def made():  #@save\n    return 1"),
            f"### {long_title}",
            cell("def long():  #@save\n    return 2"),
        )
    }
    gen = extract(tmp_path, chapters)
    line = line_of(tmp_path, "a", "def made")
    assert f'# Defined in book/a.md, section "Making things" (line {line})\ndef made' in gen
    marker = next(x for x in gen.splitlines() if "def long" in x or "A section title" in x)
    assert len(marker) <= 100 and marker.endswith(f'..." (line {line_of(tmp_path, "a", "def long")})')


def test_header_is_kept_byte_for_byte_and_old_output_discarded(tmp_path):
    header = '"""Odd   header\t with tabs."""\n\nimport math  # keep me\n\n' + GENERATED + "\n"
    make_book(tmp_path, {"a": chapter("a", cell("R = math.pi  #@save"))}, header=header)
    (tmp_path / "d2l_lib" / "core.py").write_text(header + "garbage that is not Python (\n")
    rc, _, err = run(tmp_path)
    assert rc == 0, err
    text = lib_text(tmp_path)
    assert text.startswith(header)
    assert "garbage" not in text and "R = math.pi\n" in text


def test_missing_generated_line_is_an_error(tmp_path):
    make_book(tmp_path, {"a": chapter("a")}, header='"""No marker."""\n')
    rc, _, err = run(tmp_path)
    assert rc == 1 and "GENERATED BELOW" in err


def test_extraction_is_deterministic(tmp_path):
    chapters = {
        "a": chapter("a", cell(TRAINER), cell("import re  #@save\nimport os  #@save")),
        "b": chapter("b", cell("import d2l_lib as d2l"),
                     cell("@d2l.add_to_class(d2l.Trainer)  #@save\ndef f(self):\n    return os, re")),
    }
    make_book(tmp_path, chapters)
    assert run(tmp_path)[0] == 0
    first = (tmp_path / "d2l_lib" / "core.py").read_bytes()
    rc, out, _ = run(tmp_path)
    assert rc == 0 and "unchanged" in out
    assert (tmp_path / "d2l_lib" / "core.py").read_bytes() == first
    assert xl.generate(tmp_path)[0].encode() == first


def test_generated_module_passes_ruff_and_imports(tmp_path):
    header = f'"""H."""\n\nimport math\n\nimport torch\n\n{GENERATED}\n'
    chapters = {
        "a": chapter("a", cell("def add_to_class(C):  #@save\n    return C"), cell(TRAINER)),
        "b": chapter(
            "b",
            cell("import d2l_lib as d2l\nimport collections  #@save"),
            cell("@d2l.add_to_class(d2l.Trainer)  #@save\ndef size(self):\n"
                 "    return collections.Counter([math.floor(torch.tensor(1.5).item())])"),
            cell("SCALE = 2.0  #@save"),
        ),
    }
    make_book(tmp_path, chapters, header=header)
    assert run(tmp_path)[0] == 0
    assert ruff_errors(tmp_path / "d2l_lib" / "core.py") == ""
    lib = import_lib(tmp_path, "d2l_lib_ruff")
    assert lib.Trainer(1).size() == {1: 1}
    assert sorted(lib.__all__) == ["SCALE", "Trainer", "add_to_class"]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def where(root, stem, needle):
    return f"book/{stem}.md:{line_of(root, stem, needle)} (cell {cell_of(root, stem, needle)})"


def test_error_add_to_class_on_class_not_saved(tmp_path):
    chapters = {
        "a": chapter("a", cell("import d2l_lib as d2l"),
                     cell("@d2l.add_to_class(d2l.Ghost)  #@save\ndef m(self):\n    return 1")),
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "add_to_class(d2l.Ghost)") + ": add_to_class(Ghost)" in err
    assert "not saved in this or an earlier chapter" in err and "fix:" in err


def test_error_add_to_class_on_class_saved_later(tmp_path):
    chapters = {
        "a": chapter("a", cell("def add_to_class(C):  #@save\n    return C"),
                     cell("@add_to_class(Late)  #@save\ndef m(self):\n    return 1")),
        "b": chapter("b", cell("class Late:  #@save\n    pass")),
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "add_to_class(Late)") in err
    assert "Late is not saved in this or an earlier chapter" in err


def test_error_add_to_class_must_be_first_decorator(tmp_path):
    chapters = {
        "a": chapter("a", cell(TRAINER),
                     cell("@property\n@add_to_class(Trainer)  #@save\ndef m(self):\n    return 1")),
    }
    err = fails(tmp_path, chapters)
    assert "not the first decorator" in err


def test_error_syntax_error_in_saved_cell(tmp_path):
    chapters = {"a": chapter("a", cell("%matplotlib inline\ndef f():  #@save\n    return 1"))}
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "%matplotlib") + ": syntax error in a saved cell" in err


def test_error_undefined_name_is_mapped_to_the_chapter_line(tmp_path):
    chapters = {
        "a": chapter("a", cell("def f():  #@save\n    x = 1\n    return undefined_thing + x")),
        "b": chapter("b", cell("class B(NotYet):  #@save\n    pass"),
                     cell("class NotYet:  #@save\n    pass")),
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "undefined_thing") + ": saved code uses 'undefined_thing'" in err
    # used at module level before it is defined (class bases run at import time)
    assert where(tmp_path, "b", "class B(NotYet)") + ": saved code uses 'NotYet'" in err
    assert "header of d2l_lib/core.py" in err


def test_error_d2l_alias_unknown_in_chapter(tmp_path):
    # A chapter that never imports d2l_lib cannot use d2l.X in saved code.
    err = fails(tmp_path, {"a": chapter("a", cell("def f():  #@save\n    return d2l.g()"))})
    assert "saved code uses 'd2l'" in err
    assert "write `import d2l_lib as d2l` in a code cell of this chapter" in err


def test_error_marker_in_markdown_cell(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            "Prose that shows the mark `#@save` inline is fine.\n\n"
            "```text\ndef shown():  #@save\n```\n\n"
            "```python\ndef not_run():  #@save\n    pass\n```",
            cell("A = 1"),
        )
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "def not_run") + ": `#@save` in a markdown cell" in err
    assert "shown" not in err and err.count("error:") == 1


def test_error_marker_in_code_cell_nested_in_a_directive(tmp_path):
    # jupytext (and so the paired notebook) only sees top-level code cells
    nested = "````{admonition} Solution\n```{code-cell} ipython3\nB = 2  #@save\n```\n````"
    err = fails(tmp_path, {"a": chapter("a", nested)})
    assert where(tmp_path, "a", "B = 2") + ": `#@save` in a markdown cell" in err


def test_error_marker_inside_an_indented_block(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell("class C:\n    def m(self):  #@save\n        return 1"),
            cell("def f():\n    return 1\n    #@save"),
            cell("if True:\n    X = 1  #@save\nelse:  #@save\n    X = 2"),
        )
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "def m(self):  #@save") + ": `#@save` on a line inside an indented" in err
    assert ": `#@save` on an indented line" in err
    assert where(tmp_path, "a", "X = 1  #@save") in err
    assert where(tmp_path, "a", "else:  #@save") in err
    assert err.count("error:") == 4


def test_error_misspelled_marker(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell("def f():  # @save\n    return 1"),
            cell("G = 1  #@Save"),
            cell("# cells marked #@save go to the library; so do '# @save' strings\nH = 2"),
        )
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "def f():  # @save") + ": this looks like a misspelled" in err
    assert where(tmp_path, "a", "G = 1  #@Save") in err
    assert err.count("error:") == 2


def test_error_two_statements_on_a_saved_line(tmp_path):
    err = fails(tmp_path, {"a": chapter("a", cell("A = 1; B = 2  #@save"))})
    assert "two statements share a saved line" in err


def test_errors_are_all_reported_at_once(tmp_path):
    chapters = {
        "a": chapter("a", cell("x = (  #@save"), "```python\nY = 1  #@save\n```"),
        "b": chapter("b", cell("@add_to_class(Nope)  #@save\ndef m(self):\n    pass")),
    }
    err = fails(tmp_path, chapters)
    assert err.count("error: book/") == 3
    assert "d2l_lib was not written" in err


# --------------------------------------------------------------------------------------
# --check and the command line
# --------------------------------------------------------------------------------------


def test_check_passes_when_fresh_and_fails_with_the_stale_message(tmp_path):
    make_book(tmp_path, {"a": chapter("a", cell("def f():  #@save\n    return 1"))})
    rc, _, _ = run(tmp_path, "--check")
    assert rc == 1  # the committed file still has the placeholder __all__ = []
    assert run(tmp_path)[0] == 0
    rc, out, _ = run(tmp_path, "--check")
    assert rc == 0 and "up to date" in out
    # edit a saved cell without regenerating
    chap = tmp_path / "book" / "a.md"
    chap.write_text(chap.read_text().replace("return 1", "return 2"))
    before = lib_text(tmp_path)
    res = subprocess.run(
        [sys.executable, *TOOL, "--root", str(tmp_path), "--check"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert res.returncode == 1
    assert "d2l_lib is stale: run `make lib`" in res.stdout
    assert "-    return 1\n+    return 2" in res.stdout
    assert lib_text(tmp_path) == before  # --check never writes


def test_make_lib_output_lists_objects_per_chapter(tmp_path):
    chapters = {
        "a": chapter("a", cell("def f():  #@save\n    return 1\n\nclass G:  #@save\n    pass")),
        "b": chapter("b", cell("H = 1  #@save")),
    }
    make_book(tmp_path, chapters)
    rc, out, _ = run(tmp_path)
    assert rc == 0
    assert "book/a.md: 2 saved: f, G" in out and "book/b.md: 1 saved: H" in out
    assert "wrote d2l_lib/core.py" in out


# --------------------------------------------------------------------------------------
# The reader agrees with jupytext, on fixtures and on the real chapters
# --------------------------------------------------------------------------------------


def _agrees_with_jupytext(root: Path, rel: str) -> None:
    ch = xl.read_chapter(root, rel)
    nb = jupytext.read(root / rel)
    assert len(ch.cells) == len(nb.cells)
    lines = (root / rel).read_text().splitlines()
    for c, nc in zip(ch.cells, nb.cells, strict=True):
        assert c.kind == nc.cell_type
        assert "\n".join(c.lines) == nc.source
        assert lines[c.first_line - 1 : c.first_line - 1 + len(c.lines)] == c.lines


def test_reader_agrees_with_jupytext_on_a_fixture(tmp_path):
    text = chapter(
        "a",
        cell("x = 1", ":tags: [remove-input]\n"),
        cell("y = 2", "---\ntags: [hide-output]\n---\n\n"),
        "+++\n\nMore prose.",
        cell("x = 1"),  # the same text twice: each cell maps to its own lines
    )
    make_book(tmp_path, {"a": text})
    _agrees_with_jupytext(tmp_path, "book/a.md")


@pytest.mark.parametrize("rel", xl.toc_files(ROOT))
def test_reader_agrees_with_jupytext_on_real_chapters(rel):
    _agrees_with_jupytext(ROOT, rel)


# --------------------------------------------------------------------------------------
# Hostile input (issue 19): marks followed by comments, garbled marks, _toc.yml shape,
# encodings, lost names, tabs, import clashes
# --------------------------------------------------------------------------------------


def test_mark_followed_by_a_comment_is_honoured(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell("def f():  #@save  # a note\n    return 1"),
            cell("UNITS = 3  # seconds  #@save  # see below"),
            cell("#@save  # the helpers of this section\nA = 1\nB = 2"),
        )
    }
    gen = extract(tmp_path, chapters)
    assert "def f():  # a note\n    return 1\n" in gen
    assert "UNITS = 3  # seconds  # see below\n" in gen
    assert "A = 1\n" in gen and "B = 2\n" in gen
    assert "#@save" not in gen and "helpers of this section" not in gen


def test_error_garbled_marks(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell("def f():  #@save this one\n    return 1"),
            cell("G = 1  #@save:"),
            cell("#@saved\nH = 1"),
            cell("K = 1  # note#@Save"),
            cell("L = 1  # cf. #@save docs"),
            cell("M = 1  # @save  # note"),
            # prose in a comment line that mentions the mark is text, not a mark
            cell("# cells marked #@save go to the library\nN = 1"),
        )
    }
    err = fails(tmp_path, chapters)
    for needle in ("#@save this", "G = 1", "#@saved", "K = 1", "L = 1", "M = 1"):
        assert where(tmp_path, "a", needle) + ": this looks like a misspelled" in err, needle
    assert "N = 1" not in err and err.count("error:") == 6


def test_error_mark_followed_by_a_comment_in_markdown(tmp_path):
    text = chapter(
        "a",
        "Inline code that shows the mark, `X = 1  #@save  # a note`, is prose.\n\n"
        "```python\ndef f():  #@save  # a note\n    pass\n```\n\nY = 2  #@save  # a note",
        cell("A = 1"),
    )
    err = fails(tmp_path, {"a": text})
    assert where(tmp_path, "a", "def f()") + ": `#@save` in a markdown cell" in err
    assert where(tmp_path, "a", "Y = 2") + ": `#@save` in a markdown cell" in err
    assert "Inline" not in err and err.count("error:") == 2


@pytest.mark.parametrize(
    ("toc", "message"),
    [
        ("", "_toc.yml: the table of contents is empty (null), not a mapping"),
        ("# only a comment\n", "_toc.yml: the table of contents is empty (null), not a mapping"),
        ("- file: book/a\n", "_toc.yml: the table of contents is a list, not a mapping"),
        ("book/a\n", "_toc.yml: the table of contents is the string 'book/a', not a mapping"),
        ("format: jb-book\nroot: [book/a\n", "_toc.yml:3: not valid YAML"),
        ("format: jb-book\n\troot: book/a\n", "_toc.yml:2: not valid YAML"),
        ("format: jb-book\nchapters:\n  - file: book/a\n", "_toc.yml, key root: is missing"),
        ("format: jb-book\nroot: 3\n", "_toc.yml, key root: is the int 3, not a file name"),
        ("root: book/a\n", "_toc.yml, key format: is empty (null), not 'jb-book'"),
        ("format: jb-book\nroot: book/a\nchapters:\n", "_toc.yml, key chapters: is empty"),
        ("format: jb-book\nroot: book/a\nchapters: book/a\n", "key chapters: is the string"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - book/a\n", "key chapters[0]: is the str"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - file: [x]\n", "key chapters[0].file: is a"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - {file: /etc/x}\n", "not a path inside"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - file: ../a\n", "not a path inside"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - file: book/a.ipynb\n", "not a MyST"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - title: x\n", "key chapters[0]: needs"),
        ("format: jb-book\nroot: book/a\nchapters:\n  - glob: book/*\n", "chapters[0].glob: glob"),
        ("format: jb-book\nroot: book/a\nchapter:\n  - file: book/b\n", "key chapter: is not a key"),
        ("format: jb-book\nroot: book/a\nparts:\n  - caption: P\n", "key parts[0].chapters: is"),
        (
            (
                "format: jb-book\nroot: book/a\nchapters:\n  - file: book/b\n    section:\n"
                "      - file: book/c\n"
            ),
            "key chapters[0].section: is not a key",
        ),
    ],
)
def test_error_malformed_toc_names_the_file_and_key(tmp_path, toc, message):
    err = fails(tmp_path, {"a": chapter("a", cell("A = 1  #@save")), "b": chapter("b")}, toc=toc)
    assert message in err
    assert "d2l_lib was not written" in err


def test_error_toc_names_a_missing_file_or_a_page_twice(tmp_path):
    toc = (
        "format: jb-book\nroot: book/a\nchapters:\n  - file: book/nope\n  - file: book/b\n"
        "  - file: book/b.md\n    sections:\n      - file: book/./a\n"
    )
    err = fails(tmp_path, {"a": chapter("a", cell("A = 1  #@save")), "b": chapter("b")}, toc=toc)
    assert "_toc.yml, key chapters[0].file: book/nope.md does not exist" in err
    assert "key chapters[2].file: book/b.md is listed twice (also at chapters[1].file)" in err
    assert "key chapters[2].sections[0].file: book/a.md is listed twice (also at root)" in err


def test_error_toc_key_given_twice(tmp_path):
    # YAML keeps the last `chapters`: book/b would vanish from the library without a word
    toc = "format: jb-book\nroot: book/a\nchapters:\n  - file: book/b\nchapters:\n  - file: book/c\n"
    chapters = {"a": chapter("a"), "b": chapter("b", cell("B = 1  #@save")), "c": chapter("c")}
    err = fails(tmp_path, chapters, toc=toc)
    assert "_toc.yml:5: key 'chapters' appears twice in one mapping (also on line 3)" in err


def test_toc_parts_sections_and_urls_are_read_in_order(tmp_path):
    toc = (
        "format: jb-book\nroot: book/a\nparts:\n  - caption: One\n    chapters:\n"
        "      - file: book/c.md\n        sections:\n          - file: book/b\n"
        "      - url: https://example.org\n        title: Elsewhere\n"
        "  - caption: Two\n    numbered: true\n    chapters:\n      - file: book/d\n"
    )
    chapters = {s: chapter(s) for s in "abcd"}
    make_book(tmp_path, chapters, toc=toc)
    assert xl.toc_files(tmp_path) == ["book/a.md", "book/c.md", "book/b.md", "book/d.md"]


def test_malformed_toc_on_the_command_line_gives_no_traceback(tmp_path):
    make_book(tmp_path, {"a": chapter("a")}, toc="- file: book/a\n")
    res = subprocess.run(
        [sys.executable, *TOOL, "--root", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and "error: _toc.yml:" in res.stderr


def test_error_chapter_not_utf8_names_file_and_byte_offset(tmp_path):
    make_book(tmp_path, {"a": chapter("a", cell("A = 'caf'  #@save"))})
    path = tmp_path / "book" / "a.md"
    data = path.read_bytes().replace(b"'caf'", b"'caf\xe9'")
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    line = data[:offset].count(b"\n") + 1
    before = lib_text(tmp_path)
    rc, _, err = run(tmp_path)
    assert rc == 1 and lib_text(tmp_path) == before
    assert f"book/a.md: not valid UTF-8: byte 0xe9 at byte offset {offset} (line {line}," in err


def test_error_chapter_with_byte_order_mark(tmp_path):
    err = fails(tmp_path, {"a": "\ufeff" + chapter("a", cell("A = 1  #@save"))})
    assert "book/a.md: starts with a UTF-8 byte-order mark" in err


def test_crlf_chapter_gives_the_same_library_as_lf(tmp_path):
    text = chapter("a", cell("def f():  #@save\n    return 1"), cell("X = 2  # two  #@save"))
    (tmp_path / "lf").mkdir()
    (tmp_path / "crlf").mkdir()
    lf = extract(tmp_path / "lf", {"a": text})
    crlf = extract(tmp_path / "crlf", {"a": text.replace("\n", "\r\n")})
    assert crlf == lf and "\r" not in crlf


def test_error_library_would_lose_names(tmp_path):
    chapters = {
        "a": chapter("a", cell("class C:  #@save\n    def m(self):\n        return 1"),
                     cell("def f():  #@save\n    return 1")),
        "b": chapter("b", cell("@add_to_class(C)  #@save\ndef n(self):\n    return 2"),
                     cell("G = 3  #@save")),
    }
    make_book(tmp_path, chapters)
    assert run(tmp_path)[0] == 0
    before = lib_text(tmp_path)
    # book/b leaves the table of contents: G and C.n would vanish from the library
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/a\n")
    rc, _, err = run(tmp_path)
    assert rc == 1 and lib_text(tmp_path) == before
    assert "d2l_lib/core.py: the chapters no longer save 2 name(s) it defines: C.n, G" in err
    assert "--allow-removal" in err
    rc, _out, err = run(tmp_path, "--allow-removal")
    assert rc == 0, err
    assert "G = 3" not in lib_text(tmp_path) and "def n(self)" not in lib_text(tmp_path)


def test_error_library_would_lose_names_of_an_unparsable_core(tmp_path):
    make_book(tmp_path, {"a": chapter("a", cell("A = 1  #@save"))})
    core = tmp_path / "d2l_lib" / "core.py"
    core.write_text(CORE_HEADER + "<<<<<<< HEAD\ndef old(x):\n    return x\nB: int = 2\n")
    rc, _, err = run(tmp_path)
    assert rc == 1 and "no longer save 2 name(s) it defines: B, old" in err


def test_error_tab_indented_saved_cell(tmp_path):
    err = fails(tmp_path, {"a": chapter("a", cell("def f():  #@save\n\treturn 1"))})
    assert where(tmp_path, "a", "\treturn 1") + ": a saved cell indented with tabs" in err


def test_error_saved_definition_named_like_an_import(tmp_path):
    chapters = {
        "a": chapter("a", cell("def math():  #@save\n    return 1"),
                     cell("class Counter:  #@save\n    pass")),
        "b": chapter("b", cell("from collections import Counter  #@save")),
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "def math") + ": saved code defines 'math', which the import " \
        "`import math` (in the header of d2l_lib/core.py) also binds" in err
    assert where(tmp_path, "a", "class Counter") + ": saved code defines 'Counter', which the " \
        "import `from collections import Counter` (saved at book/b.md:" in err


def test_marks_in_strings_and_nested_code_save_nothing_silently_or_fail(tmp_path):
    chapters = {
        "a": chapter(
            "a",
            cell('S = "#@save  # not a mark"\nT = 1'),
            cell("def f():\n    def g():  #@save  # a note\n        return 1\n    return g"),
        )
    }
    err = fails(tmp_path, chapters)
    assert where(tmp_path, "a", "def g()") + ": `#@save` on a line inside an indented" in err
    assert err.count("error:") == 1


def test_error_nul_byte_and_unreadable_files_name_the_file(tmp_path):
    make_book(tmp_path, {"a": chapter("a", cell("A = 1  #@save\x00"))})
    rc, _, err = run(tmp_path)
    assert rc == 1 and "book/a.md: a NUL byte at byte offset" in err
    (tmp_path / "book" / "a.md").write_text(chapter("a", cell("A = 1  #@save")))
    core = tmp_path / "d2l_lib" / "core.py"
    core.write_bytes(core.read_bytes() + b"# caf\xe9\n")
    rc, _, err = run(tmp_path)
    assert rc == 1 and "d2l_lib/core.py: not valid UTF-8: byte 0xe9 at byte offset" in err
    core.write_text(CORE_HEADER + "\n__all__ = []\n")
    toc = b"format: jb-book\nroot: book/a  # caf\xe9\n"
    (tmp_path / "_toc.yml").write_bytes(toc)
    rc, _, err = run(tmp_path)
    offset = toc.index(b"\xe9")
    assert rc == 1 and f"_toc.yml: not valid UTF-8: byte 0xe9 at byte offset {offset} (line 2," in err
    (tmp_path / "_toc.yml").unlink()
    rc, _, err = run(tmp_path)
    assert rc == 1 and "_toc.yml: cannot read the table of contents: No such file" in err


@pytest.mark.parametrize(
    "text",
    [
        "---\n- a list\n---\n\n" + cell("A = 1  #@save") + "\n",
        "---\njust text\n---\n\n" + cell("A = 1  #@save") + "\n",
        cell("A = 1  #@save", "---\nx: !!python/name:os.system\n---\n") + "\n",
        cell("A = 1  #@save", "---\n- a\n---\n") + "\n",
    ],
)
def test_error_front_matter_or_cell_options_not_a_mapping(tmp_path, text):
    err = fails(tmp_path, {"a": text})
    assert "book/a.md: jupytext cannot read this MyST notebook" in err
