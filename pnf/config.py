"""A run's configuration, checked when it is made, and whose hash is its cache key; and
the checks every setting entering pnf goes through (fields, command-line options,
environment variables), each naming the setting, the bad value and what is accepted."""

import hashlib
import inspect
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field

import pnf
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS


def cache_key(record: dict) -> str:
    """A cache key: the first 20 hex digits of the sha256 of `record` (JSON-able, key order
    ignored) with `pnf.RESULTS_VERSION` added."""
    record = {**record, "results_version": pnf.RESULTS_VERSION}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


class ConfigError(ValueError):
    """A setting out of its range or form."""


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """`value` if it is an integer ≥ `minimum` (and ≤ `maximum`), else a ConfigError naming setting `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum or (
            maximum is not None and value > maximum):
        accepted = f"≥ {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ConfigError(f"{name} must be an integer {accepted}, not {value!r}")
    return int(value)


def check_number(name: str, value, minimum: float, maximum: float = math.inf, positive: bool = False) -> float:
    """`value` if it is a finite number in [`minimum`, `maximum`] (above 0 when `positive`), else a
    ConfigError naming setting `name`."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not minimum <= value <= maximum or (positive and value <= 0):
        accepted = ("a positive number" if positive else f"a number ≥ {minimum:g}" if maximum == math.inf
                    else f"a number from {minimum:g} to {maximum:g}")
        raise ConfigError(f"{name} must be {accepted}, not {value!r}")
    return float(value)


def check_memory(setting: str, needed_bytes: float) -> None:
    """A ConfigError naming `setting` when what it makes pnf allocate (`needed_bytes`, an estimate)
    exceeds this machine's memory, raised before anything is allocated."""
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed_bytes > available:
        raise ConfigError(f"{setting} needs about {needed_bytes / 2**30:,.0f} GiB of memory; this machine has "
                          f"{available / 2**30:,.0f} GiB: use a smaller value")


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """Environment variable `name` as an integer ≥ `minimum`; `default` when unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not an integer: set it to an integer ≥ {minimum}, or unset it "
                          f"(default {default})") from None
    return check_int(name, value, minimum)


def check_name(setting: str, name: str, registered) -> str:
    if name not in registered:
        raise ConfigError(f"unknown {setting} {name!r}; registered: {', '.join(registered)}")
    return name


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
        from pnf.data.fingerprint import fingerprint  # the data loaders import this module's checks

        files = fingerprint(self.data)
        return cache_key({"config": asdict(self), **({"data_sha256": files} if files else {})})

    @property
    def label(self) -> str:
        return f"{self.task}/{self.activation}/{self.optimizer}/seed{self.seed}"
