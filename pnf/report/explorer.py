"""An interactive explorer of runs (`notebooks/explore.ipynb`): pick a task, a field, some
optimizers, a learning-rate scale and an epoch; see the convergence curves and the
reconstructions at that epoch.

Runs come from `pnf.runs.cache.run` with exactly the RunConfigs the task's main reports use
(seed 0; a learning-rate scale of 1 adds no override), so the explorer loads what those
reports have cached. What is missing it first announces ("not cached: N runs, about M s",
priced as `pnf.estimate` prices `make figures`), then trains here, one run after the other
(not through `PNF_EXECUTOR`, so that each epoch can move the progress bar). A run keeps its
reconstruction only at its snapshot epochs and its last one: the epoch slider offers those.
"""

import html
import io
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

from pnf.config import RunConfig
from pnf.device import default_device
from pnf.estimate import reference_steps, step_seconds
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.report.plots import show
from pnf.runs.cache import Result, is_cached, run
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


def explorer_configs(profile: str, task: str, activation: str, optimizers: list[str],
                     lr_scale: float = 1.0) -> list[RunConfig]:
    """`explorer_config` of each of `optimizers`."""
    return [explorer_config(profile, task, activation, optimizer, lr_scale) for optimizer in optimizers]


def kept_epochs(configs: list[RunConfig]) -> list[int]:
    """The epochs at which `configs` keep a reconstruction: their snapshot epochs and their last."""
    return sorted({epoch for config in configs for epoch in (*config.snapshot_epochs, config.epochs)})


def price(configs: list[RunConfig]) -> float:
    """About how many seconds training `configs` takes here: each run's reference steps
    (`pnf.estimate.reference_steps`) × a reference step of its optimizer on its field,
    timed now (`pnf.estimate.step_seconds`, a fraction of a second to a few seconds)."""
    return sum(reference_steps(c) * step_seconds(c.activation, c.optimizer, c.optimizer_options) for c in configs)


def runs(configs: list[RunConfig], tell=print, advance=None) -> list[Result]:
    """The results of `configs`. Cached ones load; the others are first announced by
    `tell(text)` ("not cached: N runs, about M s"), then trained here one after the other,
    with `advance(epochs done, epochs in all)` after each of their epochs (None: no progress
    shown); `tell` then says how long they took."""
    missing = [config for config in configs if not is_cached(config)]
    if not missing:
        tell(f"all {len(configs)} run(s) cached: loaded, nothing trained")
        return [run(config) for config in configs]
    estimated, started = price(missing), time.perf_counter()
    tell(f"not cached: {len(missing)} run(s), about {estimated:.0f} s (priced by a few timed steps "
         f"of each optimizer); training them now, one after the other")
    total, done = sum(config.epochs for config in missing), 0
    for config in missing:
        if advance:
            advance(done, total)
        run(config, progress=(lambda epoch, _, before=done: advance(before + epoch, total)) if advance else False)
        done += config.epochs
    if advance:
        advance(total, total)  # a diverged run stops early
    tell(f"trained {len(missing)} run(s) in {time.perf_counter() - started:.0f} s (estimated {estimated:.0f} s); "
         f"{len(configs) - len(missing)} loaded from the cache")
    return [run(config) for config in configs]


def snapshot_at(result: Result, epoch: int) -> tuple[int, np.ndarray] | None:
    """(epoch, reconstruction) of the latest snapshot of `result` at or before `epoch`."""
    kept = sorted(e for e in result.snapshots if e <= epoch)
    return (kept[-1], result.snapshots[kept[-1]]) if kept else None


def draw(results: list[Result], epoch: int, log_scale: bool = True):
    """A figure titled with the field, data and seed of `results`: the task's curve metric
    against the epoch for each run with `epoch` marked, then the target and each run's
    reconstruction at (or before) `epoch`."""
    config = results[0].config
    target = make_task(config, default_device()).target()
    metric = get_task(config.task).curve_metric
    fig, axes = plt.subplots(1, 2 + len(results), figsize=(5.5 + 3.2 * (1 + len(results)), 3.9),
                             gridspec_kw={"width_ratios": [1.7] + [1] * (1 + len(results))}, layout="constrained")
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
    fig.suptitle(f"{ACTIVATIONS[config.activation].label} field on {config.data} ({config.resolution}²), "
                 f"seed {config.seed}: {metric} by epoch, reconstructions at epoch {epoch}", fontsize="medium")
    return fig


