"""The study registry: a study that trains runs declares them here, so that the sweep, the
estimate and `make bench` collect them (`pnf.estimate.configs`) and nothing lists them by hand.

A study module defines and registers one `Study`: its name (its notebook's), the task whose
runs they are (a sweep's `--family`), and `configs(profile)`, the runs known before any has
run. Studies that only analyse (`curvature`, `esgd_failures`) cache their results themselves
(`pnf.runs.cache.memoized`) and register nothing.
"""

from dataclasses import dataclass
from typing import Callable

from pnf.config import RunConfig


@dataclass(frozen=True)
class Study:
    name: str
    task: str
    configs: Callable[[str], list[RunConfig]]


STUDIES: dict[str, Study] = {}


def register(study: Study) -> Study:
    STUDIES[study.name] = study
    return study


def study_configs(profile: str, tasks: list[str] | None = None) -> list[RunConfig]:
    """The runs every registered study of `tasks` (default: all) declares at `profile`."""
    return [config for study in STUDIES.values() if not tasks or study.task in tasks
            for config in study.configs(profile)]
