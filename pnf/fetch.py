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
REMESHING = "https://raw.githubusercontent.com/Profactor/continuous-remeshing/2e556421a6096701519c4f106d4af1f0588e19dd"
CORRESPONDENCE = "https://raw.githubusercontent.com/rohan-sawhney/correspondence/2f4ceb244ba234b9e5d194b7120ce5f37bb6f732"
# NeRF-synthetic Lego (train split only). Its 100 PNGs (data/nerf_synthetic/lego/train/r_<i>.png,
# 800x800 RGBA) have no recorded checksums: clone the repository at this commit and copy
# them to nerf/lego/train/, which `pnf.data.scenes` reads as a Blender folder; the smaller
# `nerf/lego/lego_train_<R>.npz` are built from them by `build_lego_npz.py` (data/SOURCES.md).
SHOUXIEAI_NERF = "https://raw.githubusercontent.com/shouxieai/nerf/c56f8179fca38c84200e230e7cb1133f765ec998"


@dataclass(frozen=True)
class Remote:
    """A file of the data folder: where it comes from and its sha256."""

    path: str  # relative to the data folder
    url: str | None  # None: no download exists; only a mirror has it (built by hand)
    sha256: str


FILES: list[Remote] = [
    Remote(
        "images/div2k_subset/test_data/image_014.jpg",
        f"{SAPE}/assets/natural_images/image_014.jpg",
        "c45675767b1eaf510932f2671f2a1fc49d59549d8eb9fa8db51d17e636798937",
    ),
    Remote(
        "meshes/armadillo.obj",
        f"{REMESHING}/data/armadillo.obj",
        "fd25edd020bef63a5999073774ef4f0775d6ce96b7b17370e69019585f953508",
    ),
    Remote(
        "meshes/bunny.obj",
        f"{REMESHING}/data/bunny.obj",
        "21135667b659696fda3b49871b04a11938cfd8c155612c29ca402ca2791b32a5",
    ),
    Remote(
        "meshes/dragon.obj",
        f"{CORRESPONDENCE}/data/dragon.obj",
        "4af53808c59f86a5a69c40c6946d4a7bc85749a071c7f013503862b1e6c167fa",
    ),
    Remote("nerf/lego/lego_train_100.npz", None, "b53b5ce743cd5be21a1e4c1ad5f87fe7992fcf444240d50dec34caf9e4a245fc"),
    Remote("nerf/lego/lego_train_200.npz", None, "39be5347f16e13a9758dfd5b66744a125e66ca1dc00bcb27a83fc8ebe46f9f98"),
    Remote(
        "nerf/lego/transforms_train.json",
        f"{SHOUXIEAI_NERF}/data/nerf_synthetic/lego/transforms_train.json",
        "82d46cfbd405d7da8562b6fa75b6fb0631a3f941adf66f0c023acb8bf9ea273a",
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
    elif remote.url is None:
        raise OSError("no download exists; build it from the Lego PNGs (see pnf/fetch.py) or set PNF_DATA_MIRROR")
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
