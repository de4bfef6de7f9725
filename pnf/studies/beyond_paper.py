"""The fair protocol for comparing optimizers beyond the paper's single learning rates.

1. Sweep: per (optimizer, activation), `count` learning rates log-spaced around the
   optimizer's preset for that activation (`lr_grid`), each trained once on one tuning
   image (`sweep_configs`).
2. Pick: the rate with the highest whole-image PSNR at the last epoch on the tuning
   image; a run that diverged loses to every run that did not (`best_lr`).
3. Evaluate: the picked rate on the other images × seeds (`evaluation_configs`), and
   every optimizer also at its preset untouched (`evaluation_configs(..., lr=None)`); a
   picked rate equal to the preset's is the preset's config (one run, cached once).

`SETTINGS` give the protocol's grid per profile (the beyond-the-paper report's) and
`protocol_configs` its runs known before any has run. `peak_memory` measures what an
optimizer's steps add to a process's peak resident memory.

"Learning rate" is the optimizer's `lr` option; for Muon that is the Muon part's, its
AdamW part keeps its preset. An optimizer registered `full_batch` (L-BFGS) is run with
the whole image as its one batch. Configs are `pnf.config.RunConfig`s, run by the caller.
"""

import copy
import json
import math
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

import torch

from pnf.checks import check_int
from pnf.config import RunConfig
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS, make_optimizer
from pnf.profiles import check_profile
from pnf.runs.cache import memoized
from pnf.studies.study import Study, register
from pnf.studies.robustness import DIV2K, FIELDS, PHOTOS, available
from pnf.tasks.image import PAPER, ImageFitting, ImageSettings
from pnf.train import optimizer_step

# esgd_primed: the ESGD variant pnf.optim.esgd_variants recommends
ALL_OPTIMIZERS = ("adam", "esgd", "esgd_primed", "muon", "soap", "kron", "sophiah", "lbfgs")


@dataclass(frozen=True)
class BeyondSettings:
    """`training`: resolution, batch, epochs, evaluation interval and seeds of every run;
    `optimizers` run at their presets, `tuned` ones also swept over `rates` learning rates
    (span `span` around the preset) on `tuning_image` and evaluated at the picked rate on
    `images` (those present count) × seeds; `weight_scaled` ones also run with the field's
    registered weight scale (fields that have one); `memory_steps` steps measure memory."""

    training: ImageSettings
    fields: tuple
    optimizers: tuple
    tuned: tuple
    weight_scaled: tuple = ("adam", "esgd")
    tuning_image: str = "skimage:chelsea"
    images: tuple = ("skimage:astronaut",)
    rates: int = 5
    span: float = 10.0
    memory_steps: int = 3


SETTINGS = {
    # every optimizer swept (5 rates) on chelsea, evaluated on the image-set study's other images × 3 seeds
    "paper": BeyondSettings(replace(PAPER, seeds=3, snapshot_epoch=None), FIELDS, ALL_OPTIMIZERS, ALL_OPTIMIZERS,
                            images=DIV2K + tuple(p for p in PHOTOS if p != "skimage:chelsea")),
    # four fields, every optimizer but Muon and L-BFGS at its preset, Adam and ESGD swept over 5 rates; one image,
    # one seed, 8 epochs: ~20 core-minutes. Muon's and L-BFGS's epochs cost ~8x and ~25x Adam's on this CPU
    # (bf16 Newton-Schulz, full-batch steps), ~30 more core-minutes: they are left to 'paper'
    "cpu": BeyondSettings(replace(PAPER, epochs=8, eval_every=1, snapshot_epoch=None), FIELDS,
                          tuple(o for o in ALL_OPTIMIZERS if o not in ("muon", "lbfgs")), ("adam", "esgd")),
    # ~2.5 min of one core: the sine field, 4 epochs, SOAP and SophiaH at their presets, Adam and ESGD over 3 rates
    "quick": BeyondSettings(replace(PAPER, epochs=4, eval_every=1, snapshot_epoch=None), ("sine",),
                            ("adam", "esgd", "soap", "sophiah"), ("adam", "esgd"), rates=3, span=math.sqrt(10)),
    "tiny": BeyondSettings(replace(PAPER, resolution=24, batch_size=96, epochs=2, eval_every=1, snapshot_epoch=None),
                           ("sine",), ("adam", "esgd", "lbfgs"), ("adam", "esgd"), rates=2, memory_steps=1),
}
TRAINING = {name: settings.training for name, settings in SETTINGS.items()}  # the preamble's sections


def settings_for(profile: str) -> BeyondSettings:
    return SETTINGS[check_profile(profile)]


def base_config(settings: BeyondSettings, activation: str, optimizer: str, image: str) -> RunConfig:
    s = settings.training
    return RunConfig(task="image", activation=activation, optimizer=optimizer, data=image, resolution=s.resolution,
                     epochs=s.epochs, batch_size=s.batch_size, eval_every=s.eval_every)


def protocol_configs(settings: BeyondSettings) -> tuple[dict, dict]:
    """The protocol's runs known before any has run: (evaluations, sweeps), the first keyed
    (field, optimizer, "preset" | "weight-scaled") with the configs on the evaluation
    images × seeds, the second (field, optimizer) with the sweep's configs on the tuning
    image (judged at its last epoch only). The picked rates' runs follow from the sweeps."""
    images, seeds = available(settings.images), list(range(settings.training.seeds))
    evaluations, sweeps = {}, {}
    for activation in settings.fields:
        scale = ACTIVATIONS[activation].weight_scale
        for optimizer in settings.optimizers:
            base = base_config(settings, activation, optimizer, images[0])
            evaluations[activation, optimizer, "preset"] = evaluation_configs(base, None, images, seeds)
            if scale and optimizer in settings.weight_scaled:
                scaled = replace(base, field_options={"weight_scale": scale})
                evaluations[activation, optimizer, "weight-scaled"] = evaluation_configs(scaled, None, images, seeds)
            if optimizer in settings.tuned:
                sweeps[activation, optimizer] = sweep_configs(
                    replace(base, data=settings.tuning_image, eval_every=settings.training.epochs),
                    settings.rates, settings.span)
    return evaluations, sweeps


