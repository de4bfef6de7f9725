"""Per-layer traces of ESGD training a field on an image: why it stalls or diverges.

`trace_image_training` trains a field on an image exactly as `pnf.train` does (a seeded
permutation of the pixels per epoch, mini-batches, MSE, `pnf.train.optimizer_step`) and
records after every step, for every weight matrix of the field:

- `weight_norm` `[S, L]`: ‖θ‖ (Frobenius) after each step (`initial_weight_norm` `[L]`: before);
- `update_ratio` `[S, L]`: ‖Δθ‖ / ‖θ‖ of that step;
- `scale_quantiles` `[S, L, 5]`: the 0, 10, 50, 90, 100 % quantiles over the matrix of
  `sqrt(D̂)`, the bias-corrected curvature scale ESGD divides by (NaN for an optimizer
  without one, such as Adam); the effective step `lr / (sqrt(D̂) + ε)` is its image
  under a decreasing map (`effective_step`);
- `refresh_change` `[S, L]`: at curvature refreshes, ‖D_new − D_old‖ / ‖D_old‖ of the
  raw average (NaN elsewhere);
- `fresh_over_held` `[S, L]`: at refreshes, the median over the matrix of
  `sqrt((Hv)² / D̂_old)`: the curvature just measured against the one the steps before
  used (> 1: the held curvature was too small, so the steps were too large).

After step 1 and every `eval_every` steps it evaluates the whole image (`mse`, `psnr`). A run whose
mini-batch loss is not finite stops there (`diverged_step`, counted from 1).

The report contrasts a failing case (the sine field on `FAILING`, seed 0) with a succeeding
one, picked by `pick_succeeding` from the traces of `candidates`: the paper's lion when the
data folder has it, else the image-set study's embedded photographs.
"""

import math
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from pnf.checks import check_int
from pnf.data.images import load_image, pixel_grid
from pnf.fields import make_field
from pnf.metrics import psnr
from pnf.optim import ESGD, make_optimizer
from pnf.profiles import check_profile
from pnf.runs.cache import memoized
from pnf.studies.robustness import PHOTOS, STALL_DB
from pnf.tasks.records import in_chunks
from pnf.train import optimizer_step

QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)
LAYER_KEYS = ("weight_norm", "update_ratio", "scale_quantiles", "refresh_change", "fresh_over_held")
FAILING = "skimage:astronaut"  # the sine field's first ESGD step (seed 0) wrecks it here


@dataclass(frozen=True)
class TraceSettings:
    """How far a report traces: image side (pixels), field width, epochs of traced
    training, seeds of the first-step table, pixels per batch, steps between evaluations."""

    resolution: int
    hidden_features: int
    epochs: int
    seeds: int
    batch_size: int
    eval_every: int

    def steps(self) -> int:
        """Optimizer steps in `epochs` passes over the image."""
        return self.epochs * math.ceil(self.resolution**2 / self.batch_size)


SETTINGS = {  # the paper's image setting (256², batch 512) from quick on; tiny is for tests
    "tiny": TraceSettings(resolution=32, hidden_features=32, epochs=2, seeds=2, batch_size=64, eval_every=4),
    "quick": TraceSettings(resolution=256, hidden_features=256, epochs=1, seeds=3, batch_size=512, eval_every=16),
    "cpu": TraceSettings(resolution=256, hidden_features=256, epochs=5, seeds=5, batch_size=512, eval_every=32),
    "paper": TraceSettings(resolution=256, hidden_features=256, epochs=20, seeds=5, batch_size=512, eval_every=32),
}


def trace_settings(profile: str, epochs: int | None = None, seeds: int | None = None) -> TraceSettings:
    """The settings of `profile` with `epochs` and `seeds` (integers ≥ 1) replaced when given."""
    given = {"epochs": epochs, "seeds": seeds}
    return replace(SETTINGS[check_profile(profile)],
                   **{name: check_int(name, value, 1) for name, value in given.items() if value is not None})


