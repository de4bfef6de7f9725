"""`python -m pnf.estimate`: the runs `make figures` misses, their steps and the minutes
they take, on the tiny profile with the step's price mocked (nothing is trained).

At the tiny profile an image run is 2 epochs of ceil(24² / 96) = 6 steps of 96 pixels
and 3 evaluations of 24² pixels (epochs 0, 1 = the snapshot, 2), an occupancy run 2
epochs of one step of 256 points and 3 evaluations of 12³ points, a NeRF run one epoch of
100 iterations of 32 rays × 8 samples through a 16-wide field of one hidden layer (its
test renders are not counted). Relative to the reference step (512 points, width 256, 3
hidden layers), an evaluated point a third of a trained one, these are 12 · 96/512 + 3 ·
576/(3 · 512) = 3.375, 2 · 256/512 + 3 · 1728/(3 · 512) = 4.375 and 100 · (32·8·16²·1) /
(512·256²·3) = 100/1536 reference steps. The beyond-the-paper protocol's tiny runs are image
runs of that size, but its sweep's evaluate only at epochs 0 and 2 (and L-BFGS takes one
step of all 576 pixels an epoch): 3.0 reference steps for a swept rate.
"""

import pytest
import torch

from pnf import __main__ as cli
from pnf import estimate
from pnf.studies import beyond_paper, robustness
from pnf.tasks import grid

REFERENCE_STEPS_A_RUN = {"image": 3.375, "occupancy": 4.375, "nerf": 100 / 1536, "sdf": 0.0048828125}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_EXECUTOR", "inline")


def reference_steps_of(configs) -> float:
    return sum(estimate.reference_steps(config) for config in configs)


def test_runs_and_steps_of_the_tiny_profile():
    configs = estimate.configs("tiny")
    study = robustness.study_configs("tiny", robustness.SETTINGS["tiny"])
    evaluations, sweeps = beyond_paper.protocol_configs(beyond_paper.settings_for("tiny"))
    protocol = [config for group in (*evaluations.values(), *sweeps.values()) for config in group]
    assert {c.key() for c in configs} == {c.key() for c in grid("tiny") + study + protocol}
    assert len(configs) == len({c.key() for c in configs}) and len(protocol) == 3 + 2 + 2 * 2  # presets, weight-scaled, rates
    assert {c.task for c in configs} == set(REFERENCE_STEPS_A_RUN)
    for config in grid("tiny") + study + [c for group in evaluations.values() for c in group]:
        assert estimate.reference_steps(config) == pytest.approx(REFERENCE_STEPS_A_RUN[config.task])
    for config in (c for group in sweeps.values() for c in group):
        assert estimate.reference_steps(config) == pytest.approx(3.0)


def test_estimate_prices_each_field_and_optimizer_once_and_divides_by_the_pool(monkeypatch):
    configs = estimate.configs("tiny")
    priced = []

    def price(activation, optimizer, options):
        priced.append((activation, optimizer))
        return 0.01

    seconds, missing, total = estimate.estimate("tiny", price)
    assert missing == total == len(configs)
    assert seconds == pytest.approx(0.01 * reference_steps_of(configs))
    assert sorted(priced) == sorted({(c.activation, c.optimizer) for c in configs})
    monkeypatch.setenv("PNF_EXECUTOR", "pool")
    monkeypatch.setenv("PNF_WORKERS", "2")
    assert estimate.estimate("tiny", price)[0] == pytest.approx(0.01 * reference_steps_of(configs) / 2)


def test_main_prints_the_minutes_of_the_missing_runs(monkeypatch, capsys):
    configs = estimate.configs("tiny")
    missing = [c for c in configs if c.task != "nerf"]
    monkeypatch.setattr(estimate, "step_seconds", lambda activation, optimizer, options: 6.0)
    monkeypatch.setattr(estimate, "is_cached", lambda config: config.task == "nerf")
    estimate.main(["tiny"])
    minutes = round(6.0 * reference_steps_of(missing) / 60)
    assert minutes > 1
    expected = f"this will take about {minutes} minutes ({len(missing)} runs missing of {len(configs)})"
    assert capsys.readouterr().out.startswith(expected)


def test_nothing_missing_says_so_without_calibrating(monkeypatch, capsys):
    def calibrate(*arguments):
        raise AssertionError("calibrated with nothing to train")

    monkeypatch.setattr(estimate, "step_seconds", calibrate)
    monkeypatch.setattr(estimate, "is_cached", lambda config: True)
    estimate.main(["tiny"])
    total = len(estimate.configs("tiny"))
    assert capsys.readouterr().out == f"nothing to train: all {total} runs of profile 'tiny' are cached\n"


def test_unknown_profile_is_refused_with_the_profiles():
    with pytest.raises(ValueError, match="unknown profile 'huge'; one of .*quick"):
        estimate.main(["huge"])


def test_the_sweep_computes_what_the_estimate_prices(monkeypatch, capsys):
    """`make figures` sweeps first: `python -m pnf sweep PROFILE` runs every config the
    estimate counts (the image-set study's included), `--family` one task's grid."""
    swept = []
    monkeypatch.setattr(cli, "run_all", lambda configs: swept.append(configs) or [])
    assert cli.main(["sweep", "tiny"]) == 0
    assert cli.main(["sweep", "tiny", "--family", "occupancy"]) == 0
    assert cli.main(["sweep", "tiny", "--family", "image"]) == 0
    every, occupancy, image = ({c.key() for c in configs} for configs in swept)
    assert every == {c.key() for c in estimate.configs("tiny")} == occupancy | image | {c.key() for c in grid("tiny")}
    assert any(c.data == "skimage:chelsea" for c in swept[0]) and any(c.data == "skimage:chelsea" for c in swept[2])
    assert occupancy == {c.key() for c in grid("tiny", ["occupancy"])}
    assert "0 runs in" in capsys.readouterr().out


def test_the_sweep_first_prices_the_runs_of_its_family(monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_all", lambda configs: [])
    monkeypatch.setattr(estimate, "step_seconds", lambda activation, optimizer, options: 6.0)
    monkeypatch.setattr(estimate, "is_cached", lambda config: False)
    threads = torch.get_num_threads()
    assert cli.main(["sweep", "tiny", "--family", "occupancy", "--estimate"]) == 0
    occupancy = grid("tiny", ["occupancy"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"this will take about {max(1, round(6.0 * reference_steps_of(occupancy) / 60))} minutes "
                            f"({len(occupancy)} runs missing of {len(occupancy)})")
    assert torch.get_num_threads() == threads  # the runs keep the process's thread count
