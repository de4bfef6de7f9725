"""Notebooks are committed clean, with one `parameters` cell that matches the profiles.
(Their execution is tested end to end in test_reports.py, through `make figures`.)"""

from dataclasses import fields
from pathlib import Path

import nbformat
import papermill
import pytest

from pnf.hessian_spectra import SETTINGS as CURVATURE
from pnf.tasks import TASKS

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# what a notebook may choose besides profile settings: which data, and the explorer's widget defaults
DATA_CHOICES = {"data_dir", "mesh", "scene", "seed"}
EXPLORER_CHOICES = {"task", "activation", "optimizers", "lr_scale", "epoch"}
SECTIONS = [task.settings["paper"] for task in TASKS.values()] + [CURVATURE["paper"]]
PROFILE_FIELDS = {f.name for section in SECTIONS for f in fields(section)}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_has_one_parameters_cell_and_no_outputs(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert all(cell.get("outputs", []) == [] and cell.get("execution_count") is None
               for cell in cells if cell.cell_type == "code")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_parameters_match_the_profiles(notebook):
    parameters = papermill.inspect_notebook(str(notebook))
    assert parameters["profile"]["default"] == '"quick"'
    allowed = PROFILE_FIELDS | DATA_CHOICES | (EXPLORER_CHOICES if notebook.stem == "explore" else set())
    overrides = set(parameters) - {"profile"}
    assert overrides <= allowed, f"neither profile settings nor data choices: {overrides - allowed}"
