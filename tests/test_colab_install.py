"""A chapter's notebook runs in Colab-like isolation, with d2l_lib installed by its own Colab cell.

What Colab has and this test reproduces:
- a Python environment of its own (a fresh virtual environment here) that already has
  torch, numpy, matplotlib and the Jupyter kernel, but not d2l_lib and not this repository;
- the notebook alone, in an empty folder (Colab opens notebooks/<chapter>.ipynb from GitHub);
- the module ``google.colab``, which makes the setup cell run its ``%pip install``.

The setup cell is executed as stored in the notebook, with a single change: the repository
address from _config.yml is replaced by a local git repository made from this working tree
(committed on the branch or tag that _config.yml names), since the test cannot reach GitHub.
pip therefore clones, builds and installs d2l_lib exactly as it would in Colab.

The third-party packages are not downloaded again (that takes minutes here): the fresh
environment sees only the listed packages and their dependencies, linked one by one from
.venv, through a .pth file. .venv's own d2l_lib (an editable install pointing at this
checkout) is not among them, so d2l_lib can only come from what the setup cell installs.
The last cell checks that: d2l_lib is imported from the fresh environment and no entry of
sys.path lies inside this repository.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
# What Colab already has that a chapter needs, plus nbclient to drive the kernel.
COLAB_PACKAGES = ["torch", "numpy", "matplotlib", "ipykernel", "nbclient"]
# Quick chapters that exercise the library (not the long training ones), in preference order.
CANDIDATES = ["text_data", "toolkit"]

FAKE_COLAB = """\
# Added by tests/test_colab_install.py: pretend to be Colab.
import sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")"""

CHECK_ISOLATION = """\
# Added by tests/test_colab_install.py: d2l_lib came from the setup cell's install.
import sys
from pathlib import Path
import d2l_lib
venv, repo = Path({venv!r}).resolve(), Path({repo!r}).resolve()
assert Path(sys.prefix).resolve() == venv, sys.prefix
assert Path(d2l_lib.__file__).resolve().is_relative_to(venv), d2l_lib.__file__
inside = [p for p in sys.path if Path(p or ".").resolve().is_relative_to(repo)]
assert not inside, inside
print("d2l_lib from", d2l_lib.__file__)"""

RUNNER = """\
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def dependency_closure(names):
    """The installed distributions of names and of everything they require."""
    found, todo = {}, list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        dist = metadata.distribution(name)
        found[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def link_packages(names, target: Path) -> None:
    """Symlink the top-level files of each distribution (and its .dist-info) into target."""
    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir(parents=True)
    for dist in dependency_closure(names).values():
        assert canonicalize_name(dist.metadata["Name"]) != "d2l-lib"
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = site / top
            if source.exists() and not (target / top).exists() and not top.endswith(".pth"):
                (target / top).symlink_to(source)


def make_git_repository(target: Path, ref: str) -> None:
    """A git repository holding this working tree (tracked and new files) at ref."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    env = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost"}
    for args in (["init", "-q", "-b", ref], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(["git", *args], cwd=target, check=True, env=env, capture_output=True)


def pick_notebook() -> Path:
    have_data = bool(os.environ.get("D2L_DATA_DIR"))
    for name in CANDIDATES:
        path = ROOT / "notebooks" / f"{name}.ipynb"
        if path.exists() and (name != "text_data" or have_data):
            return path
    pytest.skip(f"none of the notebooks {CANDIDATES} exists yet (or D2L_DATA_DIR is unset)")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_notebook_installs_d2l_lib_in_colab_like_isolation(tmp_path):
    source = pick_notebook()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url, ref = config["url"].rstrip("/"), config["branch"]

    # 1. A fresh virtual environment that sees the Colab packages only.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    link_packages(COLAB_PACKAGES, tmp_path / "colab-packages")
    (Path(venv_site) / "colab-packages.pth").write_text(f"{tmp_path / 'colab-packages'}\n")

    # 2. The repository as Colab's pip would clone it.
    repo = tmp_path / "repository"
    make_git_repository(repo, ref)

    # 3. The notebook alone in an empty folder, its setup cell pointed at that repository.
    work = tmp_path / "content"
    work.mkdir()
    nb = nbformat.read(source, as_version=4)
    setup = next(cell for cell in nb.cells if cell.cell_type == "code")
    wanted = f'source = "git+{url}@{ref}"'
    assert wanted in setup.source, f"{source.name}: first code cell is not the Colab setup cell"
    # file://localhost/...: the pip that Python 3.11's venv bundles rejects file:///... here.
    setup.source = setup.source.replace(f"git+{url}@", f"git+file://localhost{repo}@")
    nb.cells.insert(nb.cells.index(setup), nbformat.v4.new_code_cell(FAKE_COLAB))
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_ISOLATION.format(venv=str(venv), repo=str(ROOT))))
    notebook = work / source.name
    nbformat.write(nb, notebook)

    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "MPLBACKEND", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["JUPYTER_PATH"] = env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter")  # no user kernels
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [python, "-c", RUNNER, notebook.name],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, f"{source.name} failed in Colab-like isolation:\n{result.stderr[-6000:]}"

    # 4. The setup cell installed d2l_lib into the fresh environment, from the repository.
    executed = nbformat.read(notebook, as_version=4)
    last = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert re.search(r"d2l_lib from .*/venv/lib/.*/site-packages/d2l_lib/__init__\.py", last), last
    direct_url = next(Path(venv_site).glob("d2l_lib-*.dist-info/direct_url.json"))
    assert json.loads(direct_url.read_text())["url"] == f"file://localhost{repo}"