def lr_grid(preset_lr: float, count: int = 5, span: float = 10.0) -> list[float]:
    """`count` learning rates, log-spaced from `preset_lr / span` to `preset_lr · span`
    (ascending; the preset itself is the middle one when `count` is odd)."""
    if not (preset_lr > 0 and math.isfinite(preset_lr)):
        raise ValueError(f"invalid preset_lr: {preset_lr}; a positive finite learning rate")
    check_int("count", count, 1)
    if not (span >= 1 and math.isfinite(span)) or (count > 1 and span == 1):
        raise ValueError(f"invalid span: {span}; a finite factor >= 1 (> 1 for more than one rate)")
    if count == 1:
        return [preset_lr]
    return [preset_lr * span ** (-1 + 2 * i / (count - 1)) for i in range(count)]


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

    `results` are `pnf.runs.cache.Result`s of one sweep: one optimizer, activation, image
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
    """`base` at learning rate `lr` (None, or the preset's rate: the preset untouched) on
    each of `images` (data sources) × `seeds`, image-major."""
    if not images or not seeds:
        raise ValueError(f"evaluation needs images and seeds; got images={images}, seeds={seeds}")
    options = {name: value for name, value in base.optimizer_options.items() if name != "lr"}
    if lr is not None and lr != OPTIMIZERS[base.optimizer].hyperparameters(base.activation)["lr"]:
        options["lr"] = lr
    return [full_batch(replace(base, data=image, seed=seed, optimizer_options=options))
            for image in images for seed in seeds]


def peak_memory(configs: list[RunConfig], steps: int = 3) -> list[float]:
    """MiB that each config's optimizer adds to its process's resident memory at the peak:
    in a fresh one-thread process that built the config's field and data (random pixels
    `[resolution, resolution, 3]`) and took one step of one pixel on a copy of the field
    (so what the optimizer and autograd load lazily is loaded), the peak resident memory over building the optimizer and taking
    `steps` steps of `batch_size` pixels (one step for a `full_batch` optimizer), minus the
    resident memory before. It counts the optimizer's state, the autograd graph and the
    step's temporaries. Measured once per configs, steps, torch version and kind of machine,
    then cached like a run (`pnf.runs.cache.memoized`). Linux only: the peak is reset through
    /proc/self/clear_refs (an import's higher peak would otherwise hide the steps'); NaN
    elsewhere."""
    check_int("steps", steps, 1)
    if not os.access("/proc/self/clear_refs", os.W_OK):
        return [math.nan] * len(configs)
    jobs = [(c, 1 if OPTIMIZERS[c.optimizer].full_batch else steps) for c in configs]

    def measure() -> list[float]:
        with ThreadPoolExecutor(os.cpu_count()) as pool:  # processes side by side: each peak is its own
            return list(pool.map(lambda job: _measure(*job), jobs))

    inputs = {"configs": [asdict(c) for c in configs], "steps": steps, "torch": torch.__version__,
              "machine": platform.machine()}
    return memoized("peak-memory", inputs, measure)


def _measure(config: RunConfig, steps: int) -> float:
    """`print_added_peak(steps)` on `config` in a fresh process; MiB."""
    code = f"from pnf.studies import beyond_paper; beyond_paper.print_added_peak({steps})"
    child = subprocess.run([sys.executable, "-c", code],
                           input=json.dumps(asdict(config)), capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    if child.returncode:
        raise RuntimeError(f"measuring the memory of {config.label} failed:\n{child.stderr[-2000:]}")
    return int(child.stdout.split()[-1]) / 2**10


def print_added_peak(steps: int) -> None:
    """Print the KiB that the optimizer and `steps` steps add to this process's peak
    resident memory, for the RunConfig read as JSON from stdin (see `peak_memory`)."""
    config = RunConfig(**json.loads(sys.stdin.read()))
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(config.seed)
    task = ImageFitting(torch.rand(config.resolution, config.resolution, 3, generator=generator), torch.device("cpu"))
    model = task.make_model(config.activation, **config.field_options)
    warm_up = copy.deepcopy(model)  # one step of a throwaway copy loads what the optimizer imports lazily
    optimizer_step(warm_up, make_optimizer(config.optimizer, warm_up.parameters(), config.activation, model=warm_up,
                                           **config.optimizer_options), task.loss, task.coords[:1], task.colors[:1])
    del warm_up
    before = _kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak (VmHWM) restarts from the resident memory now
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.activation, seed=config.seed,
                               model=model, **config.optimizer_options)
    for _ in range(steps):
        batch = torch.randperm(len(task.coords), generator=generator)[: config.batch_size]
        optimizer_step(model, optimizer, task.loss, task.coords[batch], task.colors[batch])
    print(_kib("VmHWM") - before)


def _kib(entry: str) -> int:
    """`entry` of /proc/self/status (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(entry + ":"))


def known_configs(profile: str) -> list[RunConfig]:
    """The protocol's runs at `profile` known before any has run (all but the picked rates')."""
    evaluations, sweeps = protocol_configs(settings_for(profile))
    return [config for group in (*evaluations.values(), *sweeps.values()) for config in group]


register(Study("beyond_paper", "image", known_configs))
