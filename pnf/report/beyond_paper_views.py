"""Beyond the paper: ESGD against what a practitioner would pick today.

The runs of the learning-rate protocol (its settings per profile are in `pnf.studies.beyond_paper`),
and the report's views: the protocol in words, PSNR against epoch and against seconds, a table
per field (time to 25 and 30 dB, PSNR at the last epoch, step cost relative to Adam,
peak memory) and a verdict per field computed from those numbers.

A row of the report is an optimizer in one setting: its preset untouched, its tuned
learning rate, or its preset with the field's weight-scaled initialisation.
"""

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.report.plots import OPTIMIZER_COLOR
from pnf.report.stats import finished
from pnf.report.text import label, labels, markdown_table
from pnf.runs.cache import Result
from pnf.runs.executors import run_all
from pnf.studies.beyond_paper import (ALL_OPTIMIZERS, BeyondSettings, base_config, best_lr, evaluation_configs,
                                      full_batch, lr_grid, peak_memory, protocol_configs)
from pnf.studies.robustness import available

THRESHOLDS_DB = (25.0, 30.0)  # the PSNRs whose time to reach the table reports
MARGIN_DB = 0.5  # a PSNR gap smaller than this counts as a tie (one seed, no spread to compare with)
SETTING_LINESTYLE = {"preset": "-", "tuned": "--", "weight-scaled": ":"}
@dataclass(frozen=True)
class Row:
    optimizer: str
    setting: str  # "preset", "tuned" or "weight-scaled"

    @property
    def label(self) -> str:
        suffix = {"preset": "", "tuned": " · tuned lr", "weight-scaled": " · weight-scaled init"}[self.setting]
        return OPTIMIZERS[self.optimizer].label + suffix


@dataclass
class Protocol:
    """What the protocol ran: per field, each row's evaluation runs; per (field,
    optimizer), the sweep's runs and the picked rate (None when every rate diverged)."""

    settings: BeyondSettings
    runs: dict = field(default_factory=dict)  # field -> {Row: [Result]}
    sweeps: dict = field(default_factory=dict)  # (field, optimizer) -> [Result]
    picked: dict = field(default_factory=dict)  # (field, optimizer) -> lr or None

    def results(self) -> list[Result]:
        return [r for rows in self.runs.values() for runs in rows.values() for r in runs] + [
            r for runs in self.sweeps.values() for r in runs]


def run_groups(groups: dict) -> dict:
    """`run_all` over every group's configs in one batch; each group's results, in order."""
    ran = iter(run_all([config for configs in groups.values() for config in configs]))
    return {key: [next(ran) for _ in configs] for key, configs in groups.items()}


def run_protocol(settings: BeyondSettings) -> Protocol:
    """The presets, weight-scaled and sweep runs (`pnf.studies.beyond_paper.protocol_configs`) in one batch
    of `run_all`, then the picked rates' runs."""
    images, seeds = available(settings.images), list(range(settings.training.seeds))
    evaluations, sweeps = protocol_configs(settings)
    ran = run_groups({**evaluations, **sweeps})
    protocol = Protocol(settings, sweeps={key: ran[key] for key in sweeps})
    protocol.picked = {key: best_lr(runs) if finished(runs) else None for key, runs in protocol.sweeps.items()}
    tuned = {(a, o, "tuned"): evaluation_configs(base_config(settings, a, o, images[0]), lr, images, seeds)
             for (a, o), lr in protocol.picked.items() if lr is not None}
    ran |= run_groups(tuned)
    for activation, optimizer, setting in [*evaluations, *tuned]:
        protocol.runs.setdefault(activation, {})[Row(optimizer, setting)] = ran[activation, optimizer, setting]
    return protocol


def memory(settings: BeyondSettings) -> dict:
    """MiB each optimizer's steps add to a process's peak memory, per (field, optimizer)
    (`pnf.studies.beyond_paper.peak_memory` at the preset, the profile's resolution and batch)."""
    keys = [(a, o) for a in settings.fields for o in settings.optimizers]
    configs = [full_batch(base_config(settings, a, o, settings.tuning_image)) for a, o in keys]
    return dict(zip(keys, peak_memory(configs, settings.memory_steps)))


def learning_rate(result: Result) -> float:
    config = result.config
    return config.optimizer_options.get("lr", OPTIMIZERS[config.optimizer].hyperparameters(config.activation)["lr"])


def elapsed(result: Result) -> np.ndarray:
    """Training seconds at each evaluated epoch `[evaluations]` (0 at epoch 0): the
    cumulative sum of the epochs' wall times."""
    total = np.concatenate([[0.0], np.cumsum(result.history["seconds"])])
    return total[np.asarray(result.history["eval_epoch"])]


def psnr_by(result: Result, seconds: float) -> float:
    """PSNR at the last evaluation within `seconds` of training; -inf if it diverged."""
    if result.status != "ok":
        return -math.inf
    within = np.nonzero(elapsed(result) <= seconds)[0]
    return float(result.metric("psnr")[1][within[-1]])


