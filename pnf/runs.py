"""Runs: a small typed config in, a cached result out.

`run(config)` trains once and stores the result under a hash of the config (and of
`pnf.RESULTS_VERSION`), so a second call, a re-executed notebook or a report built
after a sweep only loads. The cache folder is `PNF_CACHE`, else `~/.cache/pnf`
(`make` points it at `reports/cache/`). Each entry is a folder `<key>/` with
`result.json` (config, history, timings, provenance), `arrays.npz` (reconstructions)
and `sha256.json` (their checksums), written to a staging folder `.<key>-*` and renamed
into place, so an interrupted run never leaves a half-written entry. An entry that does
not match its checksums or does not parse is reported, moved to `.corrupt/` and
recomputed. A diverged run is cached like any other (with its step): it diverges again
the same way, so a second build does not train it again. A run in progress checkpoints to
`.partial/<key>/` every few epochs and resumes from there. An analysis that is not a run
(a curvature spectrum, a trace) is cached by `memoized` as `analyses/<name>-<key>.npz`.
Everything follows the umask.

The key changes with `pnf.RESULTS_VERSION`, a number bumped by hand in the commit
that changes what runs compute (a loss, a metric, a default): results of older code
are then recomputed, not mixed in.
"""

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
import uuid
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import pnf
from pnf.checkpoint import Checkpoints
from pnf.config import ConfigError, RunConfig, cache_key, env_int
from pnf.data.fingerprint import fingerprint
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
        if epoch not in self.history["eval_epoch"]:
            raise KeyError(f"{self.config.label}: {name} was not evaluated at epoch {epoch}")
        return float(self.history["metrics"][name][self.history["eval_epoch"].index(epoch)])

    def final(self, name: str) -> float:
        return float(self.metric(name)[1][-1])

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.history["seconds"])) if self.history.get("seconds") else float("nan")


ENTRY_FILES = ("result.json", "arrays.npz")
CHECKSUMS = "sha256.json"  # {entry file: sha256}
KEY = re.compile(r"[0-9a-f]{20}")
STAGING = re.compile(r"\.[0-9a-f]{20}-.+")
CHECKPOINT = re.compile(r"epoch-\d+\.(pt|sha256)(\.\d+\.part)?")
ANALYSIS = re.compile(r"[a-z_]+-[0-9a-f]{20}\.npz|\.[a-z_]+-[0-9a-f]{20}\.\d+\.npz")
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class CorruptEntry(RuntimeError):
    """A cache entry that cannot be read back as it was written."""


def cache_dir() -> Path:
    """The cache folder: `PNF_CACHE`, else `~/.cache/pnf`."""
    value = os.environ.get("PNF_CACHE")
    if value is None:
        return Path.home() / ".cache" / "pnf"
    folder = Path(value).expanduser()
    if not value.strip() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"PNF_CACHE={value!r} is not a folder: set it to one, or unset it (default ~/.cache/pnf)")
    return folder


def is_cached(config: RunConfig) -> bool:
    return (cache_dir() / config.key() / "result.json").exists()


def run(config: RunConfig, progress: bool = True) -> Result:
    """The result of `config`: loaded from the cache, or trained (resuming from its
    checkpoints if an earlier attempt was interrupted) and then cached."""
    entry = cache_dir() / config.key()
    if is_cached(config):
        try:
            return load(entry)
        except CorruptEntry as corrupt:
            warnings.warn(f"{corrupt}; moved to {set_aside(entry)}, recomputing", stacklevel=2)
    # epochs between checkpoints: PNF_CHECKPOINT_EVERY, default 5
    checkpoints = Checkpoints(cache_dir() / ".partial" / config.key(), env_int("PNF_CHECKPOINT_EVERY", 5))
    result = compute(config, progress=progress, checkpoints=checkpoints)
    save(result, entry)
    checkpoints.clear()
    return result


