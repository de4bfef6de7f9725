"""The reproduction scorecard: every paper claim we check, and a verdict for each.

A claim compares two settings (e.g. ESGD vs Adam) on one measured quantity. The paper's
values come from `pnf.paper` with their source ("fig1", "readme" or "secondary"); a
qualitative claim has none. A report records what it measured with `record(...)`, into
`<reports>/claims/<claim>.json`; `pnf.report.index` turns the records into the scorecard.

Every claim records the epoch at which the paper makes it (`at`; None: at any scale), and
every record the epoch it was measured at (`reached`). An ordering counts only when its gap
exceeds the spread across seeds (the sum of the half-ranges), or with one seed the claim's
stated `margin`. Verdicts:
- "reproduced": the ordering holds and, at the paper's scale and data, each value lies
  within the claim's tolerance of the paper's (a qualitative claim: the ordering holds);
- "ordering reproduced": the ordering holds, but the values are off or not comparable
  (a reduced profile, or other data);
- "undecided": the gap is within the spread (or the margin);
- "not reproduced": the opposite ordering holds, by more than the spread, at a comparable point;
- "diverged": a setting the claim compares diverged;
- "not testable": the run stopped before the epoch the paper makes the claim at;
- "not run": no report recorded this claim.
A share claim (`minimum_share`) holds when at least that share of (image, seed) pairs keep
the paper's ordering.
"""

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from pnf import paper
from pnf.files import write_atomically
from pnf.optim import OPTIMIZERS
from pnf.profiles import PROFILES
from pnf.tasks import TASKS
from pnf.tasks.nerf import ITERATIONS_PER_EPOCH

VERDICTS = ("reproduced", "ordering reproduced", "undecided", "not reproduced", "diverged", "not testable", "not run")


@dataclass(frozen=True)
class Claim:
    """`better` beats `worse` on a quantity (higher or lower is better); `paper` holds
    the paper's value per setting; `tolerance` is absolute, or a factor when
    `tolerance_is_factor` (e.g. 2: within 2× either way); `at` the epoch the paper makes
    the claim at (None: any), `margin` the gap one seed must exceed (a factor when
    `margin_is_factor`); `minimum_share` makes it a share claim of the image-set study."""

    id: str
    figure: str
    statement: str
    report: str
    better: str
    worse: str
    higher_is_better: bool
    unit: str
    source: str
    paper: dict = field(default_factory=dict)
    tolerance: float = 0.0
    tolerance_is_factor: bool = False
    at: int | None = None
    margin: float = 0.0
    margin_is_factor: bool = False
    minimum_share: float | None = None

    def tolerance_text(self) -> str:
        if not self.paper:
            return "ordering only"
        return f"within {self.tolerance:g}× of the paper" if self.tolerance_is_factor else f"±{self.tolerance:g} {self.unit}"


def _name(setting: str) -> str:
    return OPTIMIZERS[setting].label if setting in OPTIMIZERS else setting


def _rival(winner: str) -> str:
    """The other of ESGD and Adam."""
    return "adam" if winner == "esgd" else "esgd"


def _versus(values: dict, better: str, worse: str, unit: str = "") -> str:
    """"(paper 29.36 vs 26.61 dB)": the paper's `values` of `better` and `worse`."""
    return f"(paper {values[better]:g} vs {values[worse]:g}{unit})"


def _image_mse_claim(activation: str) -> Claim:
    reference = paper.IMAGE_FINAL_MSE
    winner = reference["winner"][activation]
    return Claim(
        id=f"image-{activation}-final-mse", figure="README plots", report="image_convergence",
        statement=f"{activation}: {_name(winner)} ends below {_name(_rival(winner))} in MSE (epoch {reference['epoch']})",
        better=winner, worse=_rival(winner), higher_is_better=False, unit="MSE", source=reference["source"],
        paper={o: reference["values"][activation, o] for o in ("adam", "esgd")}, tolerance=2.0, tolerance_is_factor=True,
        at=reference["epoch"], margin=1.2, margin_is_factor=True)


def _occupancy_claim(activation: str, name: str) -> Claim:
    reference = paper.FIG1_OCCUPANCY_IOU
    values = {o: reference["values"][activation, o] for o in ("esgd", "adam")}
    winner, loser = reference["winner"][activation], _rival(reference["winner"][activation])
    return Claim(
        id=f"fig1b-{activation}-iou", figure="Fig. 1b", report="occupancy_fig1b", better=winner, worse=loser,
        statement=f"occupancy, {name}: {_name(winner)} IoU above {_name(loser)}'s "
                  f"{_versus(values, winner, loser)} at epoch {reference['epoch']:,}",
        higher_is_better=True, unit="IoU", source=reference["source"], paper=values, tolerance=0.005,
        at=reference["snapshot_epoch"], margin=0.002)


