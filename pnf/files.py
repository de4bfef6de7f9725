"""Files written whole or not at all: a file pnf writes is never seen half-written."""

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomically(path: Path):
    """A temporary name beside `path` (`.<name>.<pid>.part`) to write to; renamed onto
    `path` when the block ends without an error, removed when it raises."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        yield staging
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)


def write_atomically(path: Path, content: bytes | str) -> None:
    """Write `content` (text as UTF-8) to `path` whole, on disk before it takes the name
    (fsync), so neither a killed process nor a crash leaves a torn file under `path`."""
    with atomically(path) as staging:
        with open(staging, "wb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
