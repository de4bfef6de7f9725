"""What a data source's content is, for the runs' cache keys: the sha256 of its files.

A registered source reads its `files` in the data folder (those present); a user's source
reads its file, or every file under its folder; an embedded source reads none, and
stands for its content by its `revision` when it has one. Hashes
are computed once per path, size and modification time (`pnf.data.sources.sha256`).
"""

from pathlib import Path

from pnf.data.sources import data_dir, resolve, sha256


def source_files(name: str) -> dict[str, Path]:
    """The files data source `name` reads, by a name that does not depend on where the data
    folder is (a registered file's path in it, or a path inside the user's folder); empty
    for embedded or absent data."""
    source = resolve(name)
    roots = {source.path.name: source.path} if source.path else {file: data_dir() / file for file in source.files}
    files = {}
    for label, root in roots.items():
        if root.is_dir():
            files |= {f"{label}/{p.relative_to(root)}": p for p in sorted(root.rglob("*")) if p.is_file()}
        elif root.is_file():
            files[label] = root
    return files


def fingerprint(name: str) -> dict[str, str]:
    """{file name: sha256} of the files data source `name` reads; for an embedded source
    {"revision": its revision}, or empty before its first revision."""
    revision = resolve(name).revision
    return {label: sha256(path) for label, path in source_files(name).items()} or (
        {"revision": revision} if revision else {})
