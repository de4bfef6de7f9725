"""Tasks: what a field is fitted to. Each task module registers a builder here.

A task gives the training loop everything task-specific:
- `make_model(activation) -> nn.Module`, with the task's field preset;
- `epoch_data(epoch, generator) -> (inputs [N, in], targets [N, out])` on its device;
- `loss(prediction, target) -> scalar tensor`;
- `evaluate(model) -> (metrics: dict[str, float], reconstruction: np.ndarray)`, with
  `metric` the name of the headline metric and the reconstruction what a report shows
  of the fitted field (an image, an occupancy grid, a rendered view);
- `target() -> np.ndarray`, the ground truth a reconstruction is shown beside.
"""

from typing import Callable

TASKS: dict[str, Callable] = {}


def register(name: str):
    """Decorator: register `build(config, device) -> task` under `name`."""

    def decorate(build: Callable) -> Callable:
        TASKS[name] = build
        return build

    return decorate


def make_task(config, device):
    """The task of a `RunConfig`, on `device`."""
    from pnf.tasks import image  # noqa: F401  (registers "image")
    from pnf.tasks import occupancy  # noqa: F401  (registers "occupancy")
    from pnf.tasks import nerf  # noqa: F401  (registers "nerf")

    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; registered: {', '.join(TASKS)}")
    return TASKS[config.task](config, device)
