"""Runs: determinism, caching, divergence."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from pnf.data.fingerprint import fingerprint, source_files
from pnf.data.sources import SOURCES
from pnf.runs import cache as runs
from pnf.runs.cache import RunConfig


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    return tmp_path / "cache"


def tiny(**changes) -> RunConfig:
    config = dict(task="image", activation="sine", optimizer="esgd", data="skimage:astronaut",
                  resolution=16, epochs=3, batch_size=64, snapshot_epochs=(1,))
    return RunConfig(**{**config, **changes})


def test_a_seed_makes_a_cpu_run_bitwise_reproducible():
    first, second = runs.compute(tiny(), progress=False), runs.compute(tiny(), progress=False)
    assert first.history["train_loss"] == second.history["train_loss"]
    assert (first.snapshots[3] == second.snapshots[3]).all()
    other_seed = runs.compute(tiny(seed=1), progress=False)
    assert other_seed.history["train_loss"] != first.history["train_loss"]


def test_history_and_snapshots():
    result = runs.compute(tiny(epochs=4, eval_every=2), progress=False)
    assert result.status == "ok"
    assert result.history["epoch"] == [1, 2, 3, 4]
    assert result.history["eval_epoch"] == [0, 1, 2, 4]  # initial, snapshot epoch, every 2nd
    assert sorted(result.snapshots) == [1, 4] and result.snapshots[4].shape == (16, 16, 3)
    assert result.final("psnr") > result.at_epoch("psnr", 0)
    assert result.seconds > 0


def test_second_call_loads_from_cache_without_training(cache, monkeypatch):
    first = runs.run(tiny(), progress=False)
    assert len(list(cache.iterdir())) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(runs, "compute", no_training)
    again = runs.run(tiny(), progress=False)
    assert again.history == first.history and again.config == first.config
    assert (again.snapshots[1] == first.snapshots[1]).all()


def test_config_changes_change_the_key():
    assert tiny().key() == "1f8cd7245eb8fc68417f"  # embedded data: no file hash in the key (results version 2)
    assert tiny().key() == tiny().key()
    assert tiny().key() != tiny(seed=1).key()
    assert tiny().key() != tiny(optimizer_options={"bias_correction": "refreshes"}).key()


def test_divergence_is_reported_with_its_step_and_cached_as_such(cache, monkeypatch):
    config = tiny(activation="gaussian", optimizer_options={"lr": 1e30})
    result = runs.run(config, progress=False)
    assert result.status == "diverged"
    assert 1 <= result.diverged_step <= 3 * 4
    assert runs.is_cached(config)
    monkeypatch.setattr(runs, "compute", lambda *args, **kwargs: pytest.fail("recomputed a cached divergence"))
    again = runs.run(config, progress=False)
    assert (again.status, again.diverged_step, again.history) == ("diverged", result.diverged_step, result.history)


def test_diverged_error_names_step_and_optimizer():
    from pnf.device import seeded_generator
    from pnf.optim import make_optimizer
    from pnf.tasks import make_task
    from pnf.train import Diverged, train

    config = tiny(activation="gaussian")
    task = make_task(config, torch.device("cpu"))
    model = task.make_model("gaussian")
    optimizer = make_optimizer("esgd", model.parameters(), "gaussian", lr=1e30)
    with pytest.raises(Diverged, match=r"ESGD diverged at step \d+"):
        train(model, optimizer, task, 3, 64, seeded_generator(0, torch.device("cpu")), progress=False)


def test_the_key_covers_the_content_of_every_file_a_scene_folder_reads(tmp_path):
    scene = tmp_path / "scene"
    (scene / "train").mkdir(parents=True)
    (scene / "transforms_train.json").write_text('{"frames": [{"file_path": "./train/r_0"}]}')
    (scene / "train" / "r_0.png").write_bytes(b"view 0")
    (scene / "notes.txt").write_text("not read by the scene")
    assert sorted(source_files(f"blender:{scene}")) == ["scene/train/r_0.png", "scene/transforms_train.json"]
    config = tiny(task="nerf", data=f"blender:{scene}")
    before = config.key()
    (scene / "notes.txt").write_text("changed, and still not read")
    assert config.key() == before
    (scene / "train" / "r_0.png").write_bytes(b"view 0, changed")
    assert config.key() != before
    assert source_files("skimage:astronaut") == {}


def test_an_embedded_source_is_keyed_by_its_revision(monkeypatch):
    config = tiny(task="occupancy", data="embedded:snowman")
    assert fingerprint("embedded:snowman") == {"revision": "marching cubes on a 64³ grid"}
    before = config.key()
    monkeypatch.setitem(SOURCES, "embedded:snowman", replace(SOURCES["embedded:snowman"], revision="another build"))
    assert config.key() != before
    assert fingerprint("skimage:astronaut") == {}  # never revised: keyed by name alone, as before revisions


def test_an_analysis_is_computed_once_then_loaded_and_keyed_by_its_inputs(cache):
    calls = []

    def analysis(value):
        calls.append(value)
        return {"spectrum": np.arange(3.0) * value, "layers": ("a", "b"), "kappa": {"H": math.inf}, "step": None}

    first = runs.memoized("curvature", {"seed": 0}, lambda: analysis(2.0), sources=("skimage:astronaut",))
    again = runs.memoized("curvature", {"seed": 0}, lambda: analysis(5.0), sources=("skimage:astronaut",))
    assert calls == [2.0] and np.array_equal(again["spectrum"], first["spectrum"])
    assert again["layers"] == ["a", "b"] and again["kappa"] == {"H": math.inf} and again["step"] is None
    runs.memoized("curvature", {"seed": 1}, lambda: analysis(3.0))
    assert calls == [2.0, 3.0] and len(list((cache / "analyses").iterdir())) == 2
    assert runs.foreign_files(cache) == []


def test_a_corrupt_analysis_is_reported_and_recomputed(cache):
    runs.memoized("trace", {"seed": 0}, lambda: [1, 2])
    (path,) = (cache / "analyses").iterdir()
    path.write_bytes(b"not an archive")
    with pytest.warns(UserWarning, match=rf"cached analysis .*{path.name} is corrupt.*recomputing"):
        assert runs.memoized("trace", {"seed": 0}, lambda: [3]) == [3]
    assert runs.memoized("trace", {"seed": 0}, lambda: [4]) == [3]
