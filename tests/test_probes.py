"""Probes of runs, the cache and every setting: each feeds one bad input or
fault and expects a clear error (naming the setting, the bad value and what is accepted)
or the correct result, and leaves nothing behind (the cache folder is checked).

| probe | before | after |
|---|---|---|
| image replaced at the same path | old result (stale) | new key, the new image's result |
| `--epochs -3` / `--epochs 0` | "ok", nothing trained / the profile's epochs | error: integer ≥ 1 |
| epochs, batch_size, eval_every 0; resolution 0, 1, -5; seed -1 | ok / ZeroDivision / torch error | ConfigError |
| `--option lr=0,05` / `--option learning_rate=0.1` | JSONDecodeError / TypeError deep | "not JSON" / "it takes lr, ..." |
| option `lr="abc"`, `betas=5`; options not a dict | TypeError deep in torch | "is a number" / "is a list" / "a dict" |
| unknown activation / optimizer / task / executor | listed (after import) | listed, before any run |
| PNF_WORKERS=0, PNF_CHECKPOINT_EVERY=abc, PNF_DEVICE=gpu, PNF_CACHE="" | raw library errors | named, with the form accepted |
| PNF_DATA a missing folder, a file or "" | the embedded astronaut, no word | named, with the form accepted |
| a report's `data_dir`, then a report without | the second reads the first's folder | the default again |
| truncated result.json, missing or garbage arrays.npz | JSONDecodeError / crash | warned with path, set aside, recomputed |
| arrays.npz holding a pickle | numpy's allow_pickle advice | refused, never unpickled |
| cache entries under umask 002 | drwx------ | drwxrwxr-x |

Clearing the cache, its permissions and the process's default dtype: `test_cache_probes.py`.
"""

import contextlib
import io
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pnf.__main__ import main
from pnf.checks import ConfigError
from pnf.config import RunConfig
from pnf.data import sources
from pnf.data.sources import data_dir
from pnf.device import default_device
from pnf.report import start
from pnf.runs import cache as runs
from pnf.runs.executors import execute
from pnf.tasks import get_task
from pnf.train import train


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    return tmp_path / "cache"


def tiny(**changes) -> RunConfig:
    config = dict(task="image", activation="sine", optimizer="adam", data="skimage:astronaut", resolution=8,
                  epochs=2, batch_size=32)
    return RunConfig(**{**config, **changes})


def empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def cli(*args) -> tuple[int, str]:
    """Exit code and stderr of `python -m pnf run ...` on the tiny profile, in this process."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = main(["run", "--task", "image", "--profile", "tiny", *args])
        except SystemExit as exit_:
            code = exit_.code
    return code, stderr.getvalue()


# --- settings out of range or form: a clear error, and no run starts --------------------

@pytest.mark.parametrize("changes, message", [
    ({"epochs": -3}, "epochs must be an integer ≥ 1, not -3"),
    ({"epochs": 0}, "epochs must be an integer ≥ 1, not 0"),
    ({"epochs": 2.5}, "epochs must be an integer ≥ 1, not 2.5"),
    ({"batch_size": 0}, "batch_size must be an integer ≥ 1, not 0"),
    ({"eval_every": 0}, "eval_every must be an integer ≥ 1, not 0"),
    ({"resolution": 0}, "resolution must be an integer ≥ 2, not 0"),
    ({"resolution": -5}, "resolution must be an integer ≥ 2, not -5"),
    ({"resolution": 1}, "resolution must be an integer ≥ 2, not 1"),
    ({"seed": -1}, "seed must be an integer from 0 to 9223372036854775807, not -1"),
    ({"snapshot_epochs": (5,)}, r"snapshot_epochs \(5,\) must be epochs 1..2"),
    ({"activation": "sinus"}, "unknown activation 'sinus'; registered: .*sine"),
    ({"optimizer": "adamw"}, "unknown optimizer 'adamw'; registered: adam, .*esgd"),
    ({"optimizer_options": {"learning_rate": 0.1}}, "learning_rate: adam has no such hyperparameter; it takes lr, "),
    ({"optimizer_options": {"lr": "abc"}}, r"lr='abc': adam's lr is a number \(preset 0.0001\)"),
    ({"optimizer_options": {"betas": 5}}, r"betas=5: adam's betas is a list \(preset \(0.9, 0.999\)\)"),
    ({"optimizer_options": [("lr", 1)]}, r"optimizer_options must be a dict of settings by name, not \[\('lr', 1\)\]"),
])
def test_a_config_out_of_range_is_refused_where_it_is_made(changes, message, cache):
    with pytest.raises(ConfigError, match=message):
        runs.run(tiny(**changes), progress=False)
    assert empty(cache)


def test_an_unknown_task_is_refused_before_training(cache):
    with pytest.raises(ValueError, match="unknown task 'imag'; registered: image, "):
        runs.run(tiny(task="imag"), progress=False)
    assert empty(cache)


@pytest.mark.parametrize("task, options, message", [
    ("image", {"bogus": 1}, r"task 'image' takes the task options none, not \['bogus'\]"),
    ("occupancy", {"pool": 10}, r"task 'occupancy' takes the task options \['pool_size', .*\], not \['pool'\]"),
])
def test_a_task_option_the_task_does_not_take_is_refused(task, options, message, cache):
    with pytest.raises(ConfigError, match=message):
        runs.run(tiny(task=task, data="embedded:snowman" if task == "occupancy" else "skimage:astronaut",
                      task_options=options), progress=False)
    assert empty(cache)


def test_a_profile_section_with_no_seeds_is_refused():
    settings = get_task("image").settings_for("tiny")
    with pytest.raises(ConfigError, match="seeds must be an integer ≥ 1, not 0"):
        replace(settings, seeds=0)


def test_the_training_loop_refuses_a_batch_of_zero():
    task = get_task("image").build(tiny(), default_device())
    model = task.make_model("sine")
    with pytest.raises(ConfigError, match="batch_size must be an integer ≥ 1, not 0"):
        train(model, None, task, 2, 0, None, progress=False)


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-3"], "argument --epochs: must be an integer ≥ 1, not '-3'"),
    (["--epochs", "0"], "argument --epochs: must be an integer ≥ 1, not '0'"),
    (["--seed", "-1"], "argument --seed: must be an integer ≥ 0, not '-1'"),
    (["--option", "lr=0,05"], "argument --option: lr: '0,05' is not JSON"),
    (["--option", "lr"], "argument --option: 'lr' is not KEY=JSON"),
    (["--epochs", "1e3"], "argument --epochs: must be an integer ≥ 1, not '1e3'"),
    (["--option", "learning_rate=0.1"], "learning_rate: esgd has no such hyperparameter; it takes lr, "),
])
def test_command_line_options_out_of_range(args, message, cache):
    code, stderr = cli("--activation", "sine", "--optimizer", "esgd", *args)
    assert code == 2 and message in stderr
    assert empty(cache)


@pytest.mark.parametrize("args, message", [
    (["--activation", "sinus", "--optimizer", "esgd"], "invalid choice: 'sinus' (choose from 'gaussian', 'sine'"),
    (["--activation", "sine", "--optimizer", "adamw"], "invalid choice: 'adamw' (choose from 'adam', 'sgd', 'esgd'"),
])
def test_command_line_names_list_the_registered_ones(args, message, cache):
    code, stderr = cli(*args)
    assert code == 2 and message in stderr
    assert empty(cache)


@pytest.mark.parametrize("variable, value, message", [
    ("PNF_CHECKPOINT_EVERY", "abc", "PNF_CHECKPOINT_EVERY='abc' is not an integer: set it to an integer ≥ 1"),
    ("PNF_CHECKPOINT_EVERY", "0", "PNF_CHECKPOINT_EVERY must be an integer ≥ 1, not 0"),
    ("PNF_DEVICE", "gpu", "PNF_DEVICE='gpu' is not a device of this machine; one of cpu"),
    ("PNF_DEVICE", "cuda:99", "PNF_DEVICE='cuda:99' is not a device of this machine; one of cpu"),
    ("PNF_CACHE", "", "PNF_CACHE='' is not a folder"),
])
def test_environment_variables_out_of_range(variable, value, message, monkeypatch, cache):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message):
        runs.run(tiny(), progress=False)
    assert empty(cache)


def test_a_file_as_the_cache_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "notes.txt"))
    with pytest.raises(ConfigError, match="notes.txt' is not a folder"):
        runs.run(tiny(), progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("value", ["no-such-folder", "notes.txt", "", " "])
def test_a_data_folder_that_is_not_one_is_refused_before_training(value, tmp_path, monkeypatch, cache):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PNF_DATA", value)
    monkeypatch.setattr(runs, "train", lambda *args, **kwargs: pytest.fail("trained"))
    for config in (tiny(), tiny(data="div2k:test:14")):
        with pytest.raises(ConfigError, match=rf"PNF_DATA={value!r} is not an existing folder: give a folder laid out "
                                              r"like data/, or leave it unset \(default .*data\)"):
            runs.run(config, progress=False)
    assert empty(cache) and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_reports_data_dir_does_not_outlive_it(tmp_path, monkeypatch):
    (tmp_path / "theirs" / "images").mkdir(parents=True)
    (tmp_path / "theirs" / "images" / "data_div2k.npz").write_bytes(b"the paper's images")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PNF_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(sources, "chosen_data", None)  # restored afterwards, whatever the test leaves
    assert start("tiny", "image", data_dir=tmp_path / "theirs").source == "div2k:test:14"
    assert os.environ["PNF_DATA"] == str(tmp_path / "empty") and data_dir() == tmp_path / "theirs"
    assert start("tiny", "image").source == "skimage:astronaut" and data_dir() == tmp_path / "empty"
    with pytest.raises(ConfigError, match=r"data_dir='.*missing' is not an existing folder"):
        start("tiny", "image", data_dir=tmp_path / "missing")


@pytest.mark.parametrize("variable, value, message", [
    ("PNF_WORKERS", "0", "PNF_WORKERS must be an integer ≥ 1, not 0"),
    ("PNF_WORKERS", "two", "PNF_WORKERS='two' is not an integer"),
    ("PNF_EXECUTOR", "mpi", r"unknown executor \(PNF_EXECUTOR\) 'mpi'; registered: inline, pool, local, slurm"),
])
def test_executor_settings_out_of_range(variable, value, message, monkeypatch, cache):
    monkeypatch.setenv("PNF_EXECUTOR", "pool")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        execute([tiny()], progress=False)
    assert empty(cache)


# --- the cache: content, clearing, corruption, permissions -------------------------------

def test_replacing_an_image_at_the_same_path_recomputes_it(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)).save(path)
    config = tiny(data=str(path))
    noise, noise_key = runs.run(config, progress=False), config.key()
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(path)
    white = runs.run(config, progress=False)
    assert config.key() != noise_key
    assert white.history["metrics"] == runs.compute(config, progress=False).history["metrics"]
    assert white.history["metrics"]["psnr"] != noise.history["metrics"]["psnr"]


def break_result_json(entry: Path) -> None:
    text = (entry / "result.json").read_text()
    (entry / "result.json").write_text(text[: len(text) // 2])


def break_arrays(entry: Path) -> None:
    (entry / "arrays.npz").write_bytes(b"garbage" * 10)


def drop_arrays(entry: Path) -> None:
    (entry / "arrays.npz").unlink()


def pickle_in_arrays(entry: Path) -> None:
    """A pickled object where an array belongs, with checksums that match it."""
    np.savez(entry / "arrays.npz", snapshot_2=np.array([{"code": "os.system"}], dtype=object))
    checksums = {name: runs.file_sha256(entry / name) for name in runs.ENTRY_FILES}
    (entry / runs.CHECKSUMS).write_text(json.dumps(checksums))


@pytest.mark.parametrize("damage, reason", [
    (break_result_json, "result.json differ from the sha256"),
    (break_arrays, "arrays.npz differ from the sha256"),
    (drop_arrays, "No such file"),
    (pickle_in_arrays, "Object arrays cannot be loaded when allow_pickle=False"),
])
def test_a_corrupt_entry_is_reported_set_aside_and_recomputed(damage, reason, cache):
    first = runs.run(tiny(), progress=False)
    entry = cache / tiny().key()
    damage(entry)
    with pytest.warns(UserWarning, match=f"cache entry {entry} is corrupt .*{reason}.*moved to .*corrupt"):
        again = runs.run(tiny(), progress=False)
    assert again.history["train_loss"] == first.history["train_loss"]
    assert (again.snapshots[2] == first.snapshots[2]).all()
    assert runs.load(entry).status == "ok" and len(list((cache / ".corrupt").iterdir())) == 1


def test_the_listing_marks_a_corrupt_entry_and_carries_on(cache, capsys):
    runs.run(tiny(), progress=False)
    runs.run(tiny(seed=1), progress=False)
    break_result_json(cache / tiny().key())
    assert main(["cache"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(tiny().key()) and "CORRUPT" in line and str(cache) in line for line in lines)
    assert any(line.startswith(tiny(seed=1).key()) and "image/sine/adam/seed1" in line for line in lines)
    assert lines[-1].startswith("2 runs")


def test_an_entry_written_before_checksums_still_loads(cache):
    first = runs.run(tiny(), progress=False)
    (cache / tiny().key() / runs.CHECKSUMS).unlink()
    assert runs.run(tiny(), progress=False).history == first.history


@pytest.mark.parametrize("umask, folders, files", [(0o002, 0o775, 0o664), (0o077, 0o700, 0o600)])
def test_cache_files_follow_the_umask(umask, folders, files, cache, monkeypatch):
    monkeypatch.setenv("PNF_CHECKPOINT_EVERY", "1")
    previous = os.umask(umask)
    try:
        runs.save(runs.compute(tiny(), progress=False), cache / tiny().key())
        runs.compute(tiny(epochs=3), progress=False, checkpoints=runs.Checkpoints(cache / ".partial" / "k", 1))
    finally:
        os.umask(previous)
    made = [cache, *cache.rglob("*")]
    assert {oct(p.stat().st_mode & 0o777) for p in made if p.is_dir()} == {oct(folders)}
    assert {oct(p.stat().st_mode & 0o777) for p in made if p.is_file()} == {oct(files)}
