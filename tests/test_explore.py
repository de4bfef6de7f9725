"""The explorer reuses the image reports' runs and picks the right snapshot."""

import numpy as np

from pnf.report import explorer as explore
from pnf.runs.cache import Result
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
