"""Data: where it lives, and loaders that fall back to embedded data when it is absent."""

import os
from pathlib import Path

FETCH_HINT = "run `make data` on a connected machine, or point PNF_DATA at a folder that has it"


def data_dir() -> Path:
    """The data folder: `PNF_DATA` if set, else `data/` at the project's root."""
    if "PNF_DATA" in os.environ:
        return Path(os.environ["PNF_DATA"])
    return Path(__file__).resolve().parents[2] / "data"


def use_data_dir(folder: str | Path | None) -> None:
    """Point every loader at `folder` (a notebook's `data_dir` parameter) when given."""
    if folder:
        os.environ["PNF_DATA"] = str(folder)
