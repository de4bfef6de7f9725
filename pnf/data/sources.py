"""One registry of data sources: images, meshes and scenes, each known by a name.

A source is a registered name (`"div2k:test:14"`, `"skimage:astronaut"`, `"mesh:armadillo"`,
`"lego"`, ...) or a path to the user's own image file, mesh file or scene folder. Each
loader module (`pnf.data.images`, `.meshes`, `.scenes`) registers its sources: how each
loads, how a report describes it, whether it is the paper's, and which files `make data`
fetches for it with their sha256 (`REMOTES`, read from `remotes.csv`). Names are part of
the runs' cache keys: never rename one.
"""

import csv
import hashlib
import os
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable

from pnf.checks import ConfigError

FETCH_HINT = "run `make data` on a connected machine, or point PNF_DATA at a folder that has it"
PATH_KINDS = {".png": "image", ".jpg": "image", ".jpeg": "image", ".bmp": "image", ".tif": "image",
              ".tiff": "image", ".obj": "mesh", ".ply": "mesh", ".off": "mesh", ".stl": "mesh"}  # else a scene folder


DEFAULT_DATA = Path(__file__).resolve().parents[2] / "data"
chosen_data: Path | None = None  # a report's `data_dir` (`use_data_dir`), which outranks PNF_DATA


def data_dir(folder: str | Path | None = None) -> Path:
    """The data folder: `folder` when given, else the one `use_data_dir` chose, else
    `PNF_DATA` if set, else `data/` at the project's root. A folder given or chosen, or
    PNF_DATA, that is not an existing folder is a ConfigError naming it."""
    for setting, value in (("data folder", folder), ("data_dir", chosen_data),
                           ("PNF_DATA", os.environ.get("PNF_DATA"))):
        if value is not None and (not str(value).strip() or not Path(value).is_dir()):
            raise ConfigError(f"{setting}={str(value)!r} is not an existing folder: give a folder laid out like "
                              f"data/, or leave it unset (default {DEFAULT_DATA})")
        if value is not None:
            return Path(value)
    return DEFAULT_DATA


def use_data_dir(folder: str | Path | None) -> None:
    """Point every loader of this process at `folder` (a notebook's `data_dir` parameter);
    None goes back to PNF_DATA, else data/. The environment is left as it is."""
    global chosen_data
    chosen_data = None if folder is None else Path(folder)
    data_dir()  # a folder that does not exist is refused now


@dataclass(frozen=True)
class Remote:
    """A file of the data folder that `make data` fetches: its path there, where it comes
    from (None: no download exists, only a mirror has it) and its sha256."""

    path: str
    url: str | None
    sha256: str


def _read_remotes() -> dict[str, Remote]:
    """Every file `make data` fetches, by its path in the data folder, from `remotes.csv`
    (columns path, url, sha256; an empty url: no download exists)."""
    with open(Path(__file__).with_name("remotes.csv"), newline="") as table:
        rows = csv.DictReader(table)
        return {row["path"]: Remote(row["path"], row["url"] or None, row["sha256"]) for row in rows}


REMOTES = _read_remotes()


@dataclass(frozen=True)
class DataSource:
    """A named piece of data. `load(folder, resolution)` returns the kind's raw data from the
    data `folder` (`resolution` only lets a source with several files pick one; the kind's
    loader resizes). `files` are paths in the data folder, any of which holds it (none: it
    is embedded); `remotes` are what `make data` fetches for it; `path` is the user's own
    file or folder (None for a registered source). An embedded source's `revision` names
    its current content in cache keys: change it when the code that builds it changes."""

    name: str
    kind: str  # "image", "mesh" or "scene"
    load: Callable[[Path, int | None], object]
    describe: str
    paper: bool = False
    remotes: tuple[Remote, ...] = ()
    files: tuple[str, ...] = ()
    path: Path | None = None
    revision: str = ""


SOURCES: dict[str, DataSource] = {}
READERS: dict[str, Callable[[str], DataSource]] = {}  # kind -> the source of a user's path
DEFAULTS: dict[str, tuple[str, str]] = {}  # kind -> (the preferred source, its embedded stand-in)


def register(source: DataSource) -> None:
    SOURCES[source.name] = source


