"""`make data`: fetch the files of `remotes.csv` into the data folder and verify their sha256.

    python -m pnf.data.fetch [DATA_DIR]   # default: PNF_DATA, else data/ (made if missing)

Each file is taken from a local mirror when one is given (`PNF_DATA_MIRROR`, a folder
laid out like the data folder, e.g. a shared copy on a cluster) and otherwise
downloaded. A file whose sha256 differs from the recorded one is rejected; one already
in place with another sha256 (a modified copy) is replaced. Sources, licences and
provenance: `data/README.md`.
"""

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

from pnf.data.sources import DEFAULT_DATA, REMOTES, Remote, sha256
from pnf.files import write_atomically


def fetch(remote: Remote, folder: Path, mirror: Path | None, download: bool = True) -> str:
    """Place `remote` in `folder`; return what was done. Raises ValueError on a checksum
    mismatch, ConnectionError when the download fails, OSError when there is no source."""
    target = folder / remote.path
    if target.exists() and sha256(target) == remote.sha256:
        return "present"
    if mirror is not None and (mirror / remote.path).exists():
        content, how = (mirror / remote.path).read_bytes(), f"copied from {mirror}"
    elif remote.url is None:
        raise OSError("no download exists; set PNF_DATA_MIRROR to a folder that has it (see data/README.md)")
    elif not download:
        raise ConnectionError("not downloaded: an earlier download failed (offline?)")
    else:
        try:
            with urllib.request.urlopen(remote.url, timeout=30) as response:
                content, how = response.read(), f"downloaded from {remote.url}"
        except OSError as error:
            raise ConnectionError(f"download from {remote.url} failed ({error})") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != remote.sha256:
        raise ValueError(f"sha256 {digest} differs from the recorded {remote.sha256}")
    if target.exists():
        how += ", replacing a modified copy"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, content)
    return how


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else os.environ.get("PNF_DATA") or DEFAULT_DATA)  # made if missing
    mirror = Path(os.environ["PNF_DATA_MIRROR"]) if os.environ.get("PNF_DATA_MIRROR") else None
    if mirror is not None and not mirror.is_dir():
        print(f"PNF_DATA_MIRROR={mirror}: no such folder; set it to a folder laid out like the data folder, "
              "or unset it to download", file=sys.stderr)
        return 1
    failures, download = 0, True
    for remote in REMOTES.values():
        try:
            print(f"{remote.path}: {fetch(remote, folder, mirror, download)}")
        except (OSError, ValueError) as error:
            failures += 1
            download = download and not isinstance(error, ConnectionError)  # offline: do not wait on each file
            modified = " (the file there is a modified copy)" if (folder / remote.path).exists() else ""
            print(f"{remote.path}: FAILED{modified} ({error})", file=sys.stderr)
    if failures:
        print(f"{failures} file(s) missing; the reports fall back to embedded data for them.", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