def memoized(name: str, inputs: dict, compute: Callable[[], object], sources: tuple[str, ...] = ()) -> object:
    """`compute()`, cached like a run: stored in `<cache>/analyses/<name>-<key>.npz`, the
    key a hash of `inputs` (JSON-able), of `pnf.RESULTS_VERSION` and of the content of the
    data `sources` it reads. The value is nested dicts (string keys), lists, numbers,
    strings, None and numpy arrays (tuples come back as lists); it is stored without
    pickling, written under a temporary name and renamed into place. A file that cannot be
    read back is reported and recomputed."""
    key = cache_key({"inputs": inputs, "data_sha256": {source: fingerprint(source) for source in sources}})
    path = cache_dir() / "analyses" / f"{name}-{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {array: stored[array] for array in stored.files}
            return _join(json.loads(str(arrays.pop("structure"))), arrays)
        except READ_ERRORS as error:
            warnings.warn(f"cached analysis {path} is corrupt ({type(error).__name__}: {error}); recomputing",
                          stacklevel=2)
    value, arrays = compute(), {}
    structure = json.dumps(_split(value, arrays))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.stem}.{os.getpid()}.npz"
    np.savez_compressed(staging, structure=np.array(structure), **arrays)
    staging.replace(path)
    return value


def _split(value, arrays: dict):
    """`value` as JSON: each numpy array replaced by `{"array": name}` and put in `arrays`."""
    if isinstance(value, np.ndarray):
        arrays[f"a{len(arrays)}"] = value
        return {"array": f"a{len(arrays) - 1}"}
    if isinstance(value, dict):
        return {"dict": {key: _split(item, arrays) for key, item in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_split(item, arrays) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def _join(value, arrays: dict):
    """The inverse of `_split`."""
    if isinstance(value, dict):
        return arrays[value["array"]] if "array" in value else {k: _join(v, arrays) for k, v in value["dict"].items()}
    return [_join(item, arrays) for item in value] if isinstance(value, list) else value


def compute(config: RunConfig, progress: bool = True, checkpoints: Checkpoints | None = None) -> Result:
    """Train `config`, ignoring the cache (but resuming from `checkpoints` if given)."""
    device = default_device()
    generator = seeded_generator(config.seed, device)
    task = make_task(config, device)
    model = task.make_model(config.activation, **config.field_options)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.activation, seed=config.seed,
                               model=model, **config.optimizer_options)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        history = train(model, optimizer, task, config.epochs, config.batch_size, generator,
                        eval_every=config.eval_every, snapshot_epochs=config.snapshot_epochs,
                        progress=progress, description=config.label, checkpoints=checkpoints)
    except Diverged as diverged:
        return Result(config, "diverged", diverged.history, provenance=provenance(device, started),
                      diverged_step=diverged.step)
    return Result(config, "ok", history.curves(), history.snapshots, float(sum(history.seconds)),
                  provenance(device, started))


def provenance(device: torch.device, started: str) -> dict:
    """Where and with what code a result was computed."""
    return {"pnf_version": pnf.__version__, "results_version": pnf.RESULTS_VERSION, "git_commit": git_commit(),
            "torch_version": torch.__version__, "device": describe(device), "host": platform.node(),
            "started": started}


def git_commit() -> str:
    """The commit of the pnf checkout (with `+dirty` when it has changes), or "unknown"."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", "pnf")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def save(result: Result, entry: Path) -> None:
    """Write `result` to `entry/` atomically: a staging sibling renamed into place (made
    with `mkdir`, so it follows the umask, where `tempfile.mkdtemp` would make it private)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = entry.parent / f".{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        record = asdict(result)
        del record["snapshots"]  # they go to arrays.npz
        (staging / "result.json").write_text(json.dumps(record))
        np.savez_compressed(staging / "arrays.npz", **{f"snapshot_{e}": a for e, a in result.snapshots.items()})
        (staging / CHECKSUMS).write_text(json.dumps({name: file_sha256(staging / name) for name in ENTRY_FILES}))
        try:
            staging.rename(entry)
        except OSError:  # another process stored the same key first: keep theirs
            if not (entry / "result.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load(entry: Path) -> Result:
    """The result stored in `entry/`; CorruptEntry (naming the entry) if it is not as written."""
    record = read_record(entry)
    with reading(entry):
        config = {**record["config"], "snapshot_epochs": tuple(record["config"]["snapshot_epochs"])}
        with np.load(entry / "arrays.npz", allow_pickle=False) as arrays:
            snapshots = {int(name.split("_")[1]): arrays[name] for name in arrays.files}
        return Result(**{**record, "config": RunConfig(**config), "snapshots": snapshots})


def read_record(entry: Path) -> dict:
    """`entry/result.json`, once the entry's files match their checksums (entries written
    before checksums existed are only parsed); CorruptEntry naming the entry otherwise."""
    with reading(entry):
        if (entry / CHECKSUMS).exists():
            recorded = json.loads((entry / CHECKSUMS).read_text())
            changed = [name for name in ENTRY_FILES if file_sha256(entry / name) != recorded.get(name)]
            if changed:
                raise ValueError(f"{', '.join(changed)} differ from the sha256 in {CHECKSUMS}")
        return json.loads((entry / "result.json").read_text())


@contextmanager
def reading(entry: Path):
    """Turn any error reading `entry/` into a CorruptEntry naming the entry."""
    try:
        yield
    except READ_ERRORS as error:
        raise CorruptEntry(f"cache entry {entry} is corrupt ({type(error).__name__}: {error})") from error


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_aside(entry: Path) -> Path:
    """Move a corrupt entry into the cache's `.corrupt/` folder (for inspection); its new path."""
    target = entry.parent / ".corrupt" / f"{entry.name}-{uuid.uuid4().hex[:8]}"
    target.parent.mkdir(exist_ok=True)
    try:
        entry.rename(target)
    except FileNotFoundError:  # another process moved it first
        pass
    return target


def foreign_files(folder: Path) -> list[Path]:
    """What in cache `folder` pnf did not write. pnf writes entries `<key>/` (with
    ENTRY_FILES and CHECKSUMS), their staging folders `.<key>-*`, checkpoints
    `.partial/<key>/epoch-*`, analyses `analyses/<name>-<key>.npz` (and their staging
    files), and the folders `.corrupt/` and `.submitit/`."""
    found = []
    for item in sorted(folder.iterdir()):
        if item.is_symlink() or not item.is_dir():
            found.append(item)
        elif item.name == ".partial":
            for run in sorted(item.iterdir()):
                if run.is_symlink() or not run.is_dir() or not KEY.fullmatch(run.name):
                    found.append(run)
                else:
                    found += [f for f in sorted(run.iterdir()) if not CHECKPOINT.fullmatch(f.name)]
        elif item.name == "analyses":
            found += [f for f in sorted(item.iterdir())
                      if f.is_symlink() or not f.is_file() or not ANALYSIS.fullmatch(f.name)]
        elif KEY.fullmatch(item.name) or STAGING.fullmatch(item.name):
            found += [f for f in sorted(item.iterdir()) if f.name not in (*ENTRY_FILES, CHECKSUMS)]
        elif item.name not in (".corrupt", ".submitit"):
            found.append(item)
    return found


def clear_cache(folder: Path | None = None) -> int:
    """Delete everything pnf wrote in the cache `folder` (default `cache_dir()`), and return
    how many items that was; refuse, deleting nothing, if it holds anything else."""
    folder = folder or cache_dir()
    if not folder.exists():
        return 0
    foreign = foreign_files(folder)
    if foreign:
        shown = ", ".join(str(path) for path in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ConfigError(f"PNF_CACHE={str(folder)!r} holds {len(foreign)} file(s) or folder(s) pnf did not write "
                          f"({shown}); nothing was deleted. Point PNF_CACHE at pnf's own cache folder")
    items = list(folder.iterdir())
    for item in items:
        shutil.rmtree(item)
    return len(items)
