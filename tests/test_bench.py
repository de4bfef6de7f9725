"""`make bench` at its tiny size: every benchmark runs and reports finite numbers.
No timing is asserted (the machine is shared); only that the numbers exist."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("1a.", "1b.", "1c.", "1d.", "2.", "3.", "3b.", "4.", "5.")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "bench.md"
    scratch = {"TMPDIR": str(folder)}  # where table 1d's torch.compile writes (~150 MB), not /tmp
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny", "--threads", "1", "--out", str(out)],
                   check=True, capture_output=True, cwd=ROOT, env={**os.environ, **scratch})
    yield out, json.loads(out.with_suffix(".json").read_text())
    for compiled in folder.glob("torchinductor_*"):
        shutil.rmtree(compiled)


def test_every_benchmark_reports_finite_positive_numbers(report):
    _, results = report
    titles = [table["title"] for table in results["tables"]]
    assert [next(t for t in titles if t.startswith(prefix)) for prefix in TABLES]
    for table in results["tables"]:
        assert table["rows"], table["title"]
        for row in table["rows"]:
            assert len(row) == len(table["columns"])
            numbers = [value for value in row if isinstance(value, (int, float))]
            assert numbers and all(math.isfinite(value) and value >= 0 for value in numbers), (table["title"], row)


def test_cost_table_covers_every_registered_optimizer_and_activation(report):
    from pnf.fields import ACTIVATIONS
    from pnf.optim import OPTIMIZERS

    _, results = report
    costs = next(table for table in results["tables"] if table["title"].startswith("5."))
    assert {(row[0], row[1]) for row in costs["rows"]} == {(o, a) for o in OPTIMIZERS for a in ACTIVATIONS}


def test_clamped_exp_matches_unclamped_within_float_tolerance(report):
    _, results = report
    exp_table = next(table for table in results["tables"] if table["title"].startswith("4."))
    for row in exp_table["rows"]:
        assert row[-2] < 1e-30 and row[-1] < 1e-6, row


def test_hand_written_r_operator_agrees_with_autograd_for_every_field(report):
    """Table 1d's gradient and Hv by hand equal autograd's (double backward's) to 1e-6
    relative; compiled (where torch.compile works here), to 1e-5."""
    from benchmarks.r_operator import WRITTEN_BY_HAND

    _, results = report
    table = next(table for table in results["tables"] if table["title"].startswith("1d."))
    errors = [dict(zip(table["columns"], row)) for row in table["rows"]]
    assert [row["activation"] for row in errors] == WRITTEN_BY_HAND == ["gaussian", "sine", "wavelet", "relu"]
    for row in errors:
        assert row["Hv error R-op"] < 1e-6 and row["gradient error R-op"] < 1e-6, row
    first, *others = errors  # the tiny size compiles the first field only (each compilation takes ~15 s)
    compiled = first["Hv error compiled"]
    assert compiled < 1e-5 if isinstance(compiled, float) else compiled.startswith("failed: "), first
    assert all(row["Hv error compiled"] == "not compiled at this size" for row in others), others


def test_markdown_report_names_the_machine(report):
    text = report[0].read_text()
    for key in ("cpu:", "cores:", "torch:", "threads: 1", "date:", "size: tiny"):
        assert key in text
    assert text.count("\n### ") == len(TABLES)


def test_figure_timing_covers_the_makefile_notebooks():
    """The opt-in figure timing (`make bench FIGURES=1`, many minutes; not run here)
    executes exactly what `make figures` builds."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.figures import notebooks

    names = notebooks()
    assert "image_convergence" in names
    assert all((ROOT / "notebooks" / f"{name}.ipynb").exists() for name in names)


def test_expected_times_price_every_config_of_every_profile(monkeypatch):
    """Table 3c prices each profile's configs from table 3b's rates and times the pairs 3b
    leaves out (full-batch optimizers such as L-BFGS) itself, instead of failing on them."""
    from benchmarks import throughput
    from benchmarks.common import Table
    from pnf import estimate
    from pnf.optim import OPTIMIZERS
    from pnf.profiles import PROFILES

    timed = []
    monkeypatch.setattr(estimate, "step_seconds", lambda activation, optimizer, options, device: timed.append(
        optimizer) or 0.5)
    rates = Table("3b", ["device", "activation", "optimizer", "steps/s"])
    pairs = {(c.activation, c.optimizer) for profile in PROFILES for c in estimate.configs(profile)}
    rates.rows = [["cpu", a, o, 4.0] for a, o in sorted(pairs) if not OPTIMIZERS[o].full_batch]
    table = throughput.profile_times(torch.device("cpu"), rates)
    assert [row[0] for row in table.rows] == list(PROFILES)
    assert all(row[3] > 0 and math.isfinite(row[3]) for row in table.rows)
    assert set(timed) == {o for _, o in pairs if OPTIMIZERS[o].full_batch} != set()
