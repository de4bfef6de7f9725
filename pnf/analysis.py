"""Aggregation, plots and report text shared by the notebooks.

Notebooks stay thin: they build configs, call `pnf.runs.run_all`, and hand results to
these functions. Seeds of one setting are aggregated into a mean with a min-max band.
"""

import time
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from scipy.ndimage import gaussian_filter

import pnf
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.runs import Result

PAPER = "Chng, Saratchandran, Lucey, *Preconditioners for the Stochastic Training of Neural Fields*, CVPR 2025 (arXiv 2402.08784)"
OPTIMIZER_STYLE = {"esgd": dict(color="tab:red"), "adam": dict(color="tab:blue")}


def label(activation: str, optimizer: str) -> str:
    """"wavelet (Gabor) · ESGD"-style label of a setting."""
    return f"{ACTIVATIONS[activation].label} · {OPTIMIZERS[optimizer].label}"


def group_by_setting(results: list[Result]) -> dict[tuple[str, str], list[Result]]:
    """Results keyed by (activation, optimizer), seeds together."""
    groups = defaultdict(list)
    for result in results:
        groups[result.config.activation, result.config.optimizer].append(result)
    return dict(groups)


def seed_band(results: list[Result], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, min, max) of `metric` over the finished runs among `results`."""
    finished = [r for r in results if r.status == "ok"]
    if not finished:
        return (np.array([]),) * 4
    epochs = finished[0].metric(metric)[0]
    values = np.stack([r.metric(metric)[1] for r in finished])
    return epochs, values.mean(0), values.min(0), values.max(0)


def summary(results: list[Result], metric: str, epoch: int | None = None) -> tuple[float, float, int]:
    """(mean, half-range, count) of `metric` at `epoch` (default: the last) over finished seeds."""
    finished = [r for r in results if r.status == "ok"]
    values = [r.final(metric) if epoch is None else r.at_epoch(metric, epoch) for r in finished]
    if not values:
        return float("nan"), float("nan"), 0
    return float(np.mean(values)), float(np.ptp(values) / 2), len(values)


def format_value(mean: float, spread: float, count: int, digits: int = 2, scientific: bool = False) -> str:
    """"27.31 ± 0.40 (3 seeds)", or "not run" / one value when there is one seed."""
    if count == 0:
        return "diverged / not run"
    fmt = f"{{:.{digits}e}}" if scientific else f"{{:.{digits}f}}"
    if count == 1:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format(spread)} ({count} seeds)"


def plot_curves(ax, results: list[Result], metric: str, log: bool = True, ylabel: str | None = None) -> None:
    """One mean curve with a min-max seed band per (activation, optimizer)."""
    for (activation, optimizer), runs in group_by_setting(results).items():
        epochs, mean, low, high = seed_band(runs, metric)
        style = OPTIMIZER_STYLE.get(optimizer, {})
        ax.plot(epochs, mean, label=label(activation, optimizer), **style)
        if len(runs) > 1:
            ax.fill_between(epochs, low, high, alpha=0.25, **style)
        for run in runs:
            if run.status == "diverged":
                ax.annotate(f"{OPTIMIZERS[optimizer].label} diverged at step {run.diverged_step}",
                            xy=(0.02, 0.02), xycoords="axes fraction", color="black")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or metric)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


def markdown_table(header: list[str], rows: list[list]) -> Markdown:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def how_we_ran(results: list[Result], profile, data_source: str, data_note: str, started: float) -> Markdown:
    """The provenance block every report shows: profile, data, hardware, time, code."""
    provenance = results[0].provenance if results else {}
    computed = sum(r.seconds for r in results)
    return Markdown(
        f"**Reproducing:** {PAPER}.\n\n"
        f"- **Profile:** `{profile.name}`\n"
        f"- **Data:** `{data_source}` — {data_note}\n"
        f"- **Hardware:** {provenance.get('device', 'n/a')} (torch {provenance.get('torch_version', '?')})\n"
        f"- **Training time of these runs:** {computed / 60:.1f} min; this report took "
        f"{(time.time() - started) / 60:.1f} min to build (cached runs only load)\n"
        f"- **Code:** pnf {pnf.__version__}, commit `{provenance.get('git_commit', 'unknown')}`, "
        f"results version {pnf.RESULTS_VERSION}\n"
    )


def show_images(images: list[np.ndarray], titles: list[str], size: float = 3.5):
    """Images side by side, titled."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size))
    for ax, image, title in zip(np.atleast_1d(axes), images, titles):
        ax.imshow(np.clip(image, 0, 1), cmap=None if image.ndim == 3 else "magma")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def winners(results: list[Result], metric: str, lower_is_better: bool, epoch: int | None = None) -> dict:
    """Per activation: the optimizer with the best mean `metric` (at `epoch`, default
    the last) over its finished seeds, and each optimizer's (mean, half-range, count)."""
    table = {}
    for (activation, optimizer), runs in group_by_setting(results).items():
        table.setdefault(activation, {})[optimizer] = summary(runs, metric, epoch)
    best = min if lower_is_better else max
    return {
        activation: {
            "values": values,
            "winner": best((o for o in values if values[o][2]), key=lambda o: values[o][0], default=None),
        }
        for activation, values in table.items()
    }