def register_kind(kind: str, read: Callable[[str], DataSource], preferred: str, embedded: str) -> None:
    """A kind of data: how to read a user's path, its default source and the embedded stand-in."""
    READERS[kind] = read
    DEFAULTS[kind] = (preferred, embedded)


def resolve(name: str, kind: str | None = None) -> DataSource:
    """The source called `name`, or the user's file or folder at that path; `kind` checks it."""
    if name in SOURCES:
        source = SOURCES[name]
    else:
        source = READERS[kind or PATH_KINDS.get(Path(name).suffix.lower(), "scene")](name)
    if kind is not None and source.kind != kind:
        raise ValueError(f"data source {name!r} is of kind {source.kind!r}, not {kind!r}; {kind} sources: "
                         f"{catalogue(kind)}, or a path to your own")
    return source


def user_source(name: str, kind: str, read: Callable[[Path], object], path: Path | None = None) -> DataSource:
    """The user's own file or folder of `kind` called `name`, at `path` (default: `name`)."""
    path = Path(name) if path is None else path

    def load(folder: Path, resolution: int | None) -> object:
        if not path.exists():
            raise FileNotFoundError(f"{kind} {name!r}: {path} does not exist, and no registered {kind} has that "
                                    f"name ({catalogue(kind)})")
        return read(path)

    return DataSource(name, kind, load, f"your own {kind}, read from the path given", path=path)


def names(kind: str) -> list[str]:
    """The registered sources of `kind`."""
    return [name for name, source in SOURCES.items() if source.kind == kind]


def catalogue(kind: str) -> str:
    """The registered names of `kind` for a message, numbered runs shortened (`div2k:test:0…15`)."""
    runs: dict[str, list[str]] = {}
    for name in names(kind):
        stem, _, last = name.rpartition(":")
        runs.setdefault(stem if last.isdigit() else name, []).append(name)
    return ", ".join(run[0] if len(run) == 1 else f"{run[0]}…{run[-1].rpartition(':')[2]}" for run in runs.values())


def present(source: DataSource, folder: Path) -> bool:
    """Whether `source` can load from `folder`: it is embedded or one of its files is there."""
    return not source.files or any((folder / file).exists() for file in source.files)


def default_source(kind: str, folder: Path | None = None) -> str:
    """The preferred source of `kind` (the paper's, or Lego for scenes) when its files are in
    the data folder, else the embedded one."""
    preferred, embedded = DEFAULTS[kind]
    return preferred if present(SOURCES[preferred], data_dir(folder)) else embedded


def sha256(path: Path) -> str:
    """The file's sha256 (hex), computed once per path, inode, size and modification and
    change times (a folder of many files is hashed once, not once per cache key; a file
    rewritten or replaced, even with its old size and mtime, changes its inode or ctime)."""
    stat = path.stat()
    return _sha256(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@cache
def _sha256(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def modified_files(source: DataSource, folder: Path) -> list[str]:
    """The files of `source` in `folder` whose sha256 differs from the recorded one."""
    return [remote.path for remote in source.remotes
            if (folder / remote.path).exists() and sha256(folder / remote.path) != remote.sha256]


def is_paper(name: str, folder: Path | None = None) -> bool:
    """Whether `name` is the paper's data, present in the data folder with its recorded checksums."""
    source, folder = resolve(name), data_dir(folder)
    return source.paper and present(source, folder) and not modified_files(source, folder)


def describe(name: str, folder: Path | None = None) -> str:
    """One line for a report: what the data is, whether it is the paper's, a modified copy
    of it (with a warning), or the embedded stand-in for data that was not found."""
    source, folder = resolve(name), data_dir(folder)
    changed = modified_files(source, folder)
    if changed:
        warnings.warn(f"{name}: {', '.join(str(folder / path) for path in changed)} differ from the recorded "
                      f"sha256; reports call it a modified copy ({FETCH_HINT})", stacklevel=2)
        return (f"**a modified copy** of {source.describe}: {', '.join(changed)} differ from the recorded sha256 "
                f"(`make data` restores them), so the numbers are not the paper's")
    preferred, embedded = DEFAULTS[source.kind]
    if name == embedded and not present(SOURCES[preferred], folder):
        return (f"**embedded default {source.kind}** ({source.describe}): `{preferred}` was not found in the data "
                f"folder ({FETCH_HINT}); numbers are not comparable to the paper's in absolute terms, only the "
                "orderings are")
    return source.describe