def _run_label(result: Result) -> str:
    lr = result.config.optimizer_options.get("lr")
    return (OPTIMIZERS[result.config.optimizer].label + (f" lr {lr:.3g}" if lr is not None else "")
            + ("" if result.status == "ok" else f" (diverged at step {result.diverged_step})"))


def _show(ax, image: np.ndarray, title: str) -> None:
    """An image `[H, W, 3]` (or a 2D array), or the middle slice of a 3D grid."""
    show(ax, image[image.shape[0] // 2] if image.ndim == 3 and image.shape[-1] != 3 else image, title, fontsize="small")


def png(figure) -> bytes:
    """`figure` as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def build_explorer(profile: str, defaults: dict):
    """ipywidgets controls over `runs` and `draw` (`defaults`: task, activation,
    optimizers, lr_scale, epoch), drawn at once with the defaults. Changing a control
    redraws: a status line says what is cached and what will train (and how long it
    took), a progress bar counts the epochs trained, the figure is a PNG image widget;
    errors show in the output area below. The epoch slider offers the kept epochs."""
    import ipywidgets as widgets

    choice = {name: defaults[name] for name in ("task", "activation", "optimizers", "lr_scale")}
    epochs = kept_epochs(explorer_configs(profile, **choice))
    controls = {
        "task": widgets.Dropdown(options=explorable_tasks(), value=defaults["task"], description="task"),
        "activation": widgets.Dropdown(options=[(a.label, n) for n, a in ACTIVATIONS.items()],
                                       value=defaults["activation"], description="field"),
        "optimizers": widgets.SelectMultiple(options=[(o.label, n) for n, o in OPTIMIZERS.items()],
                                             value=tuple(defaults["optimizers"]), description="optimizers"),
        "lr_scale": widgets.FloatLogSlider(value=defaults["lr_scale"], base=10, min=-1, max=1, step=0.1,
                                           description="lr × preset", continuous_update=False),
        "epoch": widgets.SelectionSlider(options=epochs, value=defaults["epoch"] if defaults["epoch"] in epochs
                                         else epochs[-1], description="epoch", continuous_update=False),
    }
    status = widgets.HTML()
    bar = widgets.IntProgress(description="epochs", bar_style="info", layout=widgets.Layout(visibility="hidden"))
    picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
    output = widgets.Output()

    def tell(text: str) -> None:
        status.value = html.escape(text)

    def advance(done: int, total: int) -> None:
        bar.max, bar.value, bar.layout.visibility = total, done, "visible"

    def offer(slider, options: list[int]) -> None:
        """Set the slider's options without a redraw, keeping the nearest epoch."""
        if list(slider.options) == options:
            return
        slider.unobserve(redraw, names="value")
        chosen = slider.value
        slider.options = options
        slider.value = min(options, key=lambda e: abs(e - chosen))
        slider.observe(redraw, names="value")

    def redraw(_change=None):
        output.clear_output()
        with output:
            choice = {name: controls[name].value for name in ("task", "activation", "lr_scale")}
            configs = explorer_configs(profile, optimizers=list(controls["optimizers"].value), **choice)
            if not configs:
                tell("choose at least one optimizer")
                return
            offer(controls["epoch"], kept_epochs(configs))
            bar.layout.visibility = "hidden"
            picture.value = png(draw(runs(configs, tell, advance), controls["epoch"].value))

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([controls["task"], controls["activation"], controls["optimizers"]]),
                        widgets.HBox([controls["lr_scale"], controls["epoch"]]),
                        widgets.HBox([status, bar]), picture, output])
    box.controls, box.status, box.bar, box.picture = controls, status, bar, picture  # for tests and users
    return box
