"""Every notebook runs end to end under Papermill with the tiny profile, and is committed clean."""

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_has_one_parameters_cell_and_no_outputs(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert 'profile = "quick"' in tagged[0].source
    assert all(cell.get("outputs", []) == [] for cell in cells if cell.cell_type == "code")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_executes_with_tiny_parameters(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    papermill.execute_notebook(
        str(notebook), str(tmp_path / notebook.name), parameters={"profile": "tiny"},
        cwd=str(notebook.parent), progress_bar=False,
    )
