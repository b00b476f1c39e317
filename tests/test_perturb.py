"""The perturbation run's parts: the seed shift (booktools/notebooks/startup/seed_shift.py),
glued values, movement."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from booktools.notebooks import perturb

ROOT = Path(__file__).resolve().parent.parent
STARTUP = ROOT / "booktools" / "notebooks" / "startup"  # kernel startup files, not the package

DRAW = """
import json, random, sys
import numpy as np
sys.path.insert(0, {startup!r})
import seed_shift  # what the kernel's startup folder runs
import torch
torch.manual_seed(3); a = torch.rand(2).tolist()
g = torch.Generator().manual_seed(3); b = torch.rand(2, generator=g).tolist()
random.seed(3); c = random.random()
np.random.seed(3); d = float(np.random.rand())
print(json.dumps({{"torch": a, "generator": b, "random": c, "numpy": d,
                  "default_is_generator": isinstance(torch.default_generator, torch.Generator),
                  "initial": torch.initial_seed()}}))
"""


def draw(shift):
    env = {**os.environ, "D2L_SEED_SHIFT": str(shift)}
    out = subprocess.run([sys.executable, "-c", DRAW.format(startup=str(STARTUP))],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_seed_shift_moves_every_seeding_call_by_k():
    plain, shifted = draw(0), draw(2)
    assert plain["initial"] == 3 and shifted["initial"] == 5
    for key in ("torch", "generator", "random", "numpy"):
        assert plain[key] != shifted[key], key
    # seed 3 shifted by 2 draws what seed 5 draws unshifted
    import random

    import torch

    torch.manual_seed(5)
    assert torch.rand(2).tolist() == shifted["torch"]
    assert torch.rand(2, generator=torch.Generator().manual_seed(5)).tolist() == shifted["generator"]
    random.seed(5)
    assert random.random() == shifted["random"]
    assert shifted["default_is_generator"] and plain["default_is_generator"]


def test_glued_values_and_numbers():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("d2l.glue(...)")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/papermill.record/text/plain": "'2.10–2.13'"},
        metadata={"scrapbook": {"name": "loss", "mime_prefix": "application/papermill.record/"}})]
    nb.cells.append(cell)
    assert perturb.glued(nb) == {"loss": "2.10–2.13"}
    assert perturb.numbers("2.10–2.13") == [2.10, 2.13]
    assert perturb.numbers("1,220 steps, 3e-05") == [1220.0, 3e-05]


def test_relative_moves_pair_each_number_with_the_page():
    assert perturb.relative_moves("2.10", ["2.10", "2.10"]) == [0.0, 0.0]
    assert perturb.relative_moves("2.00", ["2.00", "2.20"]) == pytest.approx([0.0, 0.1])
    assert perturb.relative_moves("'abc'", ["'abd'"]) == []  # no numbers: text only
    assert perturb.relative_moves("0 of 10", ["1 of 10"]) == [0.0]  # 0 on the page: left out
    assert perturb.relative_moves("2.10–2.13", ["2.2"]) == []  # numbers that do not pair up
    assert perturb._shown(["2.10", "2.10"], "2.10") == "="
    assert perturb._percent(0.1) == "10 %" and perturb._percent(12) == "12x"


def test_unknown_variant_or_chapter_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        perturb.main(["--variants", "seed+9"])
    assert "unknown variant(s) seed+9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        perturb.main(["no_such_chapter"])
    assert "no chapter named no_such_chapter" in capsys.readouterr().err
