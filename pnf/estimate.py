"""`python -m pnf.estimate PROFILE`: about how long `make figures` will train at PROFILE.

The optimizer steps of the runs its reports read that are not cached, each priced by
a few real steps of its (activation, optimizer) on the image MLP at batch 512 timed
here, scaled by the task's points × width² × hidden layers a step; an evaluated point
counts a third of a trained one (a forward pass without backward). Approximate:
NeRF's test renders and notebook start-ups are not counted; small fields run below that rate.
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

from pnf.config import RunConfig
from pnf.device import default_device
from pnf.fields import make_field
from pnf.optim import make_optimizer
from pnf.profiles import check_profile
from pnf.runs.cache import is_cached
from pnf.runs.executors import pool_workers
from pnf.studies import study_configs
from pnf.tasks import get_task, grid
from pnf.train import optimizer_step

REFERENCE_POINTS, REFERENCE_WIDTH, REFERENCE_LAYERS = 512, 256, 3  # the image MLP (make_field's defaults)
WARMUP_STEPS = 60  # untimed: ESGD's preset computes curvature every step for its first 50, then every 100th


def configs(profile: str, tasks: list[str] | None = None) -> list[RunConfig]:
    """Every run the reports of `tasks` (default: all, what `make figures` reads) read at
    `profile`, without duplicates: each task's grid and the runs each registered study of
    those tasks declares (`pnf.studies.study`)."""
    return list({config.key(): config for config in grid(profile, tasks) + study_configs(profile, tasks)}.values())


def evaluations(config: RunConfig) -> int:
    """Epochs at which the training loop evaluates: 0, every `eval_every`-th, the
    snapshots and the last."""
    every = range(0, config.epochs + 1, config.eval_every)
    return len({*every, *config.snapshot_epochs, config.epochs})


def reference_steps(config: RunConfig) -> float:
    """The run's optimizer steps and evaluations, each counted as its points × width² ×
    hidden layers over the reference step's (the image MLP at batch 512); an evaluated
    point is a third of a trained one."""
    steps_an_epoch, points, evaluated = get_task(config.task).cost(config)
    width = config.field_options.get("hidden_features", REFERENCE_WIDTH)
    layers = config.field_options.get("hidden_layers", REFERENCE_LAYERS)
    trained = config.epochs * steps_an_epoch * points
    points_total = trained + evaluations(config) * evaluated / 3
    return points_total * width**2 * layers / (REFERENCE_POINTS * REFERENCE_WIDTH**2 * REFERENCE_LAYERS)


def step_seconds(activation: str, optimizer: str, options: dict, points: int = REFERENCE_POINTS,
                 width: int = REFERENCE_WIDTH, timed: int = 5, device: torch.device | None = None) -> float:
    """Mean seconds of `timed` real steps of the image MLP `width` wide on `points` points (on
    `device`, default `pnf.device.default_device`), after `WARMUP_STEPS` steps on a few points
    that take the optimizer past its warm-up."""
    device = device or default_device()
    model = make_field(activation, 2, 3, hidden_features=width).to(device)
    chosen = make_optimizer(optimizer, model.parameters(), activation, model=model, **options)
    x, y = torch.rand(points, 2, device=device) * 2 - 1, torch.rand(points, 3, device=device)
    for _ in range(WARMUP_STEPS):
        optimizer_step(model, chosen, F.mse_loss, x[:16], y[:16])
    started = time.perf_counter()
    for _ in range(timed):
        loss = optimizer_step(model, chosen, F.mse_loss, x, y)
    loss.item()  # waits for a GPU
    return (time.perf_counter() - started) / timed


def workers() -> int:
    """Runs computed side by side."""
    return pool_workers() if os.environ.get("PNF_EXECUTOR", "inline") == "pool" else 1


def estimate(profile: str, price=step_seconds, tasks: list[str] | None = None) -> tuple[float, int, int]:
    """(seconds of training, runs missing, runs) of what the reports of `tasks` (default:
    all, `make figures`) read at `profile`; `price(activation, optimizer, options)` is the
    seconds of a reference step."""
    every = configs(profile, tasks)
    missing = [config for config in every if not is_cached(config)]
    options = {(c.activation, c.optimizer): c.optimizer_options for c in missing}
    prices = {pair: price(*pair, pair_options) for pair, pair_options in options.items()}
    seconds = sum(reference_steps(c) * prices[c.activation, c.optimizer] for c in missing)
    return seconds / workers(), len(missing), len(every)


def announce(profile: str, tasks: list[str] | None = None) -> str:
    """"this will take about N minutes (...)", or that nothing is left to train."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers()))  # as each run will have
    try:
        seconds, missing, total = estimate(profile, step_seconds, tasks)
    finally:
        torch.set_num_threads(threads)
    if not missing:
        return f"nothing to train: all {total} runs of profile {profile!r} are cached"
    minutes = max(1, round(seconds / 60))
    return (f"this will take about {minutes} minute{'s' * (minutes > 1)} ({missing} runs missing of {total}); "
            f"approximate: training and evaluation, {workers()} worker(s), priced by a short calibration on "
            f"{default_device()}")


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    print(announce(check_profile(arguments[0] if arguments else os.environ.get("PNF_PROFILE", "quick"))))


if __name__ == "__main__":
    main()
