"""A run's configuration: a small frozen record whose hash is its cache key."""

import hashlib
import json
from dataclasses import asdict, dataclass, field

import pnf


@dataclass(frozen=True)
class RunConfig:
    """One training run. `resolution` is the task's working size (image side in
    pixels, side of an occupancy grid, width of a view); `*_options` change the
    presets of the optimizer, the field and the task."""

    task: str
    activation: str
    optimizer: str
    data: str
    resolution: int
    epochs: int
    batch_size: int
    seed: int = 0
    eval_every: int = 1
    snapshot_epochs: tuple = ()
    optimizer_options: dict = field(default_factory=dict)
    field_options: dict = field(default_factory=dict)
    task_options: dict = field(default_factory=dict)

    def key(self) -> str:
        """The cache key: a hash of every field and of the results version."""
        payload = json.dumps({"config": asdict(self), "results_version": pnf.RESULTS_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    @property
    def label(self) -> str:
        return f"{self.task}/{self.activation}/{self.optimizer}/seed{self.seed}"
