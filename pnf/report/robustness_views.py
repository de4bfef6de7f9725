"""The image-set study's views (`pnf.studies.robustness`): plain conclusions, the share of pairs
holding per field and epoch, the distribution of PSNR gaps, and every failure with its
curves."""

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.paper import WINNER
from pnf.report.plots import OPTIMIZER_COLOR
from pnf.report.text import markdown_table
from pnf.studies.robustness import FIELDS, failure, gaps, psnr_at, share_table


def failures(records: list[dict], settings) -> list[dict]:
    """The pairs whose challenger failed, numbered F1, F2, ... with their kind and detail."""
    found = [{**pair, "kind": kind, "detail": detail} for pair in records
             for kind, detail in [failure(pair, settings) or (None, None)] if kind]
    return [{**pair, "id": f"F{i}"} for i, pair in enumerate(found, 1)]


def conclusions(records: list[dict], settings, challenger: str = "esgd") -> Markdown:
    """One line per field: how often the paper's ordering holds at the last epoch, and the
    failures by kind."""
    table, failed, last = share_table(records, settings.epochs_at, settings.epochs), failures(records, settings), settings.epochs
    lines = []
    for field in FIELDS:
        holding, pairs = table[field][max(table[field])] if table[field] else (0, 0)
        kinds = [p["kind"] for p in failed if p["field"] == field]
        counted = ", ".join(f"{kinds.count(k)} {k}" for k in ("divergence", "stall", "ordering lost") if k in kinds)
        winner = OPTIMIZERS[challenger if WINNER[field] == "esgd" else "adam"].label
        lines.append(f"- **{ACTIVATIONS[field].label}**: {winner} ahead (the paper's ordering) on **{holding} of {pairs}** "
                     f"(image, seed) pairs at epoch {max(table[field]) if table[field] else last}"
                     + (f"; {OPTIMIZERS[challenger].label} failures: {counted}" if counted else "; no failure"))
    return Markdown("\n".join(lines))


def share_markdown(records: list[dict], settings, challenger: str = "esgd") -> Markdown:
    """Pairs where the paper's ordering holds, per field (rows) and evaluated epoch (columns)."""
    table = share_table(records, settings.epochs_at, settings.epochs)
    epochs = sorted({e for row in table.values() for e in row})
    rows = [[ACTIVATIONS[f].label] + [f"{row[e][0]} / {row[e][1]}" for e in epochs] for f, row in table.items()]
    return Markdown(f"**{OPTIMIZERS[challenger].label} against Adam**\n\n"
                    + markdown_table(["field"] + [f"epoch {e}" for e in epochs], rows).data)


def gap_plot(records: list[dict], epoch: int, challenger: str = "esgd"):
    """Per field, every pair's PSNR gap challenger − Adam at `epoch` (dB; points) and their box."""
    values = gaps(records, epoch)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.boxplot([values[f] for f in FIELDS], showfliers=False)
    for i, field in enumerate(FIELDS, 1):
        ax.plot(np.full(len(values[field]), i) + np.linspace(-0.12, 0.12, len(values[field])), values[field], "o",
                color=OPTIMIZER_COLOR.get(challenger, "tab:red"), alpha=0.6)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xticks(range(1, len(FIELDS) + 1), [ACTIVATIONS[f].label for f in FIELDS])
    ax.set_ylabel(f"PSNR {OPTIMIZERS[challenger].label} − Adam (dB), epoch {epoch}")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def failure_markdown(failed: list[dict], challenger: str = "esgd") -> Markdown:
    title = f"**Failures of {OPTIMIZERS[challenger].label}**\n\n"
    if not failed:
        return Markdown(title + "No failure of any kind.")
    return Markdown(title + markdown_table(
        ["id (panel below)", "field", "image", "seed", "kind", "detail"],
        [[p["id"], ACTIVATIONS[p["field"]].label, f"`{p['image']}`", p["seed"], p["kind"], p["detail"]]
         for p in failed]).data)


def failure_curves(failed: list[dict], columns: int = 4):
    """One panel per failure: PSNR against epoch of the challenger and Adam."""
    if not failed:
        return None
    rows = -(-len(failed) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, pair in zip(axes.flat, failed):
        for run in (pair["challenger"], pair["baseline"]):
            epochs = run.history["eval_epoch"]
            ax.plot(epochs, [psnr_at(run, e) for e in epochs], color=OPTIMIZER_COLOR.get(run.config.optimizer),
                    label=OPTIMIZERS[run.config.optimizer].label)
        ax.set_title(f"{pair['id']}: {pair['field']} · {pair['image'].split(':')[-1]} · seed {pair['seed']}",
                     fontsize="small")
        ax.set(xlabel="epoch", ylabel="PSNR (dB)")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(failed):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def share_measurements(records: list[dict], epoch: int) -> dict:
    """Per field, the scorecard's share claim values: pairs holding and pairs, at `epoch`."""
    return {field: {"holding": (row[epoch][0], 0.0, 1), "pairs": (row[epoch][1], 0.0, 1)}
            for field, row in share_table(records, (epoch,), epoch).items()}
