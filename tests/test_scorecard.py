"""The scorecard's claims and verdicts, pinned on synthetic records (written before the
report layer moved, so the move cannot change a verdict)."""

import json
import math
from pathlib import Path

import pytest

from pnf.report import scorecard, text
from pnf.report.scorecard import CLAIMS, CLAIMS_BY_ID, load_records, note, record, verdict

NOTEBOOKS = {path.stem for path in (Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")}
# id: (better, worse, higher is better, the paper's values, tolerance, tolerance is a factor)
PINNED = {
    "fig1-wavelet-psnr-epoch10": ("esgd", "adam", True, {"adam": 26.61, "esgd": 29.36}, 1.0, False),
    "image-gaussian-final-mse": ("esgd", "adam", False, {"adam": 8e-4, "esgd": 2.8e-4}, 2.0, True),
    "image-sine-final-mse": ("esgd", "adam", False, {"adam": 1.4e-3, "esgd": 7.5e-5}, 2.0, True),
    "image-wavelet-final-mse": ("esgd", "adam", False, {"adam": 6e-4, "esgd": 8e-5}, 2.0, True),
    "image-relu-final-mse": ("adam", "esgd", False, {"adam": 2e-4, "esgd": 8.5e-4}, 2.0, True),
    "optimizers-gaussian-esgd-vs-adahessian": ("esgd", "adahessian", True, {}, 0.0, False),
    "optimizers-sgd-slowest": ("adam", "sgd", True, {}, 0.0, False),
    "optimizers-shampoo-costly": ("esgd", "shampoo", False, {}, 0.0, False),
    "fig1b-sine-iou": ("esgd", "adam", True, {"esgd": 0.995, "adam": 0.99}, 0.005, False),
    "fig1b-relu-iou": ("adam", "esgd", True, {"esgd": 0.974, "adam": 0.99}, 0.005, False),
    "fig1hi-nerf-error": ("esgd", "adam", False, {"adam": 0.0743, "esgd": 0.0695}, 0.01, False),
    "fig1c-nerf-train-mse": ("esgd", "adam", False, {}, 0.0, False),
    "curvature-gaussian-equilibration": ("equilibration", "jacobi", False, {}, 0.0, False),
    "curvature-sine-equilibration": ("equilibration", "jacobi", False, {}, 0.0, False),
    "curvature-wavelet-equilibration": ("equilibration", "jacobi", False, {}, 0.0, False),
    "curvature-relu-sparse-hv": ("relu", "sine", False, {}, 0.0, False),
    **{f"study-{a}-share": ("holding", "pairs", True, {}, 0.0, False) for a in ("gaussian", "sine", "wavelet", "relu")},
}
ORDERINGS = [claim for claim in CLAIMS if claim.minimum_share is None]


def entry(values: dict, comparable: bool = True, diverged=()) -> dict:
    return {"values": {k: list(v) for k, v in values.items()}, "comparable": comparable, "diverged": list(diverged)}


def test_the_claims_are_the_pinned_ones_and_each_names_a_notebook():
    assert [claim.id for claim in CLAIMS] == list(PINNED)
    for claim in CLAIMS:
        pinned = PINNED[claim.id]
        assert (claim.better, claim.worse, claim.higher_is_better, claim.tolerance, claim.tolerance_is_factor) == (
            pinned[0], pinned[1], pinned[2], pinned[4], pinned[5])
        assert claim.paper == pytest.approx(pinned[3])
        assert claim.report in NOTEBOOKS


@pytest.mark.parametrize("claim", ORDERINGS, ids=lambda claim: claim.id)
def test_verdicts_of_every_claim_on_synthetic_records(claim):
    good, bad = (2.0, 1.0) if claim.higher_is_better else (1.0, 2.0)
    if claim.paper:  # the paper's own values: close, so comparable data reproduces
        good, bad = claim.paper[claim.better], claim.paper[claim.worse]
    holds = {claim.better: (good, 0.0, 3), claim.worse: (bad, 0.0, 3)}
    swapped = {claim.better: (bad, 0.0, 3), claim.worse: (good, 0.0, 3)}
    assert verdict(claim, None) == "not run"
    assert verdict(claim, entry(holds)) == "reproduced"
    assert verdict(claim, entry(holds, comparable=False)) == ("ordering reproduced" if claim.paper else "reproduced")
    assert verdict(claim, entry(swapped)) == "not reproduced"
    assert verdict(claim, entry(holds, diverged=[claim.worse])) == "diverged"
    assert verdict(claim, entry({claim.better: (good, 0.0, 3)})) == "not run"
    assert verdict(claim, entry({**holds, claim.worse: (math.nan, 0.0, 0)})) == "not run"
    assert verdict(claim, entry({**holds, claim.worse: (math.nan, 0.0, 2)})) == "not run"


@pytest.mark.parametrize("claim_id, values, expected", [
    ("fig1-wavelet-psnr-epoch10", {"esgd": 29.0, "adam": 26.9}, "reproduced"),  # both within 1 dB
    ("fig1-wavelet-psnr-epoch10", {"esgd": 30.5, "adam": 26.9}, "ordering reproduced"),  # ESGD 1.14 dB off
    ("image-sine-final-mse", {"esgd": 1.4e-4, "adam": 2.7e-3}, "reproduced"),  # within 2× either way
    ("image-sine-final-mse", {"esgd": 1.6e-4, "adam": 2.7e-3}, "ordering reproduced"),  # ESGD 2.13× off
    ("image-relu-final-mse", {"esgd": 1e-3, "adam": 1e-4}, "reproduced"),
    ("image-relu-final-mse", {"esgd": 1e-3, "adam": 2e-3}, "not reproduced"),
    ("fig1b-relu-iou", {"esgd": 0.97, "adam": 0.993}, "reproduced"),
    ("fig1b-relu-iou", {"esgd": 0.95, "adam": 0.993}, "ordering reproduced"),
    ("fig1hi-nerf-error", {"esgd": 0.2, "adam": 0.3}, "ordering reproduced"),
])
def test_verdicts_at_the_tolerance(claim_id, values, expected):
    claim = CLAIMS_BY_ID[claim_id]
    assert verdict(claim, entry({key: (value, 0.01 * value, 2) for key, value in values.items()})) == expected


def test_record_writes_the_entry_and_its_verdict(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_REPORTS", str(tmp_path))
    measured = {"esgd": (29.0, 0.1, 2), "adam": (26.9, 0.2, 2)}
    quick = record("fig1-wavelet-psnr-epoch10", measured, "quick", True, "div2k:test:14")
    assert quick["verdict"] == "ordering reproduced" and not quick["comparable"]
    early = record("fig1-wavelet-psnr-epoch10", measured, "quick", True, "div2k:test:14", paper_scale=True)
    assert early["verdict"] == "reproduced"
    other_data = record("fig1-wavelet-psnr-epoch10", measured, "paper", False, "skimage:astronaut")
    assert other_data["verdict"] == "ordering reproduced"
    stored = json.loads((tmp_path / "claims" / "fig1-wavelet-psnr-epoch10.json").read_text())
    assert stored == other_data and stored["values"]["esgd"] == [29.0, 0.1, 2]
    assert load_records(tmp_path) == {"fig1-wavelet-psnr-epoch10": other_data}


def test_a_run_that_stopped_before_the_papers_epoch_is_not_testable():
    claim = CLAIMS_BY_ID["image-sine-final-mse"]
    holds = entry({"esgd": (1e-4, 0.0, 3), "adam": (1e-3, 0.0, 3)})
    assert verdict(claim, {**holds, "reached": 20}) == "not testable"
    assert note(claim, {**holds, "reached": 20}).startswith("not testable at this profile (20 of 200 epochs)")
    assert "`cpu`" in note(claim, {**holds, "reached": 20})
    assert verdict(claim, {**holds, "reached": 200}) == "reproduced"
    early = CLAIMS_BY_ID["fig1-wavelet-psnr-epoch10"]  # measured at epoch 10 of a 20-epoch run
    assert verdict(early, {**entry({"esgd": (29.0, 0.0, 1), "adam": (26.9, 0.0, 1)}), "reached": 10}) == "reproduced"


@pytest.mark.parametrize("esgd, adam, expected", [
    ((9.52, 0.3, 3), (9.00, 0.3, 3), "undecided"),  # gap 0.52 dB within the seeds' spread 0.6
    ((9.52, 0.1, 3), (9.00, 0.1, 3), "ordering reproduced"),
    ((9.52, 0.0, 1), (9.20, 0.0, 1), "undecided"),  # one seed: 0.32 dB within the 0.5 dB margin
    ((9.00, 0.3, 3), (9.52, 0.3, 3), "undecided"),  # the reverse, within the spread, is no failure either
    ((8.00, 0.1, 3), (9.52, 0.1, 3), "not reproduced"),
])
def test_an_ordering_counts_only_beyond_the_spread_or_the_margin(esgd, adam, expected):
    claim = CLAIMS_BY_ID["fig1-wavelet-psnr-epoch10"]
    assert verdict(claim, {**entry({"esgd": esgd, "adam": adam}, comparable=False), "reached": 10}) == expected


def test_a_report_says_the_verdict_with_its_note_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_REPORTS", str(tmp_path))
    spread = record("fig1-wavelet-psnr-epoch10", {"esgd": (22.5, 4.47, 3), "adam": (25.13, 0.05, 3)}, "quick", False,
                    "skimage:astronaut", reached=10)
    assert text.verdict(spread) == "**undecided** (the gap is within the spread across seeds (one seed: within the " \
                                   "stated margin))"
    early = record("image-sine-final-mse", {"esgd": (1e-4, 0.0, 3), "adam": (1e-3, 0.0, 3)}, "quick", False,
                   "skimage:astronaut", reached=10)
    assert text.verdict(early).startswith("**not testable** (at this profile (10 of 200 epochs)")
    held = record("fig1-wavelet-psnr-epoch10", {"esgd": (29.0, 0.1, 2), "adam": (26.9, 0.2, 2)}, "quick", True,
                  "div2k:test:14")
    assert text.verdict(held) == "**ordering reproduced**"


def test_a_share_claim_holds_on_nine_pairs_in_ten():
    claim = CLAIMS_BY_ID["study-sine-share"]
    assert verdict(claim, entry({"holding": (18, 0, 1), "pairs": (20, 0, 1)})) == "reproduced"
    assert verdict(claim, entry({"holding": (14, 0, 1), "pairs": (20, 0, 1)})) == "not reproduced"
    assert note(claim, {**entry({"holding": (14, 0, 1), "pairs": (20, 0, 1)}), "reached": 20}) == (
        "holds on 14 of 20 (image, seed) pairs at epoch 20")


def test_reports_default_to_the_project_roots_reports_folder(monkeypatch):
    monkeypatch.delenv("PNF_REPORTS", raising=False)
    root = Path(scorecard.__file__).resolve().parents[2]
    assert scorecard.reports_dir() == root / "reports" and (root / "pyproject.toml").exists()
