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

Before anything trains, the cache must be writable, and not by every user (a folder others
can write could be handed planted results); torch's default dtype must be float32, which
the keys assume. A result that still cannot be written after training is returned, with a
warning naming where it could not be stored.

The key changes with `pnf.RESULTS_VERSION`, a number bumped by hand in the commit
that changes what runs compute (a loss, a metric, a default): results of older code
are then recomputed, not mixed in.
"""

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
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
from pnf.checks import ConfigError, env_int
from pnf.config import RunConfig, cache_key
from pnf.data.fingerprint import fingerprint
from pnf.device import default_device, describe, seeded_generator
from pnf.files import atomically
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
KEY = r"[0-9a-f]{20}"
ENTRY = r"result\.json|arrays\.npz|sha256\.json"
JOB = r"\d+(_\d+)?"  # a submitit job id: a process or SLURM job, or an array's job_task
# Where pnf writes in the cache: {a folder, as a regex of its path there: the names of the files
# pnf writes in it (None: only folders)}. Everything else is the user's.
WRITTEN = {
    "": None,
    KEY: ENTRY,
    rf"\.{KEY}-\d+-[0-9a-f]{{8}}": ENTRY,  # a staging entry
    r"\.partial": None,
    rf"\.partial/{KEY}": r"\.?epoch-\d+\.(pt|sha256)(\.\d+\.part)?",  # checkpoints (pnf.checkpoint)
    "analyses": rf"\.?[a-z_-]+-{KEY}(\.\d+)?\.npz(\.\d+\.part)?",  # an analysis; staged (older pnf: .<name>-<key>.<pid>.npz)
    r"\.corrupt": None,
    rf"\.corrupt/{KEY}-[0-9a-f]{{8}}": ENTRY,  # an entry set aside
    r"\.submitit": r"[0-9a-f]{32}\.pkl|\.submission_file_[0-9a-f]{32}\.sh",  # submitit's staging files
    rf"\.submitit/{JOB}": rf"{JOB}_(submission\.sh|submitted\.pkl|\d+_result\.pkl|\d+_log\.(out|err))",
}
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class CorruptEntry(RuntimeError):
    """A cache entry that cannot be read back as it was written."""


def cache_dir() -> Path:
    """The cache folder: `PNF_CACHE`, else `~/.cache/pnf`; ConfigError if it is not a folder
    or every user may write into it."""
    value = os.environ.get("PNF_CACHE")
    folder = Path.home() / ".cache" / "pnf" if value is None else Path(value).expanduser()
    if value is not None and (not value.strip() or (folder.exists() and not folder.is_dir())):
        raise ConfigError(f"PNF_CACHE={value!r} is not a folder: set it to one, or unset it (default ~/.cache/pnf)")
    if folder.is_dir() and folder.stat().st_mode & stat.S_IWOTH:
        raise ConfigError(f"the cache folder {folder} (PNF_CACHE) is writable by every user, who could plant results "
                          f"or checkpoints in it: `chmod o-w {shlex.quote(str(folder))}`, or set PNF_CACHE to a "
                          "folder of your own")
    return folder


def check_writable(folder: Path, setting: str) -> None:
    """ConfigError naming `setting` unless a file can be made in `folder` (tried for real,
    since permission bits do not tell for root or a read-only disk); folders it had to
    make for the try are removed again."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"{setting}={str(folder)!r} is not writable ({error.strerror or error}): make it "
                          f"writable, or set {setting} to a folder you can write") from None
    finally:
        for path in missing:
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def check_process() -> None:
    """ConfigError unless torch's default dtype is float32: the runs' keys assume it (a
    float64 default trains in float64 and would cache under the float32 key)."""
    dtype = torch.get_default_dtype()
    if dtype != torch.float32:
        raise ConfigError(f"torch's default dtype is {str(dtype).removeprefix('torch.')} (set earlier in this "
                          "process), but pnf trains and caches runs in float32: call "
                          "torch.set_default_dtype(torch.float32) first")


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
    check_process()
    check_writable(cache_dir(), "PNF_CACHE")
    # epochs between checkpoints: PNF_CHECKPOINT_EVERY, default 5
    checkpoints = Checkpoints(cache_dir() / ".partial" / config.key(), env_int("PNF_CHECKPOINT_EVERY", 5))
    result = compute(config, progress=progress, checkpoints=checkpoints)
    try:
        save(result, entry)
    except OSError as error:
        warnings.warn(f"{config.label}: the result could not be written to the cache at {entry} "
                      f"({error}); it is returned uncached (its checkpoints stay in {checkpoints.folder})",
                      stacklevel=2)
        return result
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
    check_process()
    check_writable(cache_dir(), "PNF_CACHE")
    value, arrays = compute(), {}
    structure = json.dumps(_split(value, arrays))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomically(path) as staging, open(staging, "wb") as file:
            np.savez_compressed(file, structure=np.array(structure), **arrays)
    except OSError as error:
        warnings.warn(f"the {name} analysis could not be written to the cache at {path} ({error}); "
                      "it is returned uncached", stacklevel=2)
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
    check_process()
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


def sort_cache(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(the files pnf wrote, the folders they are in, everything else) in cache `folder`,
    by `WRITTEN`: a file counts as pnf's by its name and where it is; a folder pnf does not
    write, a link or an unknown file is the user's, and is not looked into."""
    files, folders, others = [], [], []

    def visit(directory: Path, relative: str) -> None:
        names = WRITTEN[next(place for place in WRITTEN if re.fullmatch(place, relative))]
        for item in sorted(directory.iterdir()):
            path = f"{relative}/{item.name}".lstrip("/")
            if item.is_dir() and not item.is_symlink() and any(re.fullmatch(place, path) for place in WRITTEN):
                visit(item, path)
            elif item.is_file() and not item.is_symlink() and names and re.fullmatch(names, item.name):
                files.append(item)
            else:
                others.append(item)
        folders.append(directory)  # after its subfolders

    visit(folder, "")
    return files, folders, others


def foreign_files(folder: Path) -> list[Path]:
    """What in cache `folder` pnf did not write (see `WRITTEN`)."""
    return sort_cache(folder)[2]


def clear_cache(folder: Path | None = None) -> int:
    """Delete the files pnf wrote in cache `folder` (default `cache_dir()`), and the folders
    of pnf's that this empties; return how many files and folders that was. Everything
    else is left where it is, and named in a warning."""
    folder = folder or cache_dir()
    if not folder.exists():
        return 0
    files, folders, others = sort_cache(folder)
    for file in files:
        file.unlink()
    emptied = 0
    for place in folders[:-1]:  # deepest first; the cache folder itself stays
        if not any(place.iterdir()):
            place.rmdir()
            emptied += 1
    if others:
        shown = ", ".join(str(path) for path in others[:5]) + (" ..." if len(others) > 5 else "")
        warnings.warn(f"{folder}: left {len(others)} file(s) or folder(s) pnf did not write: {shown}", stacklevel=2)
    return len(files) + emptied
