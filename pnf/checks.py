"""The checks every setting entering pnf goes through (fields, command-line options,
environment variables, task options), each naming the setting, the bad value and what
is accepted. Imports nothing of pnf, so every layer can use it."""

import math
import numbers
import os


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
