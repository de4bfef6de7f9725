"""Notebooks are committed clean, with one `parameters` cell that matches the profiles,
and start with `pnf.report.start`, which refuses bad parameters.
(Their execution is tested end to end in test_reports.py, through `make figures`.)"""

import os
import re
from dataclasses import fields
from pathlib import Path

import nbformat
import papermill
import pytest

from pnf.report import start
from pnf.studies.curvature import SETTINGS as CURVATURE
from pnf.tasks import TASKS

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# what a notebook may choose besides profile settings: which data, and the explorer's widget defaults
DATA_CHOICES = {"data_dir", "mesh", "scene", "seed"}
ANALYSES = {"curvature", "explore", "esgd_in_your_loop"}  # notebooks of no one task
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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_report_of_a_task_is_named_by_it_and_starts_with_the_preamble(notebook):
    code = "\n".join(cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code")
    task = notebook.stem.split("_")[0]
    assert task in TASKS or notebook.stem in ANALYSES
    assert f'start(profile, "{task}"' in code or task not in TASKS


@pytest.mark.parametrize("name, value", [("epochs", 0), ("epochs", -3), ("epochs", 2.5), ("epochs", "10"),
                                         ("seeds", True), ("seeds", 0)])
def test_the_preamble_refuses_a_bad_epochs_or_seeds(name, value, monkeypatch):
    monkeypatch.delenv("PNF_DATA", raising=False)
    with pytest.raises(ValueError, match=rf"{name} = {re.escape(repr(value))}: use a positive integer, or None"):
        start("tiny", "image", **{name: value})
    assert "PNF_DATA" not in os.environ  # refused before pointing the data folder anywhere


def test_the_preamble_refuses_an_unknown_profile_task_or_data_kind():
    with pytest.raises(ValueError, match="unknown profile 'fast'; one of paper, quick"):
        start("fast", "image")
    with pytest.raises(ValueError, match="unknown task 'depth'"):
        start("tiny", "depth")
    with pytest.raises(ValueError, match="mesh:armadillo"):
        start("tiny", "image", source="mesh:armadillo")


def test_the_preamble_overrides_epochs_and_seeds_and_keeps_a_snapshot():
    report = start("tiny", "image", epochs=1, seeds=2)
    assert (report.settings.epochs, report.settings.seeds, report.settings.snapshot_epoch) == (1, 2, 1)
    comparison = start("quick", "image", epochs=6, variant="comparison")
    assert (comparison.settings.epochs, comparison.settings.snapshot_epoch) == (6, 6)  # the profile's 10 is later
    assert start("quick", "image").settings == TASKS["image"].settings["quick"]
