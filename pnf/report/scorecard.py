"""The reproduction scorecard: every paper claim we check, and a verdict for each.

A claim compares two settings (e.g. ESGD vs Adam) on one measured quantity. The paper's
values come from `pnf.paper` with their source ("fig1", "readme" or "secondary"); a
qualitative claim has none. A report records what it measured with `record(...)`, into
`<reports>/claims/<claim>.json`; `pnf.report.index` turns the records into the scorecard.

Verdicts:
- "reproduced": the ordering holds and, at the paper's scale and data, each value lies
  within the claim's tolerance of the paper's (a qualitative claim: the ordering holds);
- "ordering reproduced": the ordering holds, but the values are off or not comparable
  (a reduced profile, or other data);
- "not reproduced": the ordering does not hold, or a setting diverged;
- "not run": no report recorded this claim.
"""

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from pnf import paper
from pnf.optim import OPTIMIZERS

VERDICTS = ("reproduced", "ordering reproduced", "not reproduced", "not run")


@dataclass(frozen=True)
class Claim:
    """`better` beats `worse` on a quantity (higher or lower is better); `paper` holds
    the paper's value per setting; `tolerance` is absolute, or a factor when
    `tolerance_is_factor` (e.g. 2: within 2× either way)."""

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

    def tolerance_text(self) -> str:
        if not self.paper:
            return "ordering only"
        return f"within {self.tolerance:g}× of the paper" if self.tolerance_is_factor else f"±{self.tolerance:g} {self.unit}"


def _name(setting: str) -> str:
    return OPTIMIZERS[setting].label if setting in OPTIMIZERS else setting


def _versus(values: dict, better: str, worse: str, unit: str = "") -> str:
    """"(paper 29.36 vs 26.61 dB)": the paper's `values` of `better` and `worse`."""
    return f"(paper {values[better]:g} vs {values[worse]:g}{unit})"


def _image_mse_claim(activation: str) -> Claim:
    reference = paper.IMAGE_FINAL_MSE
    winner = reference["winner"][activation]
    loser = "adam" if winner == "esgd" else "esgd"
    return Claim(
        id=f"image-{activation}-final-mse", figure="README plots", report="image_convergence",
        statement=f"{activation}: {_name(winner)} ends below {_name(loser)} in MSE (epoch {reference['epoch']})",
        better=winner, worse=loser, higher_is_better=False, unit="MSE", source=reference["source"],
        paper={o: reference["values"][activation, o] for o in ("adam", "esgd")}, tolerance=2.0, tolerance_is_factor=True,
    )


def _occupancy_claim(activation: str, name: str) -> Claim:
    reference = paper.FIG1_OCCUPANCY_IOU
    values = {o: reference["values"][activation, o] for o in ("esgd", "adam")}
    winner = reference["winner"][activation]
    loser = "adam" if winner == "esgd" else "esgd"
    return Claim(
        id=f"fig1b-{activation}-iou", figure="Fig. 1b", report="occupancy_fig1b", better=winner, worse=loser,
        statement=f"occupancy, {name}: {_name(winner)} IoU above {_name(loser)}'s "
                  f"{_versus(values, winner, loser)} at epoch {reference['epoch']:,}",
        higher_is_better=True, unit="IoU", source=reference["source"], paper=values, tolerance=0.005)


def _curvature_claim(activation: str) -> Claim:
    return Claim(
        id=f"curvature-{activation}-equilibration", figure="theory", report="curvature",
        statement=f"{activation}: equilibration sqrt(diag H²) conditions the Hessian better than Jacobi |diag H|",
        better="equilibration", worse="jacobi", higher_is_better=False, source="secondary",
        unit="max|λ| / median|λ| of the preconditioned exact Hessian",
    )


