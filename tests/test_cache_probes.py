"""Probes of the cache: each plants one input or fault and expects a clear error
before training, or the correct result, and nothing of the user's lost.

| probe | before | after |
|---|---|---|
| a user's file inside `.corrupt/`, `.submitit/`, `<key>/`, ... at `cache --clear` | deleted | kept, named |
| `cache --clear` / `make clean-cache` on a folder of documents | refused | nothing of theirs deleted, named |
| an analysis named with a hyphen (`peak-memory-<key>.npz`) at `cache --clear` | "pnf did not write" | cleared |
| a world-writable cache folder (`chmod 777`, or 1777) | used | refused before training, with `chmod o-w` |
| a read-only cache; one under a file | PermissionError after training | ConfigError naming PNF_CACHE, before |
| the disk fills while a result is saved | OSError, the run lost | the result returned, a warning with the path |
| `torch.set_default_dtype(torch.float64)` before a run | trained in float64, cached under the float32 key | refused, with the fix |
| an image rewritten in place, its size and mtime restored | old key, stale result | new key, the new image's result |
| a Blender view outside the scene folder, or Lego's 2nd view, changed | same key (stale) | new key |
"""

import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scene_writers import write_blender

from pnf.__main__ import main
from pnf.checks import ConfigError
from pnf.config import RunConfig
from pnf.data.fingerprint import source_files
from pnf.data.scenes import load_scene
from pnf.runs import cache as runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    return tmp_path / "cache"


def tiny(**changes) -> RunConfig:
    config = dict(task="image", activation="sine", optimizer="adam", data="skimage:astronaut", resolution=8,
                  epochs=2, batch_size=32)
    return RunConfig(**{**config, **changes})


def no_training(*args, **kwargs):
    raise AssertionError("trained")


# --- cache --clear: only pnf's files, in pnf's places -----------------------------------