def final_psnr(runs: list[Result]) -> float:
    """Mean PSNR at the last epoch over `runs`; -inf if any diverged."""
    return float(np.mean([r.final("psnr") if r.status == "ok" else -math.inf for r in runs]))


def seconds_per_step(runs: list[Result]) -> float:
    done = finished(runs)
    return float(np.mean([r.seconds / r.history["steps"] for r in done])) if done else math.nan


def mean_time_to(runs: list[Result], db: float) -> tuple[float, int]:
    """(mean training seconds until the first evaluation at or above `db` dB over the runs
    that reached it, how many did)."""
    reached = [np.nonzero(r.metric("psnr")[1] >= db)[0] for r in finished(runs)]
    times = [float(elapsed(r)[first[0]]) for r, first in zip(finished(runs), reached) if len(first)]
    return (float(np.mean(times)) if times else math.inf), len(times)


def protocol_markdown(settings: BeyondSettings, profile: str) -> Markdown:
    """The protocol and this profile's grid, in words."""
    s, shown, left = settings.training, settings.fields[0], [o for o in ALL_OPTIMIZERS if o not in settings.optimizers]
    scales = [f"{label(a)} ×{ACTIVATIONS[a].weight_scale} ({ACTIVATIONS[a].weight_scale_source})"
              for a in settings.fields if ACTIVATIONS[a].weight_scale]
    grid = "; ".join(f"{label(None, o)}: " + ", ".join(
        f"{lr:.3g}" for lr in lr_grid(OPTIMIZERS[o].hyperparameters(shown)["lr"], settings.rates, settings.span))
        for o in settings.tuned)
    return Markdown(
        "## Protocol\n\n"
        "1. **Presets untouched**: every optimizer at its registered preset (its source is in `pnf.optim`).\n"
        f"2. **Sweep**: per (optimizer, field), {settings.rates} learning rates log-spaced over ×/÷{settings.span:.3g} "
        f"around the preset (for the {label(shown)} field: {grid}), each trained once on the tuning image "
        f"`{settings.tuning_image}`.\n"
        "3. **Pick**: the rate with the highest whole-image PSNR at the last epoch on the tuning image (a diverged "
        "run loses).\n"
        f"4. **Evaluate**: the picked rate on the evaluation images ({', '.join(f'`{i}`' for i in available(settings.images))}) "
        f"× {s.seeds} seed(s), beside the presets; a pick equal to the preset is the preset's run.\n"
        f"5. **Weight-scaled initialisation** (Yeom et al., ICLR 2025) as its own rows, for "
        f"{labels(settings.weight_scaled, OPTIMIZERS)} at their presets: "
        f"{'; '.join(scales) or 'no field of this grid has a registered scale'}.\n\n"
        f"**This profile (`{profile}`)**: fields {labels(settings.fields)}; {s.resolution}² pixels, batch "
        f"{s.batch_size}, {s.epochs} epochs; at presets: {labels(settings.optimizers, OPTIMIZERS)}; swept: "
        f"{labels(settings.tuned, OPTIMIZERS)}"
        + (f"; left to the longer profiles for their cost: {labels(left, OPTIMIZERS)}" if left else "") + ".\n\n"
        "**Time** is the training wall time of the epochs (evaluation excluded), summed up to each evaluated epoch, "
        "as measured when each run was computed (cached runs keep theirs; a loaded machine inflates them all). "
        "An L-BFGS step is one full-batch step of up to 20 iterations, an epoch of it one step. **Peak memory** is "
        f"what {settings.memory_steps} step(s) (one for L-BFGS) of the optimizer add to the peak resident memory "
        "(maxrss) of a fresh one-thread process that built the field and random data of the same size, over one "
        "that built them only: optimizer state, autograd graph and the step's temporaries. Ties: PSNR gaps under "
        f"{MARGIN_DB} dB.")


def sweep_markdown(protocol: Protocol) -> Markdown:
    """Every swept rate's PSNR at the last epoch on the tuning image, and the pick."""
    rows = [[label(a, o)] + [f"{learning_rate(r):.3g}: " + (f"{r.final('psnr'):.2f}" if r.status == "ok" else "diverged")
                             for r in runs] + [f"{protocol.picked[a, o]:.3g}" if protocol.picked[a, o] else "none"]
            for (a, o), runs in protocol.sweeps.items()]
    width = max(len(runs) for runs in protocol.sweeps.values())
    return markdown_table(["field · optimizer"] + [f"rate {i + 1}: PSNR dB" for i in range(width)] + ["picked"], rows)


