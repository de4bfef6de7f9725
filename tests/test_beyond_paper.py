"""The learning-rate protocol (pnf.studies.beyond_paper): grids, the pick, and the configs it makes."""

import math
from dataclasses import replace

import pytest

from pnf.runs.cache import Result, RunConfig
from pnf.studies.beyond_paper import best_lr, evaluation_configs, lr_grid, peak_memory, sweep_configs

BASE = RunConfig(task="image", activation="sine", optimizer="esgd", data="skimage:astronaut", resolution=256,
                 epochs=10, batch_size=512, eval_every=5)


def test_lr_grid_is_log_spaced_around_the_preset():
    grid = lr_grid(0.15)
    assert grid == pytest.approx([0.015, 0.15 / math.sqrt(10), 0.15, 0.15 * math.sqrt(10), 1.5])
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    assert ratios == pytest.approx([math.sqrt(10)] * 4)
    even = lr_grid(1e-4, count=4, span=8)
    assert even[0] * even[-1] == pytest.approx(1e-8) and even[-1] / even[0] == pytest.approx(64)
    assert lr_grid(1e-4, count=1) == [1e-4]


@pytest.mark.parametrize("arguments, message", [
    ((0.0,), r"preset_lr: 0\.0; a positive finite"),
    ((math.nan,), r"preset_lr: nan; a positive finite"),
    ((1e-4, 0), r"count must be an integer ≥ 1, not 0"),
    ((1e-4, 2.5), r"count must be an integer ≥ 1, not 2\.5"),
    ((1e-4, 5, 0.5), r"span: 0\.5; a finite factor >= 1"),
    ((1e-4, 5, 1.0), r"span: 1\.0; .*> 1 for more than one rate"),
])
def test_lr_grid_refuses_bad_settings(arguments, message):
    with pytest.raises(ValueError, match=message):
        lr_grid(*arguments)


def test_sweep_changes_only_the_learning_rate():
    configs = sweep_configs(BASE)
    assert [c.optimizer_options["lr"] for c in configs] == pytest.approx(lr_grid(0.15))
    assert all(c.data == BASE.data and c.batch_size == 512 and c.epochs == 10 and c.seed == 0 for c in configs)
    assert len({c.key() for c in configs}) == 5
    relu = sweep_configs(replace(BASE, activation="relu", optimizer="adam"), count=3)
    assert [c.optimizer_options["lr"] for c in relu] == pytest.approx([1e-4, 1e-3, 1e-2])  # Adam's ReLU(PE) preset


def test_full_batch_optimizer_gets_the_whole_image():
    lbfgs = replace(BASE, optimizer="lbfgs")
    assert {c.batch_size for c in sweep_configs(lbfgs)} == {256 * 256}
    assert {c.batch_size for c in evaluation_configs(lbfgs, 0.5, ["a", "b"], [0])} == {256 * 256}
    with pytest.raises(ValueError, match="full-batch optimizer 'lbfgs' is set up for task 'image', not 'occupancy'"):
        sweep_configs(replace(BASE, optimizer="lbfgs", task="occupancy"))


def result(lr, psnr_curve, status="ok", seed=0, optimizer="esgd"):
    """A sweep result with PSNR `psnr_curve` at epochs 0, 5, 10 (cut short if diverged)."""
    config = replace(BASE, seed=seed, optimizer=optimizer, optimizer_options={"lr": lr})
    epochs = [0, 5, 10][: len(psnr_curve)]
    return Result(config=config, status=status, history={"eval_epoch": epochs, "metrics": {"psnr": psnr_curve}})


def test_best_lr_picks_the_last_epoch_psnr_and_diverged_runs_lose():
    results = [
        result(0.05, [10.0, 20.0, 24.0]),
        result(0.15, [10.0, 26.0, 25.0]),  # best at epoch 5 but not at the last
        result(0.5, [10.0, 22.0, 25.5]),
        result(1.5, [10.0, 40.0], status="diverged"),  # highest PSNR before diverging
        result(4.7, [10.0, 21.0, math.nan]),
    ]
    assert best_lr(results) == 0.5
    assert best_lr([result(0.3, [10, 20, 25.0]), result(0.1, [10, 20, 25.0])]) == 0.1  # tie: the lower rate


@pytest.mark.parametrize("results, message", [
    ([], "got none"),
    ([result(0.1, [10, 20, 25]), result(0.3, [10, 20, 26], seed=1)], r"one sweep .*got \[\('esgd', 'sine'"),
    ([result(0.1, [10, 20, 25]), result(0.1, [10, 20, 25], optimizer="adam")], r"one sweep"),
    ([result(0.1, [10, math.inf], status="diverged"), result(0.3, [10], status="diverged")],
     "every run of the sweep of esgd diverged"),
])
def test_best_lr_refuses_what_is_not_one_usable_sweep(results, message):
    with pytest.raises(ValueError, match=message):
        best_lr(results)


def test_evaluation_runs_the_best_rate_and_the_preset_on_every_image_and_seed():
    images = ["div2k:0801", "div2k:0802"]
    tuned = evaluation_configs(BASE, 0.5, images, [0, 1, 2])
    assert [(c.data, c.seed) for c in tuned] == [(i, s) for i in images for s in (0, 1, 2)]
    assert all(c.optimizer_options == {"lr": 0.5} and c.epochs == BASE.epochs for c in tuned)
    preset = evaluation_configs(BASE, None, images, [0])
    assert all(c.optimizer_options == {} for c in preset)
    picked_preset = evaluation_configs(replace(BASE, optimizer_options={"lr": 0.5}), 0.15, images, [0])  # ESGD's preset
    assert [c.key() for c in picked_preset] == [c.key() for c in preset]
    with pytest.raises(ValueError, match=r"needs images and seeds; got images=\[\], seeds=\[0\]"):
        evaluation_configs(BASE, 0.5, [], [0])


def test_peak_memory_grows_with_the_batch_and_the_curvature(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path))
    config = replace(BASE, resolution=64, optimizer="adam", batch_size=64)
    small, large, esgd = peak_memory([config, replace(config, batch_size=4096), replace(config, optimizer="esgd",
                                                                                        batch_size=4096)])
    # batch 4096: four 256-wide activations and their gradients, 4 bytes each, are ~16 MiB at least
    assert 0 <= small < 10 and large > small + 12 and esgd > large


def test_peak_memory_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path))
    config = replace(BASE, resolution=32, optimizer="adam", batch_size=64)
    measured = peak_memory([config])
    monkeypatch.setattr("pnf.studies.beyond_paper._measure", lambda *job: pytest.fail("measured again"))
    assert peak_memory([config]) == measured and len(list((tmp_path / "analyses").glob("peak-memory-*"))) == 1
    with pytest.raises(pytest.fail.Exception, match="measured again"):  # another batch is another measurement
        peak_memory([replace(config, batch_size=128)])


@pytest.mark.parametrize("steps", [0, -1, 2.5, True])
def test_peak_memory_refuses_a_bad_number_of_steps(steps):
    with pytest.raises(ValueError, match=f"steps must be an integer ≥ 1, not {steps!r}"):
        peak_memory([BASE], steps)