def trace_field(activation: str, optimizer: str, source: str, seed: int, settings: TraceSettings,
                steps: int | None = None, **optimizer_options) -> dict:
    """`trace_image_training` of a fresh field `activation` (seeded by `seed`) on image
    `source` under the registered `optimizer` with its preset, for `steps` (default: the
    settings' epochs); cached like a run (`pnf.runs.cache.memoized`)."""
    steps = steps or settings.steps()
    shape = {name: getattr(settings, name) for name in ("resolution", "hidden_features", "batch_size", "eval_every")}
    inputs = {"activation": activation, "optimizer": optimizer, "source": source, "seed": seed, "steps": steps,
              "settings": shape, "options": optimizer_options}

    def trace():
        torch.manual_seed(seed)
        model = make_field(activation, 2, 3, hidden_features=settings.hidden_features)
        chosen = make_optimizer(optimizer, model.parameters(), activation, seed=seed, **optimizer_options)
        pixels = load_image(source, settings.resolution).pixels.numpy()
        return trace_image_training(model, chosen, pixels, steps, settings.batch_size, seed, settings.eval_every)

    return memoized("trace", inputs, trace, sources=(source,))


def candidates(source: str) -> list[str]:
    """Images to look for a succeeding case on: the report's `source` when it is not
    `FAILING` (the paper's lion, when the data folder has it), else the image-set study's
    embedded photographs but `FAILING`."""
    return [source] if source != FAILING else [photo for photo in PHOTOS if photo != FAILING]


def psnr_gain(trace: dict) -> float:
    """Whole-image PSNR (dB) gained from the first evaluation of `trace` to its last."""
    return float(trace["psnr"][-1] - trace["psnr"][0])


def pick_succeeding(traces: dict[str, dict]) -> tuple[str, bool]:
    """(image, succeeds) of ESGD `traces` by image: the image on which ESGD gains the most
    PSNR over the traced steps, and whether that gain is at least `STALL_DB` (the image-set
    study's stall threshold; below it, every candidate stalls)."""
    image = max(traces, key=lambda name: psnr_gain(traces[name]))
    return image, psnr_gain(traces[image]) >= STALL_DB


def effective_step(lr: float, eps: float, scale: np.ndarray) -> np.ndarray:
    """`lr / (scale + ε)`: the step per unit of (bias-corrected) momentum."""
    return lr / (np.asarray(scale) + eps)