def curves(protocol: Protocol, activation: str):
    """PSNR against epoch and against training seconds, the mean of each row's runs."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), sharey=True)
    for row, runs in protocol.runs[activation].items():
        done = finished(runs)
        if not done:
            axes[0].plot([], [], ":", color=OPTIMIZER_COLOR[row.optimizer], label=f"{row.label}: diverged")
            continue
        style = {"color": OPTIMIZER_COLOR[row.optimizer], "linestyle": SETTING_LINESTYLE[row.setting]}
        psnr = np.mean([r.metric("psnr")[1] for r in done], axis=0)
        axes[0].plot(done[0].metric("psnr")[0], psnr, label=row.label, **style)
        axes[1].plot(np.mean([elapsed(r) for r in done], axis=0), psnr, **style)
    for ax, xlabel in zip(axes, ("epoch", "training time (s)")):
        for db in THRESHOLDS_DB:
            ax.axhline(db, color="grey", linewidth=0.8, alpha=0.5)
        ax.set(xlabel=xlabel, ylabel="PSNR (dB), mean over images and seeds")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(ACTIVATIONS[activation].label)
    fig.tight_layout()
    plt.close(fig)  # shown where the notebook displays it, not again at the end of the cell
    return fig


def field_table(protocol: Protocol, activation: str, memory_mib: dict) -> Markdown:
    """Per row: rate, PSNR at the last epoch, time to each threshold, step cost ÷ Adam's, memory."""
    rows, epochs = protocol.runs[activation], protocol.settings.training.epochs
    adam = seconds_per_step(rows.get(Row("adam", "preset"), []))
    lines = []
    for row, runs in rows.items():
        psnr = final_psnr(runs)
        times = []
        for db in THRESHOLDS_DB:
            seconds, count = mean_time_to(runs, db)
            times.append("not reached" if not count else f"{seconds:.1f} s" + (
                f" ({count}/{len(runs)} runs)" if count < len(runs) else ""))
        lines.append([row.label, f"{learning_rate(runs[0]):.3g}", f"{psnr:.2f}" if math.isfinite(psnr) else "diverged",
                      *times, f"{seconds_per_step(runs) / adam:.1f}×", f"{memory_mib[activation, row.optimizer]:.1f}"])
    return markdown_table(["method", "lr", f"PSNR dB, epoch {epochs}",
                           *[f"time to {db:.0f} dB" for db in THRESHOLDS_DB], "step cost ÷ Adam's",
                           "peak memory MiB"], lines)


def pick(rows: dict) -> tuple[Row, str]:
    """The row a practitioner should pick and why: the first to reach the highest
    threshold any row reached on every run; else the highest PSNR at the last epoch."""
    for db in sorted(THRESHOLDS_DB, reverse=True):
        reached = {row: mean_time_to(runs, db)[0] for row, runs in rows.items()
                   if mean_time_to(runs, db)[1] == len(runs)}
        if reached:
            best = min(reached, key=reached.get)
            return best, f"first to {db:.0f} dB ({reached[best]:.1f} s of training)"
    best = max(rows, key=lambda row: final_psnr(rows[row]))
    return best, f"no method reached {min(THRESHOLDS_DB):.0f} dB; highest PSNR at the last epoch ({final_psnr(rows[best]):.2f} dB)"


def comparison(rows: dict, challenger: Row, rival: Row) -> tuple[float, float, float]:
    """(PSNR gap challenger − rival at the last epoch, the gap at equal training time, that
    time): the time is the shorter of the two rows' mean training times."""
    by_epoch = final_psnr(rows[challenger]) - final_psnr(rows[rival])
    if not math.isfinite(by_epoch):  # a diverged row has no time to compare at
        return by_epoch, by_epoch, math.nan
    seconds = min(np.mean([r.seconds for r in rows[row]]) for row in (challenger, rival))
    at_time = [np.mean([psnr_by(r, seconds) for r in rows[row]]) for row in (challenger, rival)]
    return by_epoch, at_time[0] - at_time[1], float(seconds)


def standing(gap: float) -> str:
    if not math.isfinite(gap):
        return "ahead (rival diverged)" if gap > 0 else "**behind** (ESGD diverged)" if gap < 0 else "both diverged"
    return "tie" if abs(gap) < MARGIN_DB else f"ahead by {gap:.1f} dB" if gap > 0 else f"**behind** by {-gap:.1f} dB"


def verdict(protocol: Protocol, activation: str) -> Markdown:
    """Which row to pick, and ESGD against every other row at equal epochs and equal time."""
    rows, epochs = protocol.runs[activation], protocol.settings.training.epochs
    best, why = pick(rows)
    esgd = Row("esgd", "tuned") if Row("esgd", "tuned") in rows else Row("esgd", "preset")  # tuned if it was
    lines, losses = [], []
    for rival in (row for row in rows if row != esgd):
        by_epoch, by_time, seconds = comparison(rows, esgd, rival)
        lines.append([rival.label, standing(by_epoch), f"{standing(by_time)} (at {seconds:.1f} s)"])
        if by_epoch <= -MARGIN_DB or by_time <= -MARGIN_DB:
            losses.append(rival.label)
    summary = (f"**{ACTIVATIONS[activation].label}: pick {best.label}** — {why}. "
               + (f"{esgd.label} **loses** (at equal epochs or equal time) to: {', '.join(losses)}."
                  if losses else f"{esgd.label} is not behind any other method, at equal epochs or equal time."))
    table = markdown_table(["rival", f"{esgd.label} at epoch {epochs}", f"{esgd.label} at equal training time"], lines)
    return Markdown(summary + "\n\n" + table.data)