CLAIMS: list[Claim] = [
    Claim(id="fig1-wavelet-psnr-epoch10", figure="Fig. 1d, e", report="image_fig1a",
          statement=f"wavelet: ESGD PSNR at epoch {paper.FIG1_WAVELET_PSNR['epoch']} above Adam's "
                    f"{_versus(paper.FIG1_WAVELET_PSNR['values'], 'esgd', 'adam', ' dB')}",
          better="esgd", worse="adam", higher_is_better=True, unit="dB", source=paper.FIG1_WAVELET_PSNR["source"],
          paper=dict(paper.FIG1_WAVELET_PSNR["values"]), tolerance=1.0),
    *[_image_mse_claim(activation) for activation in ("gaussian", "sine", "wavelet", "relu")],
    Claim(id="optimizers-gaussian-esgd-vs-adahessian", figure="optimizer comparison", report="image_optimizers",
          statement=f"Gaussian: ESGD fastest, ahead of {_name('adahessian')} (final PSNR)", better="esgd",
          worse="adahessian", higher_is_better=True, unit="dB", source="secondary"),
    Claim(id="optimizers-sgd-slowest", figure="optimizer comparison", report="image_optimizers",
          statement=f"Gaussian: {_name('sgd')} slowest by far, behind Adam (final PSNR)", better="adam", worse="sgd",
          higher_is_better=True, unit="dB", source="secondary"),
    Claim(id="optimizers-shampoo-costly", figure="optimizer comparison", report="image_optimizers",
          statement=f"{_name('shampoo')} costs more per epoch than ESGD", better="esgd", worse="shampoo",
          higher_is_better=False, unit="s/epoch", source="secondary"),
    _occupancy_claim("sine", "sine"),
    _occupancy_claim("relu", "ReLU(PE)"),
    Claim(id="fig1hi-nerf-error", figure="Fig. 1h, i", report="nerf_fig1c",
          statement=f"NeRF, Gaussian: ESGD's mean test error below Adam's "
                    f"{_versus(paper.FIG1_NERF['error'], 'esgd', 'adam')}",
          better="esgd", worse="adam", higher_is_better=False, unit="mean |error|", source=paper.FIG1_NERF["source"],
          paper=dict(paper.FIG1_NERF["error"]), tolerance=0.01),
    Claim(id="fig1c-nerf-train-mse", figure="Fig. 1c", report="nerf_fig1c",
          statement="NeRF: Gaussian-ESGD ends with a lower training MSE than Gaussian-Adam",
          better="esgd", worse="adam", higher_is_better=False, unit="MSE", source=paper.FIG1_NERF["source"]),
    *[_curvature_claim(activation) for activation in ("gaussian", "sine", "wavelet")],
    Claim(id="curvature-relu-sparse-hv", figure="theory", report="curvature",
          statement="Hv is sparser for ReLU(PE) than for the sine field", better="relu", worse="sine",
          higher_is_better=False, unit="fraction of Hv coordinates above threshold", source="secondary"),
]
CLAIMS_BY_ID = {claim.id: claim for claim in CLAIMS}


def reports_dir() -> Path:
    """Where reports are written: `PNF_REPORTS`, else `reports/` at the project's root."""
    return Path(os.environ.get("PNF_REPORTS", Path(__file__).resolve().parents[1] / "reports"))


def record(claim_id: str, measured: dict, profile: str, paper_data: bool, data: str,
           diverged: list[str] = (), paper_scale: bool | None = None) -> dict:
    """Store what a report measured for a claim. `measured` maps each of the claim's
    settings to (mean, half-range, seeds); `paper_data` says whether the data is the
    paper's own; `diverged` names settings whose runs diverged; `paper_scale` whether
    the measurement was taken at the paper's settings (default: the `paper` profile;
    a reduced profile can be at them early in training). Returns the record, with its
    verdict."""
    claim = CLAIMS_BY_ID[claim_id]
    entry = {
        "claim": claim_id,
        "values": {key: list(value) for key, value in measured.items()},
        "profile": profile,
        "data": data,
        "comparable": (profile == "paper" if paper_scale is None else paper_scale) and paper_data,
        "diverged": list(diverged),
    }
    entry["verdict"] = verdict(claim, entry)
    folder = reports_dir() / "claims"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{claim_id}.json").write_text(json.dumps(entry, indent=1))
    return entry


def verdict(claim: Claim, entry: dict | None) -> str:
    """The verdict of `claim` given its record (None: not run)."""
    if entry is None:
        return "not run"
    if set(entry.get("diverged", [])) & {claim.better, claim.worse}:
        return "not reproduced"  # a setting the paper trains to a value diverged here
    values = entry["values"]
    if any(key not in values or not values[key][2] or not math.isfinite(values[key][0])
           for key in (claim.better, claim.worse)):
        return "not run"
    better, worse = values[claim.better][0], values[claim.worse][0]
    holds = better > worse if claim.higher_is_better else better < worse
    if not holds:
        return "not reproduced"
    if not claim.paper:
        return "reproduced"
    close = all(_within(values[key][0], value, claim) for key, value in claim.paper.items() if key in values)
    return "reproduced" if entry["comparable"] and close else "ordering reproduced"


def _within(ours: float, theirs: float, claim: Claim) -> bool:
    if claim.tolerance_is_factor:
        return ours > 0 and abs(math.log(ours / theirs)) <= math.log(claim.tolerance)
    return abs(ours - theirs) <= claim.tolerance


def load_records(folder: Path | None = None) -> dict[str, dict]:
    """The recorded measurements, by claim id."""
    folder = (folder or reports_dir()) / "claims"
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