def trace_image_training(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    pixels: np.ndarray,
    steps: int,
    batch_size: int = 512,
    seed: int = 0,
    eval_every: int = 128,
) -> dict:
    """Train `model` on the RGB image `pixels` `[H, W, 3]` (values in [0, 1]) for `steps`
    optimizer steps and return the traces described in the module docstring, as numpy
    arrays (S steps, L weight matrices in `layers`, E evaluations at `eval_step`).
    `seed` seeds the batch order; the model and optimizer come seeded by the caller."""
    if np.ndim(pixels) != 3 or np.shape(pixels)[-1] != 3:
        raise ValueError(f"pixels must be an RGB image [H, W, 3], got shape {np.shape(pixels)}")
    for setting, value in (("steps", steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        check_int(setting, value, 1)
    image = torch.as_tensor(pixels, dtype=torch.float32)
    coords, colors = pixel_grid(*image.shape[:2]), image.reshape(-1, 3)
    generator = torch.Generator().manual_seed(seed)
    matrices = {name: p for name, p in model.named_parameters() if p.dim() >= 2}
    initial_norms = [float(p.detach().norm()) for p in matrices.values()]
    series = {key: [] for key in ("loss", "eval_step", "mse", "psnr", *LAYER_KEYS)}
    _evaluate(model, coords, image, 0, series)
    diverged_step = None
    steps_per_epoch = math.ceil(len(coords) / batch_size)
    for step in range(1, steps + 1):
        start = (step - 1) % steps_per_epoch * batch_size
        if start == 0:
            order = torch.randperm(len(coords), generator=generator)
        batch = order[start : start + batch_size]
        before = {name: (p.detach().clone(), _raw_curvature(optimizer, p)) for name, p in matrices.items()}
        loss = float(optimizer_step(model, optimizer, F.mse_loss, coords[batch], colors[batch]))
        series["loss"].append(loss)
        if not math.isfinite(loss):
            diverged_step = step
            break
        rows = [_layer_row(optimizer, p, *before[name]) for name, p in matrices.items()]
        for key in LAYER_KEYS:
            series[key].append([row[key] for row in rows])
        if step == 1 or step % eval_every == 0 or step == steps:
            _evaluate(model, coords, image, step, series)
    group = optimizer.param_groups[0]
    return {"layers": list(matrices), "step": np.arange(1, len(series["loss"]) + 1),
            **{key: np.array(values) for key, values in series.items()},
            "initial_weight_norm": np.array(initial_norms), "lr": group["lr"], "eps": group.get("eps", 0.0),
            "diverged_step": diverged_step}


def _raw_curvature(optimizer, p: torch.Tensor) -> torch.Tensor | None:
    state = optimizer.state.get(p, {})
    return state["exp_avg_d"].clone() if "exp_avg_d" in state else None


def _layer_row(optimizer, p, weight_before, d_before) -> dict:
    """The statistics of one weight matrix after a step (see the module docstring)."""
    weight = p.detach()
    row = {"weight_norm": float(weight.norm()),
           "update_ratio": float((weight - weight_before).norm() / weight_before.norm()),
           "scale_quantiles": [math.nan] * len(QUANTILES),
           "refresh_change": math.nan, "fresh_over_held": math.nan}
    if not isinstance(optimizer, ESGD) or "exp_avg_d" not in optimizer.state[p]:
        return row  # no curvature average (yet)
    d_now, beta2 = optimizer.state[p]["exp_avg_d"], optimizer.param_groups[0]["betas"][1]
    count = optimizer.steps if optimizer.bias_correction == "steps" else optimizer.refreshes  # k of 1 − β2^k
    scale = (d_now / (1 - beta2**count)).sqrt()  # sqrt(D̂), what ESGD's next step divides by (before ε)
    row["scale_quantiles"] = torch.quantile(scale.flatten(), torch.tensor(QUANTILES)).tolist()
    if d_before is not None and not torch.equal(d_now, d_before):
        row["refresh_change"] = float((d_now - d_before).norm() / d_before.norm())
        fresh = ((d_now - beta2 * d_before) / (1 - beta2)).clamp(min=0)
        held = d_before / (1 - beta2 ** max(count - 1, 1))
        row["fresh_over_held"] = float((fresh / held.clamp(min=1e-30)).sqrt().median())
    return row


@torch.no_grad()
def _evaluate(model, coords: torch.Tensor, image: torch.Tensor, step: int, series: dict) -> None:
    """Append the step, whole-image MSE and PSNR (dB, of the prediction clipped to [0, 1])
    to `series`."""
    prediction = in_chunks(model, coords).reshape(image.shape)
    series["eval_step"].append(step)
    series["mse"].append(float(F.mse_loss(prediction, image)))
    series["psnr"].append(psnr(prediction.clamp(0, 1).numpy(), image.numpy()))


def summarize(trace: dict) -> dict:
    """Key numbers of a trace. The first move is the first step that changed the weights
    (step 1, or the first after priming): its largest ‖Δθ‖/‖θ‖, that matrix, the step, and
    the largest effective step `lr/(sqrt(D̂)+ε)` it used over all matrices (NaN without
    curvature); then the median move over the later steps, and the first and last
    whole-image PSNR (dB)."""
    ratios = trace["update_ratio"]  # [S, L]
    first = int(np.argmax(ratios.max(axis=1) > 0))  # the first step that moved (0 when none did)
    worst = int(np.argmax(ratios[first]))
    smallest_scale = trace["scale_quantiles"][first, :, 0]
    later = ratios[first + 1 :]
    return {
        "first_move_step": first + 1,
        "first_move_ratio": float(ratios[first, worst]),
        "first_move_layer": trace["layers"][worst],
        "first_move_max_effective_step": float(np.max(effective_step(trace["lr"], trace["eps"], smallest_scale))),
        "later_median_ratio": float(np.median(later)) if len(later) else math.nan,
        "psnr_start": float(trace["psnr"][0]),
        "psnr_end": float(trace["psnr"][-1]),
        "diverged_step": trace["diverged_step"],
    }


def plot_trace(trace: dict, title: str = "") -> plt.Figure:
    """Four panels against the step: mini-batch loss with whole-image MSE; ‖Δθ‖/‖θ‖ per
    weight matrix; the median effective step per matrix with its 10–90 % band; ‖θ‖."""
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.4), layout="tight")
    step = trace["step"][: len(trace["update_ratio"])]
    axes[0].semilogy(trace["step"], trace["loss"], lw=0.8, label="mini-batch loss")
    axes[0].semilogy(trace["eval_step"], trace["mse"], "o-", ms=3, label="whole-image MSE")
    axes[0].legend(fontsize=8)
    steps_of = effective_step(trace["lr"], trace["eps"], trace["scale_quantiles"])  # [S, L, 5], decreasing map
    for layer, name in enumerate(trace["layers"]):
        line, = axes[1].semilogy(step, trace["update_ratio"][:, layer], lw=0.8, label=name)
        axes[2].semilogy(step, steps_of[:, layer, 2], lw=0.8, color=line.get_color())
        axes[2].fill_between(step, steps_of[:, layer, 3], steps_of[:, layer, 1], color=line.get_color(), alpha=0.15)
        norms = np.concatenate([[trace["initial_weight_norm"][layer]], trace["weight_norm"][:, layer]])
        axes[3].semilogy(np.arange(len(norms)), norms, lw=0.8, color=line.get_color())
    axes[1].legend(fontsize=7)
    labels = ["loss", "‖Δθ‖ / ‖θ‖ per step", "lr / (sqrt(D̂) + ε): median, 10–90 %", "‖θ‖ (step 0: initial)"]
    for ax, label in zip(axes, labels):
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
    figure.suptitle(title)
    return figure