def _curvature_claim(activation: str) -> Claim:
    return Claim(
        id=f"curvature-{activation}-equilibration", figure="theory", report="curvature",
        statement=f"{activation}: equilibration sqrt(diag H²) conditions the Hessian better than Jacobi |diag H|",
        better="equilibration", worse="jacobi", higher_is_better=False, source="secondary",
        unit="max|λ| / median|λ| of the preconditioned exact Hessian", margin=1.1, margin_is_factor=True)


def _study_claim(activation: str) -> Claim:
    winner = paper.WINNER[activation]
    return Claim(
        id=f"study-{activation}-share", figure="image-set study", report="image_robustness",
        statement=f"{activation}: {_name(winner)} ahead of {_name(_rival(winner))} on at least 90% of (image, seed) "
                  "pairs", better="holding", worse="pairs", higher_is_better=True, unit="pairs",
        source="ours (the paper's claim, tested beyond its one image)", minimum_share=0.9)


CLAIMS: list[Claim] = [
    Claim(id="fig1-wavelet-psnr-epoch10", figure="Fig. 1d, e", report="image_fig1a",
          statement=f"wavelet: ESGD PSNR at epoch {paper.FIG1_WAVELET_PSNR['epoch']} above Adam's "
                    f"{_versus(paper.FIG1_WAVELET_PSNR['values'], 'esgd', 'adam', ' dB')}",
          better="esgd", worse="adam", higher_is_better=True, unit="dB", source=paper.FIG1_WAVELET_PSNR["source"],
          paper=dict(paper.FIG1_WAVELET_PSNR["values"]), tolerance=1.0, at=paper.FIG1_WAVELET_PSNR["epoch"],
          margin=0.5),
    *[_image_mse_claim(activation) for activation in ("gaussian", "sine", "wavelet", "relu")],
    Claim(id="optimizers-gaussian-esgd-vs-adahessian", figure="optimizer comparison", report="image_optimizers",
          statement=f"Gaussian: ESGD fastest, ahead of {_name('adahessian')} (PSNR at epoch "
                    f"{paper.IMAGE_FINAL_MSE['epoch']})", better="esgd", worse="adahessian", higher_is_better=True,
          unit="dB", source="secondary", at=paper.IMAGE_FINAL_MSE["epoch"], margin=0.5),
    Claim(id="optimizers-sgd-slowest", figure="optimizer comparison", report="image_optimizers",
          statement=f"Gaussian: {_name('sgd')} slowest by far, behind Adam (PSNR at epoch "
                    f"{paper.IMAGE_FINAL_MSE['epoch']})", better="adam", worse="sgd", higher_is_better=True,
          unit="dB", source="secondary", at=paper.IMAGE_FINAL_MSE["epoch"], margin=0.5),
    Claim(id="optimizers-shampoo-costly", figure="optimizer comparison", report="image_optimizers",
          statement=f"{_name('shampoo')} costs more per epoch than ESGD", better="esgd", worse="shampoo",
          higher_is_better=False, unit="s/epoch", source="secondary", margin=1.2, margin_is_factor=True),
    _occupancy_claim("sine", "sine"),
    _occupancy_claim("relu", "ReLU(PE)"),
    Claim(id="fig1hi-nerf-error", figure="Fig. 1h, i", report="nerf_fig1c",
          statement=f"NeRF, Gaussian: ESGD's mean test error below Adam's "
                    f"{_versus(paper.FIG1_NERF['error'], 'esgd', 'adam')}",
          better="esgd", worse="adam", higher_is_better=False, unit="mean |error|", source=paper.FIG1_NERF["source"],
          paper=dict(paper.FIG1_NERF["error"]), tolerance=0.01,
          at=paper.FIG1_NERF["iterations"] // ITERATIONS_PER_EPOCH, margin=0.002),
    Claim(id="fig1c-nerf-train-mse", figure="Fig. 1c", report="nerf_fig1c",
          statement="NeRF: Gaussian-ESGD ends with a lower training MSE than Gaussian-Adam",
          better="esgd", worse="adam", higher_is_better=False, unit="MSE", source=paper.FIG1_NERF["source"],
          at=paper.FIG1_NERF["ordering_iterations"] // ITERATIONS_PER_EPOCH, margin=1.1, margin_is_factor=True),
    *[_curvature_claim(activation) for activation in ("gaussian", "sine", "wavelet")],
    Claim(id="curvature-relu-sparse-hv", figure="theory", report="curvature",
          statement="Hv is sparser for ReLU(PE) than for the sine field", better="relu", worse="sine",
          higher_is_better=False, unit="fraction of Hv coordinates above threshold", source="secondary", margin=0.02),
    *[_study_claim(activation) for activation in ("gaussian", "sine", "wavelet", "relu")],
]
CLAIMS_BY_ID = {claim.id: claim for claim in CLAIMS}


def reports_dir() -> Path:
    """Where reports are written: `PNF_REPORTS`, else `reports/` at the project's root."""
    return Path(os.environ.get("PNF_REPORTS", Path(__file__).resolve().parents[2] / "reports"))


def record(claim_id: str, measured: dict, profile: str, paper_data: bool, data: str,
           diverged: list[str] = (), paper_scale: bool | None = None, reached: int | None = None) -> dict:
    """Store what a report measured for a claim. `measured` maps each of the claim's
    settings to (mean, half-range, seeds); `paper_data` says whether the data is the
    paper's own; `diverged` names settings whose runs diverged; `paper_scale` whether
    the measurement was taken at the paper's settings (default: the `paper` profile;
    a reduced profile can be at them early in training); `reached` the epoch it was
    measured at. Returns the record, with its verdict and a note on it."""
    claim = CLAIMS_BY_ID[claim_id]
    comparable = (profile == "paper" if paper_scale is None else paper_scale) and paper_data
    entry = dict(claim=claim_id, values={key: list(value) for key, value in measured.items()}, profile=profile,
                 data=data, comparable=comparable, diverged=list(diverged), reached=reached)
    entry["verdict"], entry["note"] = verdict(claim, entry), note(claim, entry)
    folder = reports_dir() / "claims"
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / f"{claim_id}.json", json.dumps(entry, indent=1))
    return entry


def verdict(claim: Claim, entry: dict | None) -> str:
    """The verdict of `claim` given its record (None: not run); see the module docstring."""
    if entry is None:
        return "not run"
    if set(entry.get("diverged", [])) & {claim.better, claim.worse}:
        return "diverged"
    values = entry["values"]
    if any(key not in values or not values[key][2] or not math.isfinite(values[key][0])
           for key in (claim.better, claim.worse)):
        return "not run"
    if claim.minimum_share is not None:
        if not values["pairs"][0]:
            return "not run"
        return "reproduced" if values["holding"][0] >= claim.minimum_share * values["pairs"][0] else "not reproduced"
    if claim.at is not None and entry.get("reached") is not None and entry["reached"] < claim.at:
        return "not testable"
    gap = _gap(claim, values)
    if gap == 0:
        return "undecided"
    if gap < 0:
        return "not reproduced"
    if not claim.paper:
        return "reproduced"
    close = all(_within(values[key][0], value, claim) for key, value in claim.paper.items() if key in values)
    return "reproduced" if entry["comparable"] and close else "ordering reproduced"


def profiles_reaching(claim: Claim) -> list[str]:
    """The profiles whose runs for `claim`'s report train to the epoch the paper claims at."""
    task = TASKS[claim.report.split("_")[0]]
    epochs = (lambda s: s.optimizers_epochs) if claim.report == "image_optimizers" else (lambda s: s.epochs)
    return [f"`{name}`" for name in PROFILES if epochs(task.settings[name]) >= claim.at]


def _gap(claim: Claim, values: dict) -> int:
    """+1 when `better` beats `worse` by more than the spread across seeds (one seed each:
    the margin), -1 when `worse` beats `better` so, 0 when undecided."""
    (better, better_spread, better_seeds), (worse, worse_spread, worse_seeds) = values[claim.better], values[claim.worse]
    sign = 1 if claim.higher_is_better else -1
    if better_seeds > 1 or worse_seeds > 1:
        difference, allowed = sign * (better - worse), better_spread + worse_spread
    elif claim.margin_is_factor:
        difference, allowed = sign * math.log(better / worse) if better > 0 and worse > 0 else 0.0, math.log(claim.margin)
    else:
        difference, allowed = sign * (better - worse), claim.margin
    return 0 if abs(difference) <= allowed else (1 if difference > 0 else -1)


def note(claim: Claim, entry: dict | None) -> str:
    """One sentence on the verdict where it needs one (what would test an untestable claim)."""
    outcome = verdict(claim, entry)
    if outcome == "not testable":
        return (f"not testable at this profile ({entry['reached']:,} of {claim.at:,} epochs); a run to epoch "
                f"{claim.at:,} would test it, as the profile(s) {', '.join(profiles_reaching(claim))} do")
    if outcome == "undecided":
        return "the gap is within the spread across seeds (one seed: within the stated margin)"
    if outcome == "diverged":
        return "diverged: " + ", ".join(entry["diverged"])
    if claim.minimum_share is not None and entry:
        holding, pairs = entry["values"]["holding"][0], entry["values"]["pairs"][0]
        return f"holds on {holding:.0f} of {pairs:.0f} (image, seed) pairs at epoch {entry.get('reached')}"
    return ""


def _within(ours: float, theirs: float, claim: Claim) -> bool:
    if claim.tolerance_is_factor:
        return ours > 0 and abs(math.log(ours / theirs)) <= math.log(claim.tolerance)
    return abs(ours - theirs) <= claim.tolerance


def load_records(folder: Path | None = None) -> dict[str, dict]:
    """The recorded measurements, by claim id."""
    folder = (folder or reports_dir()) / "claims"
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
