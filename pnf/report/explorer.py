"""An interactive explorer of runs (`notebooks/explore.ipynb`): pick a task, a field, some
optimizers, a learning-rate scale and an epoch; see the convergence curves and the
reconstructions at that epoch.

Runs come from `pnf.runs.cache.run` with exactly the RunConfigs the task's reports use (a
learning-rate scale of 1 adds no override), so the explorer loads what the reports have
cached and computes only what is missing, with a progress bar. A run keeps its
reconstruction only at its snapshot epochs and its last one; the explorer shows the
latest kept snapshot at or before the chosen epoch (epoch 0: none) and says which.
"""

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

from pnf.config import RunConfig
from pnf.device import default_device
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.report.plots import show
from pnf.runs.cache import Result
from pnf.runs.executors import run_all
from pnf.tasks import TASKS, get_task, make_task


def explorable_tasks() -> list[str]:
    """Registered tasks whose record says the explorer can show them."""
    return [name for name, task in TASKS.items() if task.explorable]


def explorer_config(profile: str, task: str, activation: str, optimizer: str, lr_scale: float = 1.0) -> RunConfig:
    """The run of `optimizer` on `activation`'s field for `task` at `profile` (seed 0):
    the reports' own config, with the learning rate multiplied by `lr_scale` when it is not 1."""
    record = get_task(task)
    config = record.configs(record.settings_for(profile), record.default_source(), [activation], [optimizer])[0]
    if lr_scale == 1.0:
        return config
    preset = OPTIMIZERS[optimizer].hyperparameters(activation)["lr"]
    return replace(config, optimizer_options={**config.optimizer_options, "lr": preset * lr_scale})


def snapshot_at(result: Result, epoch: int) -> tuple[int, np.ndarray] | None:
    """(epoch, reconstruction) of the latest snapshot of `result` at or before `epoch`."""
    kept = sorted(e for e in result.snapshots if e <= epoch)
    return (kept[-1], result.snapshots[kept[-1]]) if kept else None


def plot(results: list[Result], epoch: int, target: np.ndarray, metric: str, log_scale: bool = True):
    """A figure: `metric` vs epoch of each run with the chosen `epoch` marked, then the
    target and each run's reconstruction at (or before) `epoch`."""
    fig, axes = plt.subplots(1, 2 + len(results), figsize=(5.5 + 3.2 * (1 + len(results)), 3.6),
                             gridspec_kw={"width_ratios": [1.7] + [1] * (1 + len(results))})
    curves, images = axes[0], axes[1:]
    for result in results:
        curves.plot(*result.metric(metric), label=_run_label(result))
    curves.axvline(epoch, color="grey", linestyle=":")
    curves.set(yscale="log" if log_scale else "linear", xlabel="epoch", ylabel=metric)
    curves.grid(True, which="both", alpha=0.3)
    curves.legend(fontsize="small")
    _show(images[0], target, "target")
    for ax, result in zip(images[1:], results):
        snapshot = snapshot_at(result, epoch)
        if snapshot is None:
            ax.set_title(f"{_run_label(result)}\nno snapshot by epoch {epoch}", fontsize="small")
            ax.axis("off")
        else:
            _show(ax, snapshot[1], f"{_run_label(result)}\nepoch {snapshot[0]}")
    fig.tight_layout()
    return fig


def _run_label(result: Result) -> str:
    lr = result.config.optimizer_options.get("lr")
    return (OPTIMIZERS[result.config.optimizer].label + (f" lr {lr:.3g}" if lr is not None else "")
            + ("" if result.status == "ok" else f" (diverged at step {result.diverged_step})"))


def _show(ax, image: np.ndarray, title: str) -> None:
    """An image `[H, W, 3]` (or a 2D array), or the middle slice of a 3D grid."""
    show(ax, image[image.shape[0] // 2] if image.ndim == 3 and image.shape[-1] != 3 else image, title, fontsize="small")


def render(profile: str, task: str, activation: str, optimizers: list[str], lr_scale: float, epoch: int,
           progress: bool = True):
    """Load (or compute, through the executor, with a progress bar) the chosen runs and draw them at `epoch`."""
    configs = [explorer_config(profile, task, activation, optimizer, lr_scale) for optimizer in optimizers]
    results = run_all(configs, progress=progress)
    target = make_task(configs[0], default_device()).target()
    return plot(results, epoch, target, get_task(task).curve_metric)


def build_explorer(profile: str, defaults: dict):
    """ipywidgets controls over `render` (`defaults`: its keyword arguments but `profile`);
    changing one redraws in the returned box's output area (the notebook draws the
    defaults once itself, statically, so that a headless report shows them)."""
    import ipywidgets as widgets
    from IPython.display import display

    epochs = get_task(defaults["task"]).settings_for(profile).epochs
    controls = {
        "task": widgets.Dropdown(options=explorable_tasks(), value=defaults["task"], description="task"),
        "activation": widgets.Dropdown(options=[(a.label, n) for n, a in ACTIVATIONS.items()],
                                       value=defaults["activation"], description="field"),
        "optimizers": widgets.SelectMultiple(options=[(o.label, n) for n, o in OPTIMIZERS.items()],
                                             value=tuple(defaults["optimizers"]), description="optimizers"),
        "lr_scale": widgets.FloatLogSlider(value=defaults["lr_scale"], base=10, min=-1, max=1, step=0.1,
                                           description="lr × preset", continuous_update=False),
        "epoch": widgets.IntSlider(value=defaults["epoch"], min=0, max=epochs, description="epoch",
                                   continuous_update=False),
    }
    output = widgets.Output()

    def redraw(_change):
        chosen = {name: control.value for name, control in controls.items()}
        chosen["optimizers"] = list(chosen["optimizers"])
        output.clear_output(wait=True)
        with output:
            if chosen["optimizers"]:
                display(render(profile, **chosen))
                plt.close("all")

    for control in controls.values():
        control.observe(redraw, names="value")
    return widgets.VBox([widgets.HBox([controls["task"], controls["activation"], controls["optimizers"]]),
                         widgets.HBox([controls["lr_scale"], controls["epoch"]]), output])
