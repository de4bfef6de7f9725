"""The tutorial notebook runs end to end at the tiny profile, and its three ways of
driving ESGD give the same run."""

from pathlib import Path

import nbformat
import papermill

TUTORIAL = Path(__file__).resolve().parents[1] / "notebooks" / "esgd_in_your_loop.ipynb"


def test_the_tutorial_runs_and_its_three_styles_agree(tmp_path):
    executed = tmp_path / TUTORIAL.name
    papermill.execute_notebook(str(TUTORIAL), str(executed), parameters={"profile": "tiny"}, kernel_name="python3",
                               cwd=str(tmp_path), progress_bar=False)
    outputs = [output for cell in nbformat.read(executed, as_version=4).cells for output in cell.get("outputs", [])]
    printed = "".join(output.get("text", "") for output in outputs if output.get("name") == "stdout")
    assert "(a), (b) and (c) give the same ESGD run: True" in printed
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the curves
