"""Runs: a small typed config in, a cached result out.

`run(config)` trains once and stores the result under a hash of the config (and of
`pnf.RESULTS_VERSION`), so a second call, a re-executed notebook or a report built
after a sweep only loads. The cache folder is `PNF_CACHE`, else `~/.cache/pnf`
(`make` points it at `reports/cache/`). Each entry is a folder `<key>/` with
`result.json` (config, history, timings, provenance) and `arrays.npz` (reconstructions),
written to a temporary folder and renamed into place, so an interrupted run never
leaves a half-written entry. Diverged runs are returned, never cached. A run in
progress checkpoints to `.partial/<key>/` every few epochs and resumes from there.

The key changes with `pnf.RESULTS_VERSION`, a number bumped by hand in the commit
that changes what runs compute (a loss, a metric, a default): results of older code
are then recomputed, not mixed in.
"""

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import pnf
from pnf.checkpoint import Checkpoints
from pnf.config import RunConfig
from pnf.device import default_device, describe, seeded_generator
from pnf.optim import make_optimizer
from pnf.tasks import make_task
from pnf.train import Diverged, train


@dataclass
class Result:
    """What a run produced. `history` holds per-epoch lists (see `pnf.train.History`);
    `snapshots` maps an epoch to the task's reconstruction at that epoch."""

    config: RunConfig
    status: str  # "ok" or "diverged"
    history: dict
    snapshots: dict = field(default_factory=dict)
    seconds: float = 0.0  # training wall time, evaluation excluded
    provenance: dict = field(default_factory=dict)
    diverged_step: int | None = None

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of metric `name` at the evaluated epochs."""
        return np.asarray(self.history["eval_epoch"]), np.asarray(self.history["metrics"][name])

    def at_epoch(self, name: str, epoch: int) -> float:
        """Metric `name` at `epoch` (which must have been evaluated)."""
        epochs, values = self.metric(name)
        matches = np.nonzero(epochs == epoch)[0]
        if len(matches) == 0:
            raise KeyError(f"{self.config.label}: {name} was not evaluated at epoch {epoch}")
        return float(values[matches[0]])

    def final(self, name: str) -> float:
        return float(self.metric(name)[1][-1])

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.history["seconds"])) if self.history.get("seconds") else float("nan")


def cache_dir() -> Path:
    return Path(os.environ.get("PNF_CACHE", Path.home() / ".cache" / "pnf"))


def checkpoint_every() -> int:
    """Epochs between checkpoints of a running config (`PNF_CHECKPOINT_EVERY`, default 5)."""
    return int(os.environ.get("PNF_CHECKPOINT_EVERY", 5))


def is_cached(config: RunConfig) -> bool:
    return (cache_dir() / config.key() / "result.json").exists()


def run(config: RunConfig, progress: bool = True) -> Result:
    """The result of `config`: loaded from the cache, or trained (resuming from its
    checkpoints if an earlier attempt was interrupted) and then cached."""
    entry = cache_dir() / config.key()
    if is_cached(config):
        return load(entry)
    checkpoints = Checkpoints(cache_dir() / ".partial" / config.key(), checkpoint_every())
    result = compute(config, progress=progress, checkpoints=checkpoints)
    if result.status == "ok":
        save(result, entry)
    checkpoints.clear()
    return result


def compute(config: RunConfig, progress: bool = True, checkpoints: Checkpoints | None = None) -> Result:
    """Train `config`, ignoring the cache (but resuming from `checkpoints` if given)."""
    device = default_device()
    generator = seeded_generator(config.seed, device)
    task = make_task(config, device)
    model = task.make_model(config.activation, **config.field_options)
    optimizer = make_optimizer(
        config.optimizer, model.parameters(), config.activation, seed=config.seed, model=model,
        **config.optimizer_options,
    )
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        history = train(
            model, optimizer, task, config.epochs, config.batch_size, generator,
            eval_every=config.eval_every, snapshot_epochs=config.snapshot_epochs,
            progress=progress, description=config.label, checkpoints=checkpoints,
        )
    except Diverged as diverged:
        return Result(config, "diverged", diverged.history, provenance=provenance(device, started),
                      diverged_step=diverged.step)
    return Result(config, "ok", history.curves(), history.snapshots, float(sum(history.seconds)),
                  provenance(device, started))


def provenance(device: torch.device, started: str) -> dict:
    """Where and with what code a result was computed."""
    return {
        "pnf_version": pnf.__version__,
        "results_version": pnf.RESULTS_VERSION,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "device": describe(device),
        "host": platform.node(),
        "started": started,
    }


def git_commit() -> str:
    """The commit of the pnf checkout (with `+dirty` when it has changes), or "unknown"."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pnf"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def save(result: Result, entry: Path) -> None:
    """Write `result` to `entry/` atomically: a temporary sibling folder renamed into place."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        record = {
            "config": asdict(result.config), "status": result.status, "history": result.history,
            "seconds": result.seconds, "provenance": result.provenance, "diverged_step": result.diverged_step,
        }
        (staging / "result.json").write_text(json.dumps(record))
        np.savez_compressed(staging / "arrays.npz", **{f"snapshot_{e}": a for e, a in result.snapshots.items()})
        try:
            staging.rename(entry)
        except OSError:  # another process stored the same key first: keep theirs
            if not (entry / "result.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load(entry: Path) -> Result:
    record = json.loads((entry / "result.json").read_text())
    config = record["config"]
    config["snapshot_epochs"] = tuple(config["snapshot_epochs"])
    with np.load(entry / "arrays.npz") as arrays:
        snapshots = {int(name.split("_")[1]): arrays[name] for name in arrays.files}
    return Result(RunConfig(**config), record["status"], record["history"], snapshots, record["seconds"],
                  record["provenance"], record["diverged_step"])
