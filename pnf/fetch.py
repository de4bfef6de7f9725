"""`make data`: fetch the paper's real data into the data folder and verify checksums.

    python -m pnf.fetch [DATA_DIR]

Each file is taken from a local mirror when one is given (`PNF_DATA_MIRROR`, a folder
laid out like the data folder, e.g. a shared copy on a cluster) and otherwise
downloaded. A file whose sha256 differs from the recorded one is rejected.
Sources, licences and provenance: `data/README.md`.
"""

import hashlib
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pnf.data import data_dir

SAPE = "https://raw.githubusercontent.com/MundVetter/SAPE/93b88136a777e9203c3110cdc553d34d0a1cc644"


@dataclass(frozen=True)
class Remote:
    """A file of the data folder: where it comes from and its sha256."""

    path: str  # relative to the data folder
    url: str
    sha256: str


FILES: list[Remote] = [
    Remote(
        "images/div2k_subset/test_data/image_014.jpg",
        f"{SAPE}/assets/natural_images/image_014.jpg",
        "c45675767b1eaf510932f2671f2a1fc49d59549d8eb9fa8db51d17e636798937",
    ),
]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(remote: Remote, folder: Path, mirror: Path | None) -> str:
    """Place `remote` in `folder`; return what was done. Raises on a checksum mismatch."""
    target = folder / remote.path
    if target.exists() and sha256(target) == remote.sha256:
        return "present"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    if mirror is not None and (mirror / remote.path).exists():
        shutil.copyfile(mirror / remote.path, partial)
        how = f"copied from {mirror}"
    else:
        with urllib.request.urlopen(remote.url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        how = f"downloaded from {remote.url}"
    digest = sha256(partial)
    if digest != remote.sha256:
        partial.unlink()
        raise ValueError(f"{remote.path}: sha256 {digest} differs from the recorded {remote.sha256}")
    partial.rename(target)
    return how


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else data_dir()
    mirror = Path(os.environ["PNF_DATA_MIRROR"]) if os.environ.get("PNF_DATA_MIRROR") else None
    failures = 0
    for remote in FILES:
        try:
            print(f"{remote.path}: {fetch(remote, folder, mirror)}")
        except (OSError, ValueError) as error:
            failures += 1
            print(f"{remote.path}: FAILED ({error})", file=sys.stderr)
    if failures:
        print(f"{failures} file(s) missing; the reports fall back to embedded data for them.", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
