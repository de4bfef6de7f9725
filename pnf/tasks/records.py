"""The task registry: one record per task holds everything task-specific.

A task module defines and registers one `Task`:
- `build(config, device)`: the object the training loop drives, with
  `make_model(activation, **field_options)`, `epoch_data(epoch, generator) -> (inputs
  [N, in], targets [N, out])`, `loss(prediction, target)`, `evaluate(model) -> (metrics,
  reconstruction)`, `target()` and `metric` (the headline metric's name);
- `settings`: its profile section, one `Settings` per profile name (`pnf.profiles`);
- `field_presets`: per activation, the task's changes to the fields' 2D presets;
- `grid(task, settings, source)`: the configs its reports read (what a sweep computes);
- `cost(config) -> (optimizer steps an epoch, points a step, points an evaluation)`: what
  `pnf.estimate` prices a run by;
- `curve_metric` and `explorable`: how the explorer shows its runs.
Its reports are the notebooks `notebooks/<name>_*.ipynb`.
"""

from dataclasses import dataclass, field
from typing import Callable

import torch

from pnf.checks import ConfigError, check_int, check_name
from pnf.config import RunConfig
from pnf.data.sources import default_source
from pnf.profiles import check_profile


@dataclass(frozen=True)
class Settings:
    """What every task's profile section has: `resolution` (the task's working size),
    `batch_size`, `epochs`, `eval_every` (epochs between evaluations), `seeds`, and
    `snapshot_epoch` (where the paper shows a reconstruction)."""

    resolution: int
    batch_size: int
    epochs: int
    eval_every: int
    seeds: int = 1
    snapshot_epoch: int | None = None

    def __post_init__(self):
        check_int("seeds", self.seeds, 1)  # the other fields are checked by the RunConfigs made of them

    def run_options(self) -> dict:
        """The RunConfig fields a task's settings add (`field_options`, `task_options`)."""
        return {}


@dataclass(frozen=True)
class Task:
    name: str
    build: Callable
    settings: dict
    data_kind: str  # the kind of data source it reads: "image", "mesh" or "scene"
    grid: Callable
    cost: Callable
    field_presets: dict = field(default_factory=dict)
    curve_metric: str = ""
    explorable: bool = False
    task_options: tuple = ()  # the names a config's `task_options` may set

    def settings_for(self, profile: str) -> Settings:
        return self.settings[check_profile(profile)]

    def default_source(self) -> str:
        """The paper's data when its files are present, else the embedded stand-in."""
        return default_source(self.data_kind)

    def configs(self, settings: Settings, source: str, activations: list[str], optimizers: list[str],
                optimizer_options: dict | None = None) -> list[RunConfig]:
        """RunConfigs of every activation × optimizer × seed at `settings`;
        `optimizer_options` maps an optimizer to changes of its preset."""
        snapshots = (settings.snapshot_epoch,) if settings.snapshot_epoch else ()
        return [
            RunConfig(task=self.name, activation=activation, optimizer=optimizer, data=source,
                      resolution=settings.resolution, epochs=settings.epochs, batch_size=settings.batch_size,
                      seed=seed, eval_every=settings.eval_every, snapshot_epochs=snapshots,
                      optimizer_options=(optimizer_options or {}).get(optimizer, {}), **settings.run_options())
            for activation in activations
            for optimizer in optimizers
            for seed in range(settings.seeds)
        ]


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    return TASKS[check_name("task", name, TASKS)]


def make_task(config: RunConfig, device):
    """The task object of a RunConfig, on `device`; task options it does not take are refused."""
    task = get_task(config.task)
    unknown = sorted(set(config.task_options) - set(task.task_options))
    if unknown:
        raise ConfigError(f"task {task.name!r} takes the task options {list(task.task_options) or 'none'}, "
                          f"not {unknown}")
    return task.build(config, device)


def grid(profile: str, tasks: list[str] | None = None) -> list[RunConfig]:
    """Every config the reports of `tasks` (default: all) read at `profile`, without duplicates."""
    chosen = [get_task(name) for name in (tasks or TASKS)]
    configs = [c for task in chosen for c in task.grid(task, task.settings_for(profile), task.default_source())]
    return list({config.key(): config for config in configs}.values())


@torch.no_grad()
def in_chunks(function: Callable, inputs: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """`function` of `inputs` `[N, ...]` taken `chunk` rows at a time, the outputs
    concatenated along the first dimension: bounded memory, and on a CPU a 256²-pixel
    evaluation 2.2× faster than in one piece (activations that stay in cache), bit for bit
    the same (tests/test_fields.py)."""
    return torch.cat([function(inputs[i : i + chunk]) for i in range(0, len(inputs), chunk)])
