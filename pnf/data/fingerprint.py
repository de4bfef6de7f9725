"""What a data source's content is, for the runs' cache keys: the sha256 of its files.

A registered source reads its `files` in the data folder (those present); a user's source
reads its file, or every file under its folder; an embedded source reads none. Hashes
are computed once per path, size and modification time (`pnf.data.sources.sha256`).
"""

from functools import lru_cache
from pathlib import Path

from pnf.data import data_dir
from pnf.data.scenes import SCENE_FORMATS
from pnf.data.sources import SOURCES, sha256


def source_files(name: str) -> dict[str, Path]:
    """The files data source `name` reads, by a name that does not depend on where the data
    folder is (a registered file's path in it, or a path inside the user's folder); empty
    for embedded or absent data."""
    if name in SOURCES:
        roots = {file: data_dir() / file for file in SOURCES[name].files}
    else:
        form, _, folder = name.partition(":")
        path = Path(folder if form in SCENE_FORMATS else name)
        roots = {path.name: path}
    files = {}
    for label, root in roots.items():
        if root.is_dir():
            files |= {f"{label}/{p.relative_to(root)}": p for p in sorted(root.rglob("*")) if p.is_file()}
        elif root.is_file():
            files[label] = root
    return files


def fingerprint(name: str) -> dict[str, str]:
    """{file name: sha256} of the files data source `name` reads (empty when it reads none)."""
    files = tuple((label, str(path), path.stat().st_size, path.stat().st_mtime_ns)
                  for label, path in source_files(name).items())
    return _digests(files)


@lru_cache(maxsize=64)
def _digests(files: tuple) -> dict[str, str]:
    """Memoised by every file's path, size and modification time (a folder of many files
    is hashed once, not once per key)."""
    return {label: sha256(Path(path)) for label, path, _, _ in files}
