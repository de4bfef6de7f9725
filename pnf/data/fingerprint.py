"""What a data source's content is, for the runs' cache keys: the sha256 of its files.

A registered source reads its `files` in the data folder (those present); a user's source
reads its file, or its scene folder; an embedded source reads none, and stands for its
content by its `revision` when it has one. A scene folder reads what its format names
(`pnf.data.scenes.scene_files`): a Blender scene its `transforms_*.json` and every view they list,
wherever it lies; an LLFF scene `poses_bounds.npy` and `images/`. A registered scene file
inside such a folder (Lego's) brings that folder's files too. Hashes are computed once per
file version (`pnf.data.sources.sha256`).
"""

import os
from pathlib import Path

from pnf.data.scenes import BLENDER_SPLITS, LLFF_POSES, scene_files
from pnf.data.sources import data_dir, resolve, sha256


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
