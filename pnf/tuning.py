"""The fair protocol for comparing optimizers beyond the paper's single learning rates.

1. Sweep: per (optimizer, activation), `count` learning rates log-spaced around the
   optimizer's preset for that activation (`lr_grid`), each trained once on one tuning
   image (`sweep_configs`).
2. Pick: the rate with the highest whole-image PSNR at the last epoch on the tuning
   image; a run that diverged loses to every run that did not (`best_lr`).
3. Evaluate: the picked rate on the other images × seeds (`evaluation_configs`), and
   every optimizer also at its preset untouched (`evaluation_configs(..., lr=None)`).

"Learning rate" is the optimizer's `lr` option; for Muon that is the Muon part's, its
AdamW part keeps its preset. An optimizer registered `full_batch` (L-BFGS) is run with
the whole image as its one batch. Configs are `pnf.runs.RunConfig`s, run by the caller.
"""

import math
from dataclasses import replace

from pnf.optim import OPTIMIZERS
from pnf.runs import RunConfig


def lr_grid(preset_lr: float, count: int = 5, span: float = 10.0) -> list[float]:
    """`count` learning rates, log-spaced from `preset_lr / span` to `preset_lr · span`
    (ascending; the preset itself is the middle one when `count` is odd)."""
    if not (preset_lr > 0 and math.isfinite(preset_lr)):
        raise ValueError(f"invalid preset_lr: {preset_lr}; a positive finite learning rate")
    if int(count) != count or count < 1:
        raise ValueError(f"invalid count: {count}; a positive integer")
    if not (span >= 1 and math.isfinite(span)) or (count > 1 and span == 1):
        raise ValueError(f"invalid span: {span}; a finite factor >= 1 (> 1 for more than one rate)")
    if count == 1:
        return [preset_lr]
    exponents = [-1 + 2 * i / (count - 1) for i in range(count)]
    return [preset_lr * span**e for e in exponents]


def full_batch(config: RunConfig) -> RunConfig:
    """`config` with the whole image `[resolution², ...]` as one batch if its optimizer is
    registered `full_batch`, else unchanged."""
    if not OPTIMIZERS[config.optimizer].full_batch:
        return config
    if config.task != "image":
        raise ValueError(f"full-batch optimizer {config.optimizer!r} is set up for task 'image', not {config.task!r}")
    return replace(config, batch_size=config.resolution**2)


def sweep_configs(base: RunConfig, count: int = 5, span: float = 10.0) -> list[RunConfig]:
    """The learning-rate sweep of `base`'s optimizer and activation on `base.data` (the
    tuning image): `base` with `lr` set to each value of `lr_grid` around the preset."""
    preset = OPTIMIZERS[base.optimizer].hyperparameters(base.activation)["lr"]
    return [full_batch(replace(base, optimizer_options={**base.optimizer_options, "lr": lr}))
            for lr in lr_grid(preset, count, span)]


def final_score(result, metric: str = "psnr") -> float:
    """`metric` of `result` at its config's last epoch; -inf if the run diverged or the
    value is not finite."""
    if result.status != "ok":
        return -math.inf
    value = result.at_epoch(metric, result.config.epochs)
    return value if math.isfinite(value) else -math.inf


def best_lr(results: list, metric: str = "psnr") -> float:
    """The learning rate of the sweep's best run by `final_score` (the lower rate on a tie).

    `results` are `pnf.runs.Result`s of one sweep: one optimizer, activation, image
    and seed, differing only in `optimizer_options["lr"]`."""
    if not results:
        raise ValueError("best_lr needs the results of a sweep; got none")
    runs = {(r.config.optimizer, r.config.activation, r.config.data, r.config.seed) for r in results}
    if len(runs) != 1:
        raise ValueError(f"best_lr compares one sweep (optimizer, activation, image, seed); got {sorted(runs)}")
    if any("lr" not in r.config.optimizer_options for r in results):
        raise ValueError("best_lr needs optimizer_options['lr'] in every config of the sweep")
    scores = [(final_score(r, metric), -r.config.optimizer_options["lr"]) for r in results]
    score, negative_lr = max(scores)
    if score == -math.inf:
        raise ValueError(f"every run of the sweep of {results[0].config.optimizer} diverged; widen or lower the grid")
    return -negative_lr


def evaluation_configs(base: RunConfig, lr: float | None, images: list[str], seeds: list[int]) -> list[RunConfig]:
    """`base` at learning rate `lr` (None: the preset untouched) on each of `images`
    (data sources) × `seeds`, image-major."""
    if not images or not seeds:
        raise ValueError(f"evaluation needs images and seeds; got images={images}, seeds={seeds}")
    options = dict(base.optimizer_options) if lr is None else {**base.optimizer_options, "lr": lr}
    return [full_batch(replace(base, data=image, seed=seed, optimizer_options=options))
            for image in images for seed in seeds]
