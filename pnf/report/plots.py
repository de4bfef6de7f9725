"""Figures of runs: curves with seed bands (color by optimizer, line style by field),
images side by side, error maps, and a shaded view of an occupancy grid."""

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter

from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.report.stats import group_by_setting, seed_band, select, value
from pnf.report.text import label

PALETTE = ("tab:orange", "tab:olive", "tab:purple", "tab:green", "tab:gray", "tab:brown", "tab:pink", "tab:cyan")
OPTIMIZER_COLOR = {"esgd": "tab:red", "adam": "tab:blue"} | {
    name: PALETTE[i % len(PALETTE)] for i, name in enumerate(n for n in OPTIMIZERS if n not in ("esgd", "adam"))}
ACTIVATION_LINESTYLE = {"gaussian": "-", "relu": "--", "sine": "-.", "wavelet": ":"}
METRIC_NAMES = {"psnr": "PSNR", "iou": "IoU", "mse": "MSE"}


def style(activation: str, optimizer: str) -> dict:
    return {"color": OPTIMIZER_COLOR[optimizer], "linestyle": ACTIVATION_LINESTYLE.get(activation, "-")}


def plot_curves(ax, results, metric: str, log: bool = True, ylabel: str | None = None, steps_per_epoch: int = 1,
                xlabel: str = "epoch") -> None:
    """Per setting, the mean of `metric` over seeds with its min-max band against epochs
    (× `steps_per_epoch`); `train_loss` is the mean loss of each epoch. A diverged run
    gets a dotted legend entry with its step."""
    for (activation, optimizer), runs in group_by_setting(results).items():
        epochs, mean, low, high = seed_band(runs, metric)
        ax.plot(epochs * steps_per_epoch, mean, label=label(activation, optimizer), **style(activation, optimizer))
        if len(runs) > 1 and len(epochs):
            ax.fill_between(epochs * steps_per_epoch, low, high, alpha=0.25, color=OPTIMIZER_COLOR[optimizer])
        for run in (r for r in runs if r.status == "diverged"):
            ax.plot([], [], ":", color=OPTIMIZER_COLOR[optimizer],
                    label=f"{label(activation, optimizer)} diverged at step {run.diverged_step}")
    ax.set(yscale="log" if log else "linear", xlabel=xlabel, ylabel=ylabel or metric)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def curves_per_field(results, metric: str, ylabel: str, log: bool = True, ylim=None, width: float = 4.8):
    """One panel of `plot_curves` per field, side by side, sharing the y axis."""
    fields = list(dict.fromkeys(r.config.activation for r in results))
    fig, axes = plt.subplots(1, len(fields), figsize=(width * len(fields), 4.4), sharey=True, squeeze=False)
    for ax, activation in zip(axes[0], fields):
        plot_curves(ax, select(results, activation), metric, log, ylabel)
        ax.set(title=ACTIVATIONS[activation].label, ylim=ylim)
    fig.tight_layout()
    return fig


def show(ax, image: np.ndarray, title: str, **title_options) -> None:
    """An image `[H, W, 3]` (or a map `[H, W]`, in magma) on `ax`, titled, without axes."""
    ax.imshow(np.clip(image, 0, 1), cmap=None if image.ndim == 3 else "magma")
    ax.set_title(title, **title_options)
    ax.axis("off")


def show_images(images: list[np.ndarray], titles: list[str], size: float = 4.5):
    """Images (see `show`) side by side, titled."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        show(ax, image, title)
    fig.tight_layout()
    return fig


def snapshots(results, activation: str, epoch: int, target: np.ndarray, metric: str, unit: str = "",
              view=lambda image: image, truth: str = "ground truth"):
    """The target, then each optimizer's (seed 0) reconstruction of `activation`'s field at
    `epoch`, titled with its `metric` there; `view` turns a reconstruction into an image."""
    images, titles = [view(target)], [truth]
    for run in select(results, activation):
        if run.config.seed == 0 and run.status == "ok":
            images.append(view(run.snapshots[epoch]))
            titles.append(f"{label(activation, run.config.optimizer)}, seed 0, epoch {epoch}:\n"
                          f"{METRIC_NAMES.get(metric, metric)} {value(run, metric, epoch):.4g}{unit}")
    return show_images(images, titles)


def error_maps(results, activation: str, epoch: int, truth: np.ndarray):
    """|reconstruction − truth| averaged over RGB `[H, W]` of each optimizer's (seed 0)
    reconstruction of `activation`'s field at `epoch`, on one color scale."""
    errors = {r.config.optimizer: np.abs(r.snapshots[epoch] - truth).mean(-1) for r in select(results, activation)
              if r.config.seed == 0 and r.status == "ok"}
    fig, axes = plt.subplots(1, len(errors), figsize=(4.2 * len(errors), 3.8), squeeze=False, layout="constrained")
    for ax, (optimizer, error) in zip(axes[0], errors.items()):
        shown = ax.imshow(error, cmap="magma", vmin=0, vmax=max(e.max() for e in errors.values()))
        ax.set_title(f"{label(activation, optimizer)}, seed 0, epoch {epoch}:\nmean |error| {error.mean():.4f}")
        ax.axis("off")
    fig.colorbar(shown, ax=axes[0], shrink=0.8, label="|reconstruction − truth|, mean over RGB")
    return fig


def shade_occupancy(probability: np.ndarray, level: float = 0.5, from_minus_z: bool = True,
                    light=(-0.3, 0.4, 1.0)) -> np.ndarray:
    """A shaded RGB image `[R, R, 3]` in [0, 1] of the surface {probability = level} of a
    grid `[R, R, R]` indexed (x, y, z), seen orthographically from -z (the Armadillo faces
    -z; else from +z) with y up: Lambertian shading with normals from the gradient of the
    grid smoothed by a one-voxel Gaussian, white background."""
    if from_minus_z:
        probability = np.flip(probability, axis=(0, 2))
    solid = probability >= level
    hit = solid.any(axis=2)
    depth = probability.shape[2] - 1 - np.argmax(solid[:, :, ::-1], axis=2)  # first solid voxel from +z
    gradient = np.stack(np.gradient(gaussian_filter(probability.astype(np.float64), 1.0)), axis=-1)
    rows, cols = np.nonzero(hit)
    normals = -gradient[rows, cols, depth[rows, cols]]
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
    shade = np.ones(hit.shape)
    shade[rows, cols] = 0.15 + 0.8 * np.clip(normals @ (np.asarray(light) / np.linalg.norm(light)), 0.0, 1.0)
    return np.repeat(shade.T[::-1][..., None], 3, axis=-1)  # rows: y from top to bottom, columns: x
