"""Seeds of one setting together: selection, grouping, a mean with a min-max band,
summaries and winners. A setting is an (activation, optimizer) pair."""

from collections import defaultdict

import numpy as np

from pnf.runs.cache import Result

Summary = tuple[float, float, int]  # (mean, half-range, count) over finished seeds


def select(results: list[Result], activation: str | None = None, optimizer: str | None = None) -> list[Result]:
    """The results of `activation` and/or `optimizer`."""
    return [r for r in results if activation in (None, r.config.activation) and optimizer in (None, r.config.optimizer)]


def finished(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status == "ok"]


def group_by_setting(results: list[Result]) -> dict[tuple[str, str], list[Result]]:
    """Results keyed by (activation, optimizer), seeds together, in run order."""
    groups = defaultdict(list)
    for result in results:
        groups[result.config.activation, result.config.optimizer].append(result)
    return dict(groups)


def value(result: Result, metric: str, epoch: int | None = None) -> float:
    """An evaluated `metric` at `epoch` (default: the last), or a per-epoch history entry
    (`train_loss`, the mean loss of the epoch) or `seconds_per_epoch`."""
    if metric == "seconds_per_epoch":
        return result.seconds_per_epoch
    if metric in result.history["metrics"]:
        return result.final(metric) if epoch is None else result.at_epoch(metric, epoch)
    index = -1 if epoch is None else result.history["epoch"].index(epoch)
    return float(result.history[metric][index])


def curve(result: Result, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of an evaluated `metric`, or of a per-epoch history entry
    (`train_loss`, the mean loss of each epoch)."""
    if metric in result.history["metrics"]:
        return result.metric(metric)
    return np.asarray(result.history["epoch"]), np.asarray(result.history[metric])


def seed_band(results: list[Result], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, min, max) of `metric` (see `curve`) over the finished runs among `results`."""
    runs = finished(results)
    if not runs:
        return (np.array([]),) * 4
    values = np.stack([curve(r, metric)[1] for r in runs])
    return curve(runs[0], metric)[0], values.mean(0), values.min(0), values.max(0)


def summary(results: list[Result], metric: str, epoch: int | None = None) -> Summary:
    """(mean, half-range, count) of `metric` (see `value`) over the finished seeds."""
    values = [value(r, metric, epoch) for r in finished(results)]
    if not values:
        return float("nan"), float("nan"), 0
    return float(np.mean(values)), float(np.ptp(values) / 2), len(values)


def summaries(results: list[Result], metric: str, activation: str, optimizers, epoch: int | None = None) -> dict:
    """Each optimizer's `summary` on `activation`'s field."""
    return {o: summary(select(results, activation, o), metric, epoch) for o in optimizers}


def diverged(results: list[Result], activation: str | None = None) -> list[str]:
    """The optimizers with a diverged run (on `activation`'s field)."""
    return sorted({r.config.optimizer for r in select(results, activation) if r.status == "diverged"})


def winners(results: list[Result], metric: str, lower_is_better: bool, epoch: int | None = None) -> dict:
    """Per activation: the optimizer with the best mean `metric` over its finished seeds
    ("winner", None when none finished) and each optimizer's summary ("values")."""
    table = defaultdict(dict)
    for (activation, optimizer), runs in group_by_setting(results).items():
        table[activation][optimizer] = summary(runs, metric, epoch)
    best = min if lower_is_better else max
    return {activation: {"values": values,
                         "winner": best((o for o in values if values[o][2]), key=lambda o: values[o][0], default=None)}
            for activation, values in table.items()}
