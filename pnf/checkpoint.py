"""Checkpoints that survive a killed process.

A run's folder holds `epoch-NNNNN.pt` files, each with a `.sha256` beside it written
after the file itself is complete and renamed into place. A checkpoint counts only
when its checksum matches, so a truncated or corrupt one is skipped (with a warning)
and the run resumes from the last good one. The two newest are kept.
"""

import hashlib
import io
import os
import warnings
from pathlib import Path

import torch

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
        _write_atomically(path, payload)
        _write_atomically(path.with_suffix(".sha256"), hashlib.sha256(payload).hexdigest().encode())
        for old in self._paths()[:-KEEP]:
            old.unlink(missing_ok=True)
            old.with_suffix(".sha256").unlink(missing_ok=True)
        return path

    def latest(self) -> dict | None:
        """The newest checkpoint whose checksum matches, or None."""
        for path in reversed(self._paths()):
            payload = path.read_bytes()
            digest = path.with_suffix(".sha256")
            if digest.exists() and digest.read_text().strip() == hashlib.sha256(payload).hexdigest():
                return torch.load(io.BytesIO(payload), weights_only=False)
            warnings.warn(f"checkpoint {path} is truncated or corrupt; falling back to an earlier one")
        return None

    def clear(self) -> None:
        for path in self.folder.glob("epoch-*"):
            path.unlink(missing_ok=True)
        if self.folder.exists() and not any(self.folder.iterdir()):
            self.folder.rmdir()

    def _paths(self) -> list[Path]:
        return sorted(self.folder.glob("epoch-*.pt"))


def _write_atomically(path: Path, payload: bytes) -> None:
    partial = path.with_name(path.name + f".{os.getpid()}.part")
    with open(partial, "wb") as file:
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