def plot_psnr(traces: dict[str, dict], title: str = "") -> plt.Figure:
    """Whole-image PSNR (dB) against the step for several labelled traces."""
    figure, ax = plt.subplots(figsize=(5, 3.4), layout="tight")
    for label, trace in traces.items():
        ax.plot(trace["eval_step"], trace["psnr"], "o-", ms=3, label=label)
    ax.set(xlabel="step", ylabel="PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return figure


def summary_table(traces: dict) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of `summarize` for labelled traces (one row each), with the
    whole-image MSE before and after step 1; for `pnf.report.text.markdown_table`. The
    median later move is left out when no trace has a step after its first move (a one-step
    trace has none); an optimizer without curvature (Adam) has no effective step ("none")."""
    summaries = {label: summarize(trace) for label, trace in traces.items()}
    later = any(np.isfinite(s["later_median_ratio"]) for s in summaries.values())
    header = ["run", "first move at step", "its largest ‖Δθ‖/‖θ‖", "of", "its largest lr/(√D̂+ε)",
              *["median later move"] * later, "MSE before → after step 1", "PSNR start → end (dB)"]
    rows = []
    for label, s in summaries.items():
        trace, step = traces[label], s["first_move_max_effective_step"]
        rows.append([
            label, s["first_move_step"], f"{s['first_move_ratio']:.3g}", f"`{s['first_move_layer']}`",
            f"{step:.3g}" if math.isfinite(step) else "none (no curvature)",
            *[f"{s['later_median_ratio']:.2e}" if math.isfinite(s["later_median_ratio"]) else "none"] * later,
            f"{trace['mse'][0]:.3g} → {trace['mse'][1]:.3g}", f"{s['psnr_start']:.1f} → {s['psnr_end']:.1f}",
        ])
    return header, rows
