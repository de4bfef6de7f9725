"""Probes of the tasks' settings: each feeds one out-of-range setting and expects
a ConfigError naming the setting, the bad value and what is accepted, raised before
anything is loaded or trained, and nothing left in the cache.

| probe | before | after |
|---|---|---|
| occupancy pool_size 0 / -1 / 1.5 | raw numpy/torch errors | "pool_size must be an integer ≥ 1" |
| occupancy uniform_fraction 1.5 / -0.1 / NaN | "negative dimensions", NaN to integer | "a number from 0 to 1" |
| occupancy surface_sigma 0 / -1 / NaN | trained, "scale < 0", diverged | "a positive number" |
| occupancy points_per_epoch 0 / 2.5 | silently the batch size / raw torch error | "an integer ≥ 1" |
| nerf samples 0 / -1 / 2.5 | ZeroDivisionError / raw torch errors | "an integer ≥ 1" |
| nerf without samples | TypeError (missing argument) | the paper settings' 64 |
| seed 2^64 | OverflowError at training | "from 0 to 2^63 − 1" |
| resolution 10^5-10^6, batch 10^12 | allocation errors (or the OOM killer) | "needs about N GiB; this machine has M GiB" |
"""

import math
import re

import pytest
import torch

from pnf.checks import ConfigError
from pnf.config import MAX_SEED, RunConfig
from pnf.runs.cache import run
from pnf.tasks import make_task

DATA = {"image": "skimage:astronaut", "occupancy": "embedded:snowman", "nerf": "embedded"}
TINY_FIELD = {"hidden_features": 8, "hidden_layers": 1}
FRACTION = "occupancy option uniform_fraction must be a number"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache and data folder; the cache's files after the probe."""
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DATA", str(tmp_path))
    return tmp_path / "cache"


def config(task: str, resolution: int = 8, batch_size: int = 16, **fields) -> RunConfig:
    return RunConfig(task=task, activation="relu", optimizer="adam", data=DATA[task], resolution=resolution,
                     epochs=1, batch_size=batch_size, field_options=TINY_FIELD, **fields)


@pytest.mark.parametrize("task, options, message", [
    ("occupancy", {"pool_size": 0}, "occupancy option pool_size must be an integer ≥ 1, not 0"),
    ("occupancy", {"pool_size": -1}, "occupancy option pool_size must be an integer ≥ 1, not -1"),
    ("occupancy", {"pool_size": 1.5}, "occupancy option pool_size must be an integer ≥ 1, not 1.5"),
    ("occupancy", {"uniform_fraction": 1.5}, f"{FRACTION} from 0 to 1, not 1.5"),
    ("occupancy", {"uniform_fraction": -0.1}, f"{FRACTION} from 0 to 1, not -0.1"),
    ("occupancy", {"uniform_fraction": math.nan}, f"{FRACTION} from 0 to 1, not nan"),
    ("occupancy", {"surface_sigma": 0}, "occupancy option surface_sigma must be a positive number, not 0"),
    ("occupancy", {"surface_sigma": -1}, "occupancy option surface_sigma must be a positive number, not -1"),
    ("occupancy", {"surface_sigma": math.inf}, "occupancy option surface_sigma must be a positive number, not inf"),
    ("occupancy", {"points_per_epoch": 0}, "occupancy option points_per_epoch must be an integer ≥ 1, not 0"),
    ("occupancy", {"points_per_epoch": 2.5}, "occupancy option points_per_epoch must be an integer ≥ 1, not 2.5"),
    ("nerf", {"samples": 0}, "nerf option samples must be an integer ≥ 1, not 0"),
    ("nerf", {"samples": -1}, "nerf option samples must be an integer ≥ 1, not -1"),
    ("nerf", {"samples": 2.5}, "nerf option samples must be an integer ≥ 1, not 2.5"),
    ("nerf", {"samples": True}, "nerf option samples must be an integer ≥ 1, not True"),
])
def test_a_task_option_out_of_range_is_refused_before_training_and_leaves_nothing(cache, task, options, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        run(config(task, task_options=options), progress=False)
    assert not cache.exists() or not any(cache.rglob("*"))


def test_the_options_at_their_limits_are_accepted():
    device = torch.device("cpu")
    for options in ({"pool_size": 64, "uniform_fraction": 0.0}, {"pool_size": 64, "uniform_fraction": 1.0},
                    {"pool_size": 64, "surface_sigma": 1e-9, "points_per_epoch": 1}):
        points, labels = make_task(config("occupancy", task_options=options), device).labelled_points
        assert points.shape == (64, 3) and labels.shape == (64, 1)
    assert make_task(config("nerf", batch_size=4, task_options={"samples": 1}), device).samples == 1


def test_nerf_without_a_samples_option_takes_the_papers_64():
    task = make_task(config("nerf", batch_size=4), torch.device("cpu"))
    assert task.samples == 64 and task.make_model("relu", **TINY_FIELD).samples == 64


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 1.0])
def test_a_seed_outside_what_torch_takes_is_refused_when_the_config_is_made(seed):
    with pytest.raises(ConfigError, match=f"^seed must be an integer from 0 to {2**63 - 1}, not {seed!r}$"):
        config("image", seed=seed)


def test_the_largest_seed_seeds_every_stream():
    task = make_task(config("nerf", batch_size=4, seed=MAX_SEED), torch.device("cpu"))
    torch.manual_seed(MAX_SEED)
    assert task.make_model("relu", **TINY_FIELD).generator.initial_seed() == MAX_SEED + 7919  # below 2^64


@pytest.mark.parametrize("task, fields, needs", [
    ("image", {"resolution": 10**6}, r"image resolution 1000000 \(1000000² pixels\) needs about 93,132 GiB"),
    ("occupancy", {"resolution": 10**5},
     r"occupancy resolution 100000 \(a 100000³ grid\) needs about 238,418,579 GiB"),
    ("occupancy", {"batch_size": 10**12}, r"1,000,000,000,000 occupancy points an epoch needs about 44,703 GiB"),
    ("occupancy", {"task_options": {"pool_size": 10**12}},
     r"occupancy option pool_size = 1,000,000,000,000 needs about 119,209 GiB"),
    ("nerf", {"resolution": 10**5},
     r"nerf resolution 100000 \(44 embedded views of 100000²\) needs about 901,520 GiB"),
    ("nerf", {"batch_size": 10**6, "task_options": {"samples": 10**6}},
     r"nerf option samples = 1,000,000 with batch_size 1,000,000 needs about 59,605 GiB"),
])
def test_a_size_beyond_the_machines_memory_is_refused_before_allocation(cache, task, fields, needs):
    with pytest.raises(ConfigError, match=f"^{needs} of memory; this machine has [0-9,]+ GiB: use a smaller value$"):
        run(config(task, **fields), progress=False)
    assert not cache.exists() or not any(cache.rglob("*"))
