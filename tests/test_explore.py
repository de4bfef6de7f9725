"""The explorer reuses the image reports' runs, picks the right snapshot, and says what it trains."""

import numpy as np

from pnf.report import explorer as explore
from pnf.runs.cache import Result, run
from pnf.tasks.image import IMAGE


def test_explorer_config_is_the_reports_config_at_lr_scale_one():
    config = explore.explorer_config("quick", "image", "sine", "esgd")
    reports = IMAGE.configs(IMAGE.settings_for("quick"), IMAGE.default_source(), ["sine"], ["esgd"])[0]
    assert config == reports and config.key() == reports.key()
    scaled = explore.explorer_config("quick", "image", "relu", "esgd", lr_scale=2.0)
    assert scaled.optimizer_options == {"lr": 0.2}  # ESGD's ReLU(PE) preset 0.1, doubled
    assert scaled.key() != config.key()


def test_snapshot_at_takes_the_latest_kept_epoch_not_after_the_chosen_one():
    config = explore.explorer_config("tiny", "image", "sine", "adam")
    snapshots = {1: np.zeros((2, 2, 3)), 10: np.ones((2, 2, 3))}
    result = Result(config, "ok", {}, snapshots)
    assert explore.snapshot_at(result, 0) is None
    assert explore.snapshot_at(result, 5)[0] == 1
    assert explore.snapshot_at(result, 10)[0] == 10
    assert explore.snapshot_at(result, 30)[0] == 10


def test_image_is_explorable():
    assert "image" in explore.explorable_tasks()


def test_the_slider_offers_exactly_the_kept_snapshot_epochs(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path))
    configs = explore.explorer_configs("paper", "image", "sine", ["adam", "esgd"])
    assert explore.kept_epochs(configs) == [10, 200]  # the paper's snapshot at epoch 10 and the last
    box = explore.build_explorer("tiny", dict(task="image", activation="sine", optimizers=["adam"], lr_scale=1.0,
                                              epoch=1))
    config = explore.explorer_config("tiny", "image", "sine", "adam")
    assert list(box.controls["epoch"].options) == sorted({*config.snapshot_epochs, config.epochs}) == [1, 2]
    assert set(run(config).snapshots) == {1, 2}


def test_an_uncached_choice_is_announced_then_its_progress_reaches_the_total(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path))
    box = explore.build_explorer("tiny", dict(task="image", activation="sine", optimizers=["adam", "esgd"],
                                              lr_scale=1.0, epoch=1))
    assert bytes(box.picture.value).startswith(b"\x89PNG")  # the initial view, drawn without any interaction
    assert box.status.value.startswith("trained 2 run(s) in")
    seen = []
    box.bar.observe(lambda change: seen.append((box.status.value, change["new"], box.bar.max)), names="value")
    drawn = bytes(box.picture.value)
    box.controls["lr_scale"].value = 2.0  # new runs: the presets doubled
    assert seen[0][0].startswith("not cached: 2 run(s), about ") and " s (priced by" in seen[0][0]
    assert [value for _, value, _ in seen] == [0, 1, 2, 3, 4]  # two runs of 2 epochs, epoch by epoch
    assert seen[-1][2] == 4 and box.bar.value == box.bar.max
    assert box.status.value.startswith("trained 2 run(s) in") and bytes(box.picture.value) != drawn
    box.controls["lr_scale"].value = 1.0
    assert box.status.value == "all 2 run(s) cached: loaded, nothing trained"