def filled_cache(cache: Path) -> int:
    """A cache with every kind of file pnf writes, each where pnf writes it; how many files and folders."""
    runs.save(runs.compute(tiny(), progress=False), cache / tiny().key())  # 3 files, 1 folder
    partial = cache / ".partial" / tiny(seed=1).key()
    partial.mkdir(parents=True)
    for name in ("epoch-00002.pt", "epoch-00002.sha256", "epoch-00004.pt.123.part"):  # 3 files, 2 folders
        (partial / name).write_bytes(b"x")
    staging = cache / f".{tiny(seed=2).key()}-123-abcdef12"
    staging.mkdir()
    (staging / "result.json").write_text("{}")  # 1 file, 1 folder
    (cache / ".corrupt" / f"{tiny(seed=3).key()}-abcdef12").mkdir(parents=True)  # 2 folders
    (cache / ".corrupt" / f"{tiny(seed=3).key()}-abcdef12" / "arrays.npz").write_bytes(b"x")  # 1 file
    job = cache / ".submitit" / "17_3"
    job.mkdir(parents=True)
    for name in ("17_submission.sh", "17_3_submitted.pkl", "17_3_0_result.pkl", "17_3_0_log.out",
                 "17_3_0_log.err"):  # 5 files, 2 folders
        (job / name).write_bytes(b"x")
    (cache / ".submitit" / f"{'a' * 32}.pkl").write_bytes(b"x")  # 1 file
    runs.memoized("curvature", {"seed": 0}, lambda: [1.0])  # 1 file, 1 folder
    runs.memoized("peak-memory", {"seed": 0}, lambda: [2.0])  # 1 file
    (cache / "analyses" / f".trace-{tiny().key()}.77.npz").write_bytes(b"x")  # 1 file
    return 17 + 9  # files, folders


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` by its path there, with its content."""
    return {str(p.relative_to(folder)): p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()}


def test_clearing_removes_everything_pnf_wrote(cache):
    count = filled_cache(cache)
    assert runs.foreign_files(cache) == []
    assert runs.clear_cache() == count
    assert cache.is_dir() and list(cache.iterdir()) == []


KEY = "0123456789abcdef0123"
PLANTED = {  # a user's file -> what the warning names: the file, or the first folder pnf does not write
    "thesis.tex": "thesis.tex", "photos/cat.jpg": "photos", f"{KEY}/notes.md": f"{KEY}/notes.md",
    f".{KEY}-1-abcdef12/notes.md": f".{KEY}-1-abcdef12/notes.md", f"{KEY}-old/result.json": f"{KEY}-old",
    ".partial/mine.txt": ".partial/mine.txt", f".partial/{KEY}/notes.txt": f".partial/{KEY}/notes.txt",
    f".partial/{KEY}/result.json": f".partial/{KEY}/result.json", "analyses/results.csv": "analyses/results.csv",
    f"analyses/mine/curvature-{KEY}.npz": "analyses/mine", ".corrupt/mine.txt": ".corrupt/mine.txt",
    f".corrupt/{KEY}-abcdef12/notes.md": f".corrupt/{KEY}-abcdef12/notes.md",
    ".corrupt/backup/result.json": ".corrupt/backup", ".submitit/notes.txt": ".submitit/notes.txt",
    ".submitit/17/notes.txt": ".submitit/17/notes.txt", ".submitit/17/result.json": ".submitit/17/result.json",
    ".submitit/logs/17_0_log.out": ".submitit/logs",
}


@pytest.mark.parametrize("planted", PLANTED)
def test_clearing_keeps_and_names_a_users_file_wherever_it_is(planted, cache):
    filled_cache(cache)
    (cache / planted).parent.mkdir(parents=True, exist_ok=True)
    (cache / planted).write_text("precious")
    with pytest.warns(UserWarning, match="left 1 file.* pnf did not write") as warned:
        runs.clear_cache()
    assert str(warned[0].message).endswith(f": {cache / PLANTED[planted]}")
    assert tree(cache) == {planted: "precious"}  # pnf's files are gone, the user's is untouched
    folders = {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_dir()}
    assert folders == {str(p) for p in Path(planted).parents} - {"."}  # only the folders that hold it are left


def test_a_link_in_an_entry_is_left_and_its_target_untouched(cache, tmp_path):
    filled_cache(cache)
    (tmp_path / "mine.json").write_text("precious")
    (cache / KEY).mkdir()
    (cache / KEY / "result.json").symlink_to(tmp_path / "mine.json")
    with pytest.warns(UserWarning, match=rf"left 1 file.*{KEY}/result.json"):
        runs.clear_cache()
    assert (cache / KEY / "result.json").is_symlink() and (tmp_path / "mine.json").read_text() == "precious"


def test_cache_clear_and_make_clean_cache_on_a_folder_of_documents_delete_nothing_of_theirs(tmp_path, monkeypatch):
    folder = tmp_path / "documents"
    (folder / "drafts").mkdir(parents=True)
    (folder / "thesis.tex").write_text("precious")
    (folder / "drafts" / "result.json").write_text("precious too")
    before = tree(folder)
    monkeypatch.setenv("PNF_CACHE", str(folder))
    with pytest.warns(UserWarning, match=r"left 2 file\(s\) or folder\(s\) pnf did not write: .*drafts, .*thesis.tex"):
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert main(["cache", "--clear"]) == 0
    assert "cleared 0 item(s)" in printed.getvalue()
    make = subprocess.run(["make", "-o", ".venv/.installed", "clean-cache", f"PNF_CACHE={folder}"], cwd=ROOT,
                          capture_output=True, text=True)
    assert make.returncode == 0 and "thesis.tex" in make.stderr
    assert tree(folder) == before


# --- the cache folder: writable by us, not by everyone -----------------------------------

@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o703])
def test_a_cache_every_user_can_write_is_refused_before_training(mode, cache, monkeypatch):
    cache.mkdir()
    cache.chmod(mode)
    monkeypatch.setattr(runs, "compute", no_training)
    with pytest.raises(ConfigError, match=rf"cache folder {cache} \(PNF_CACHE\) is writable by every user.*"
                                          rf"`chmod o-w {cache}`, or set PNF_CACHE to a folder of your own"):
        runs.run(tiny(), progress=False)
    assert list(cache.iterdir()) == []


def test_a_cache_shared_with_a_group_is_used(cache):
    cache.mkdir()
    cache.chmod(0o2775)  # a team's cache: group-writable, setgid
    result = runs.run(tiny(), progress=False)
    assert runs.load(cache / tiny().key()).history == result.history


def error_as_a_user(call) -> str:
    """The error `call()` raises for a user who is not root (root writes through permission
    bits): here, or, when this is root, in a forked child that becomes `nobody` first."""
    if os.geteuid() != 0:
        with pytest.raises(ConfigError) as error:
            call()
        return str(error.value)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            call()
            message = "no error"
        except BaseException as error:
            message = f"{type(error).__name__}: {error}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    os.waitpid(child, 0)
    return message.removeprefix("ConfigError: ")


def test_a_read_only_cache_is_refused_before_training(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="pnf-read-only-"))  # in /tmp, which `nobody` can reach
    monkeypatch.setenv("PNF_CACHE", str(folder))
    monkeypatch.setattr(runs, "compute", no_training)
    try:
        folder.chmod(0o555)
        message = error_as_a_user(lambda: runs.run(tiny(), progress=False))
        assert message.startswith(f"PNF_CACHE='{folder}' is not writable (Permission denied): make it writable, "
                                  "or set PNF_CACHE to a folder you can write"), message
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_a_cache_under_a_file_is_refused_before_training(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "notes.txt" / "cache"))
    monkeypatch.setattr(runs, "compute", no_training)
    with pytest.raises(ConfigError, match=r"PNF_CACHE='.*notes.txt/cache' is not writable \(Not a directory\)"):
        runs.run(tiny(), progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_full_disk_after_training_returns_the_result_and_says_where_it_was_not_stored(cache, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch, pytest.warns(
            UserWarning, match=rf"image/sine/adam/seed0: the result could not be written to the cache at "
                               rf"{cache / tiny().key()} \(\[Errno 28\] No space left on device\); it is "
                               "returned uncached"):
        patch.setattr(np, "savez_compressed", full)
        result = runs.run(tiny(), progress=False)
    assert result.history["train_loss"] == runs.compute(tiny(), progress=False).history["train_loss"]
    assert not runs.is_cached(tiny()) and not list(cache.glob(".*-*"))  # no staging entry left


# --- the process: torch's default dtype ----------------------------------------------------

def test_a_float64_default_dtype_is_refused_before_training_and_a_cached_run_still_loads(cache, monkeypatch):
    cached = runs.run(tiny(), progress=False)
    torch.set_default_dtype(torch.float64)
    try:
        assert runs.run(tiny(), progress=False).history == cached.history  # float32 result, loaded
        for call in (lambda: runs.run(tiny(seed=1), progress=False), lambda: runs.compute(tiny(), progress=False)):
            with pytest.raises(ConfigError, match=r"torch's default dtype is float64 .* call "
                                                  r"torch.set_default_dtype\(torch.float32\) first"):
                call()
    finally:
        torch.set_default_dtype(torch.float32)
    assert not runs.is_cached(tiny(seed=1)) and not (cache / ".partial").exists()


# --- keys that follow the data --------------------------------------------------------------

def test_an_image_rewritten_in_place_with_its_size_and_mtime_restored_gets_a_new_key(tmp_path):
    path = tmp_path / "photo.bmp"  # a BMP's size does not depend on its pixels
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    config = tiny(data=str(path))
    black, black_key = runs.run(config, progress=False), config.key()
    before = path.stat()
    white_bmp = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(white_bmp, format="BMP")
    with open(path, "r+b") as file:  # the same inode: only the pixels change
        file.write(white_bmp.getvalue())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    white = runs.run(config, progress=False)
    assert config.key() != black_key
    assert white.at_epoch("psnr", 0) != black.at_epoch("psnr", 0)
    assert white.history["metrics"] == runs.compute(config, progress=False).history["metrics"]


def test_a_view_outside_the_scene_folder_is_in_the_key(tmp_path):
    write_blender(load_scene("embedded", 8), tmp_path / "scene")
    meta = json.loads((tmp_path / "scene" / "transforms_train.json").read_text())
    (tmp_path / "views").mkdir()
    shutil.move(tmp_path / "scene" / "train" / "r_1.png", tmp_path / "views" / "r_1.png")
    meta["frames"][1]["file_path"] = "../views/r_1"  # frame 1 is view 1
    (tmp_path / "scene" / "transforms_train.json").write_text(json.dumps(meta))
    config = tiny(task="nerf", data=f"blender:{tmp_path / 'scene'}", resolution=8, batch_size=64)
    assert "views/r_1.png" in source_files(config.data)
    before = config.key()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "views" / "r_1.png")
    assert config.key() != before


def test_every_view_of_the_lego_blender_folder_is_in_the_key(tmp_path, monkeypatch):
    scene = load_scene("embedded", 8)
    write_blender(scene, tmp_path / "data" / "nerf" / "lego")
    monkeypatch.setenv("PNF_DATA", str(tmp_path / "data"))
    files = source_files("lego")
    assert {"nerf/lego/transforms_train.json", "nerf/lego/train/r_0.png", "nerf/lego/train/r_2.png"} <= set(files)
    assert len(files) == len(scene.images) + 2  # every view, and both splits
    config = tiny(task="nerf", data="lego", resolution=8, batch_size=64)
    before = config.key()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "data" / "nerf" / "lego" / "train" / "r_2.png")
    assert config.key() != before