def shade_occupancy(probability: np.ndarray, level: float = 0.5, from_minus_z: bool = False,
                    light=(-0.3, 0.4, 1.0)) -> np.ndarray:
    """A shaded RGB image `[R, R, 3]` in [0, 1] of the surface {probability = level} of
    a grid `[R, R, R]` indexed (x, y, z), seen orthographically from +z (or from -z,
    the grid turned half a turn about y; the Armadillo faces -z) with y up:
    Lambertian shading with normals from the gradient of the grid smoothed by a
    one-voxel Gaussian, white background."""
    if from_minus_z:
        probability = np.flip(probability, axis=(0, 2))
    solid = probability >= level
    hit = solid.any(axis=2)
    depth = probability.shape[2] - 1 - np.argmax(solid[:, :, ::-1], axis=2)  # first solid voxel from +z
    smooth = gaussian_filter(probability.astype(np.float64), 1.0)  # normals of a binary grid are blocky
    gradient = np.stack(np.gradient(smooth), axis=-1)  # [R, R, R, 3]
    rows, cols = np.nonzero(hit)
    normals = -gradient[rows, cols, depth[rows, cols]]
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
    direction = np.asarray(light, dtype=np.float64) / np.linalg.norm(light)
    shade = np.ones(hit.shape)
    shade[rows, cols] = 0.15 + 0.8 * np.clip(normals @ direction, 0.0, 1.0)
    image = shade.T[::-1]  # rows: y from top to bottom, columns: x
    return np.repeat(image[..., None], 3, axis=-1)


ACTIVATION_LINESTYLE = {"gaussian": "-", "relu": "--", "sine": "-.", "wavelet": ":"}


def plot_train_loss(ax, results: list[Result], steps_per_epoch: int = 1, xlabel: str = "epoch") -> None:
    """Mean training loss of each epoch against steps (epoch × `steps_per_epoch`), one
    curve per (activation, optimizer): color by optimizer, line style by activation."""
    for (activation, optimizer), runs in group_by_setting(results).items():
        finished = [r for r in runs if r.status == "ok"]
        if not finished:
            continue
        steps = np.asarray(finished[0].history["epoch"]) * steps_per_epoch
        loss = np.mean([r.history["train_loss"] for r in finished], axis=0)
        ax.plot(steps, loss, label=label(activation, optimizer), linestyle=ACTIVATION_LINESTYLE.get(activation, "-"),
                **OPTIMIZER_STYLE.get(optimizer, {}))
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss (mean over the epoch)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
