"""What a data source's content is, for the runs' cache keys: the sha256 of its files.

A registered source reads its `files` in the data folder (those present); a user's source
reads its file, or its scene folder; an embedded source reads none, and stands for its
content by its `revision` when it has one. A scene folder reads what its format names
(`pnf.data.scenes`): a Blender scene its `transforms_*.json` and every view they list,
wherever it lies; an LLFF scene `poses_bounds.npy` and `images/`. A registered scene file
inside such a folder (Lego's) brings that folder's files too. Hashes are computed once per
file version (`pnf.data.sources.sha256`).
"""

import json
import os
from pathlib import Path

from pnf.data.sources import data_dir, resolve, sha256

BLENDER_SPLITS = ("transforms_train.json", "transforms_test.json")
LLFF_POSES = "poses_bounds.npy"
LLFF_SUFFIXES = (".png", ".jpg", ".jpeg")


def scene_files(folder: Path) -> list[Path]:
    """The files the scene in `folder` reads, by the rules of `pnf.data.scenes`: a Blender
    scene's splits and the view `<folder>/<file_path>.png` of each of their frames; an LLFF
    scene's poses and images; every file under `folder` when it is in neither format."""
    splits = [folder / name for name in BLENDER_SPLITS if (folder / name).is_file()]
    if splits:
        views = []
        for split in splits:
            try:
                views += [folder / (frame["file_path"] + ".png") for frame in json.loads(split.read_text())["frames"]]
            except (ValueError, KeyError, TypeError):  # unreadable: the loader says why; the split is keyed
                pass
        return splits + views
    if (folder / LLFF_POSES).is_file():
        images = folder / "images"
        found = sorted(p for p in images.iterdir() if p.suffix.lower() in LLFF_SUFFIXES) if images.is_dir() else []
        return [folder / LLFF_POSES, *found]
    return sorted(p for p in folder.rglob("*") if p.is_file())


def scene_folder(path: Path, top: Path) -> Path | None:
    """The nearest folder above `path`, up to `top`, holding a Blender or LLFF scene."""
    return next((folder for folder in path.parents if folder.is_relative_to(top)
                 and any((folder / marker).is_file() for marker in (*BLENDER_SPLITS[:1], LLFF_POSES))), None)


def source_files(name: str) -> dict[str, Path]:
    """The files data source `name` reads, by a name that does not depend on where the data
    folder is (a path relative to the data folder, or to the folder holding the user's file
    or folder); empty for embedded or absent data."""
    source = resolve(name)
    if source.path:
        base, paths = source.path.parent, [source.path]
        if source.kind == "scene" and source.path.is_dir():
            paths = scene_files(source.path)
    else:
        base = data_dir() if source.files else Path()
        paths = [base / file for file in source.files if (base / file).is_file()]
        if source.kind == "scene":
            paths += [file for path in paths if (folder := scene_folder(path, base)) for file in scene_files(folder)]
    return {os.path.relpath(path, base): path for path in sorted(set(paths)) if path.is_file()}


def fingerprint(name: str) -> dict[str, str]:
    """{file name: sha256} of the files data source `name` reads; for an embedded source
    {"revision": its revision}, or empty before its first revision."""
    revision = resolve(name).revision
    return {label: sha256(path) for label, path in source_files(name).items()} or (
        {"revision": revision} if revision else {})
