"""A run's configuration, checked when it is made (with `pnf.checks`), and whose hash is its
cache key."""

import hashlib
import inspect
import json
import numbers
from dataclasses import asdict, dataclass, field

import pnf
from pnf.checks import ConfigError, check_int, check_name
from pnf.data.fingerprint import fingerprint
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS


def cache_key(record: dict) -> str:
    """A cache key: the first 20 hex digits of the sha256 of `record` (JSON-able, key order
    ignored) with `pnf.RESULTS_VERSION` added."""
    record = {**record, "results_version": pnf.RESULTS_VERSION}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


def check_optimizer_options(optimizer: str, options: dict) -> dict:
    """`options` if each is a hyperparameter of `optimizer`'s class (checked against its
    signature) of the form of its preset or default: a number, a flag, a text or a list."""
    spec = OPTIMIZERS[optimizer]
    parameters = inspect.signature(spec.cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return options
    accepted = [name for name in list(parameters)[1:] if name not in ("model", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"optimizer_options {', '.join(unknown)}: {optimizer} has no such hyperparameter; "
                          f"it takes {', '.join(accepted)}")
    for name, value in options.items():
        usual = spec.preset.get(name, parameters[name].default)
        form = next((form for form in FORMS if isinstance(usual, FORMS[form])), None)
        if form and (not isinstance(value, FORMS[form]) or form != "a flag" and isinstance(value, bool)):
            raise ConfigError(f"optimizer_options {name}={value!r}: {optimizer}'s {name} is {form} "
                              f"(preset {usual!r})")
    return options


MAX_SEED = 2**63 - 1  # torch's generators take 64 bits; pnf seeds other streams with small offsets from it
FORMS = {"a flag": bool, "a number": numbers.Real, "a text": str, "a list": (list, tuple)}  # bool first: it is a number


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

    def __post_init__(self):
        check_name("activation", self.activation, ACTIVATIONS)
        check_name("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("optimizer_options", "field_options", "task_options"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a dict of settings by name, not {getattr(self, name)!r}")
        check_optimizer_options(self.optimizer, self.optimizer_options)
        # resolution: 2 pixels, grid points or rays a side at least (its memory is checked by the task)
        for name, minimum in (("resolution", 2), ("epochs", 1), ("batch_size", 1), ("eval_every", 1)):
            check_int(name, getattr(self, name), minimum)
        check_int("seed", self.seed, 0, MAX_SEED)
        for epoch in self.snapshot_epochs:
            if check_int("snapshot_epochs", epoch, 1) > self.epochs:
                raise ConfigError(f"snapshot_epochs {self.snapshot_epochs} must be epochs 1..{self.epochs}")

    def key(self) -> str:
        """The cache key: a hash of every field, of the results version and of the content
        of the data's files (for embedded data, its revision if it has one)."""
        files = fingerprint(self.data)
        return cache_key({"config": asdict(self), **({"data_sha256": files} if files else {})})

    @property
    def label(self) -> str:
        return f"{self.task}/{self.activation}/{self.optimizer}/seed{self.seed}"
