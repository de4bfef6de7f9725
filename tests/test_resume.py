"""Runs that survive: SIGKILL and resume, corrupt checkpoints, concurrent writers, executors."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from pnf.checkpoint import Checkpoints
from pnf.runs import cache as runs
from pnf.runs.executors import execute, run_all
from pnf.tasks import grid


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    return tmp_path / "cache"


def tiny(epochs=6, **changes):
    config = [c for c in grid("tiny", ["image"]) if c.activation == "sine" and c.optimizer == "esgd"][0]
    return replace(config, epochs=epochs, **changes)


def cli(*args, env):
    return [sys.executable, "-m", "pnf", "run", "--task", "image", "--activation", "sine",
            "--optimizer", "esgd", "--profile", "tiny", *args]


def test_a_run_killed_with_sigkill_resumes_bitwise(cache, tmp_path):
    epochs = 40
    config = tiny(epochs)
    env = {**os.environ, "PNF_CHECKPOINT_EVERY": "2"}
    process = subprocess.Popen(cli("--epochs", str(epochs), env=env), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = cache / ".partial" / config.key()
    deadline = time.time() + 120
    while not list(partial.glob("epoch-0000[4-9].sha256")) and time.time() < deadline:
        assert process.poll() is None, "the run finished before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint = Checkpoints(partial, 2).latest()
    assert checkpoint is not None and 4 <= checkpoint["history"]["epoch"][-1] < epochs
    assert not (cache / config.key()).exists()

    resumed = runs.run(config, progress=False)
    uninterrupted = runs.compute(config, progress=False)
    assert resumed.history["train_loss"] == uninterrupted.history["train_loss"]
    assert resumed.history["metrics"] == uninterrupted.history["metrics"]
    assert (resumed.snapshots[epochs] == uninterrupted.snapshots[epochs]).all()
    assert not partial.exists()  # checkpoints are cleared once the result is cached


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(cache, tmp_path):
    config = tiny(6)
    checkpoints = Checkpoints(tmp_path / "ckpt", every=2)
    runs.compute(config, progress=False, checkpoints=checkpoints)
    saved = sorted(p.name for p in (tmp_path / "ckpt").glob("*.pt"))
    assert saved == ["epoch-00002.pt", "epoch-00004.pt"]
    newest = tmp_path / "ckpt" / "epoch-00004.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(UserWarning, match="truncated or corrupt"):
        assert checkpoints.latest()["history"]["epoch"][-1] == 2
    with pytest.warns(UserWarning):
        recovered = runs.compute(config, progress=False, checkpoints=checkpoints)
    assert recovered.history["train_loss"] == runs.compute(config, progress=False).history["train_loss"]


def test_concurrent_writers_of_one_key_leave_one_valid_entry(cache):
    env = dict(os.environ)
    writers = [subprocess.Popen(cli("--epochs", "2", env=env), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL) for _ in range(2)]
    assert all(w.wait(timeout=240) == 0 for w in writers)
    entries = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and entries[0].name == tiny(2).key()
    assert runs.load(entries[0]).status == "ok"
    assert not [p for p in cache.iterdir() if p.name.startswith(f".{entries[0].name}-")]  # no staging left


def test_submitit_local_executor_fills_the_cache_that_notebooks_read(cache, monkeypatch):
    configs = [tiny(2, seed=0), tiny(2, seed=1)]
    computed = execute(configs, kind="local", progress=False)
    assert sorted(computed) == sorted(c.key() for c in configs)
    assert all(runs.is_cached(c) for c in configs)

    def no_training(*args, **kwargs):
        raise AssertionError("aggregation trained instead of reading the cache")

    monkeypatch.setattr(runs, "compute", no_training)
    aggregated = run_all(configs, progress=False)
    assert [r.config.seed for r in aggregated] == [0, 1]
    assert aggregated[0].history["train_loss"] != aggregated[1].history["train_loss"]


def test_unknown_executor_is_rejected(cache):
    with pytest.raises(ValueError, match="unknown executor"):
        execute([tiny(1)], kind="mpi")
