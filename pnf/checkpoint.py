"""Checkpoints that survive a killed process.

A run's folder holds `epoch-NNNNN.pt` files, each with a `.sha256` beside it written
after the file itself is complete and renamed into place. A checkpoint counts only
when its checksum matches, so a truncated or corrupt one is skipped (with a warning)
and the run resumes from the last good one. The two newest are kept.

A checkpoint holds tensors and plain values only and loads with `weights_only=True`, so
a file planted in a shared cache cannot run code: one that names any other Python object
is refused with a warning, and the run trains from the start.
"""

import hashlib
import io
import pickle
import warnings
from pathlib import Path

import torch

from pnf.files import write_atomically

KEEP = 2


class Checkpoints:
    """Checkpoints of one run in `folder`, written every `every` epochs."""

    def __init__(self, folder: Path, every: int):
        if every < 1:
            raise ValueError(f"checkpoint interval must be at least 1 epoch, not {every}")
        self.folder, self.every = Path(folder), every

    def due(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def save(self, epoch: int, state: dict) -> Path:
        """Write `state` for `epoch` atomically; drop all but the newest KEEP."""
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        path = self.folder / f"epoch-{epoch:05d}.pt"
        write_atomically(path, payload)
        write_atomically(path.with_suffix(".sha256"), hashlib.sha256(payload).hexdigest())
        for old in self._paths()[:-KEEP]:
            old.unlink(missing_ok=True)
            old.with_suffix(".sha256").unlink(missing_ok=True)
        return path

    def latest(self) -> dict | None:
        """The newest checkpoint whose checksum matches, or None: also when that one
        cannot be loaded safely (then the folder is not trusted, earlier ones included)."""
        for path in reversed(self._paths()):
            payload = path.read_bytes()
            digest = path.with_suffix(".sha256")
            if digest.exists() and digest.read_text().strip() == hashlib.sha256(payload).hexdigest():
                return _load_safely(path, payload)
            warnings.warn(f"checkpoint {path} is truncated or corrupt; falling back to an earlier one")
        return None

    def clear(self) -> None:
        for path in [*self.folder.glob("epoch-*"), *self.folder.glob(".epoch-*.part")]:
            path.unlink(missing_ok=True)
        if self.folder.exists() and not any(self.folder.iterdir()):
            self.folder.rmdir()

    def _paths(self) -> list[Path]:
        return sorted(self.folder.glob("epoch-*.pt"))


def _load_safely(path: Path, payload: bytes) -> dict | None:
    """The checkpoint in `payload` loaded with `weights_only=True`; None, with a warning,
    when it holds anything but tensors and plain values (nothing in it runs)."""
    try:
        return torch.load(io.BytesIO(payload), weights_only=True)
    except pickle.UnpicklingError:
        names = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(payload)))
        warnings.warn(f"checkpoint {path} cannot be loaded safely (it holds Python objects other than tensors and "
                      f"plain values{': ' + names if names else ''}); training from the start")
        return None

