"""The curvature report's views (`notebooks/curvature.ipynb`) of `pnf.studies.curvature`
measurements, one `FieldCurvature` per field: tables, spectra, Adam against Gauss-Newton,
and what they say about the paper's explanation."""

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from pnf.report.text import bullets, label, labels, markdown_table
from pnf.studies.curvature import EIGEN_FLOOR, PRECONDITIONERS

NAMES = {"identity": "none", "jacobi": "Jacobi", "equilibration": "equilibration", "adam": "Adam sqrt(v)",
         "esgd": "ESGD sqrt(D)"}
MEASURES = {"kappa": "κ of D^-1/2 H D^-1/2 (eigenvalues under the floor)",
            "max_over_median": "max|λ| / median|λ| of D^-1/2 H D^-1/2"}


def kappa(results: dict, activation: str, preconditioner: str, key: str = "kappa") -> float:
    return results[activation].conditions["H"][preconditioner][key]


def _cell(values: dict, key: str) -> str:
    return f"{values[key]:.2e}" + (f" ({values['below_floor']})" if key == "kappa" else "")


def show_tables(results: dict, train_steps: int) -> None:
    """The fields' sizes and losses, both condition-number tables and the Hv densities."""
    display(markdown_table(["field", "parameters", "patch MSE at init", f"after {train_steps} Adam steps"], [
        [label(a), r.parameters, f"{r.initial_loss:.4f}", f"{r.trained_loss:.4f}"] for a, r in results.items()]))
    for key, title in MEASURES.items():
        display(Markdown(f"**{title}**; last column: the Gauss-Newton matrix G, unpreconditioned"))
        display(markdown_table(["field"] + [NAMES[p] for p in PRECONDITIONERS] + ["G"], [
            [label(a)] + [_cell(r.conditions["H"][p], key) for p in PRECONDITIONERS]
            + [_cell(r.conditions["G"]["identity"], key)] for a, r in results.items()]))
    display(Markdown("**Density of Hv** (Rademacher v, mean of 8): fraction of coordinates above 10⁻³ of the largest"))
    display(markdown_table(["field", "Hv density at init", "after training"], [
        [label(a), f"{r.hv_density['init']:.3f}", f"{r.hv_density['trained']:.3f}"]
        for a, r in results.items()]))


def plot_spectra(results: dict):
    """|λ| / max|λ| of each spectrum, by rank, one panel per field, with the floor."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), sharey=True, squeeze=False)
    for ax, (activation, result) in zip(axes[0], results.items()):
        for name, spectrum in result.spectra.items():
            magnitudes = np.sort(np.abs(spectrum))[::-1]
            ax.plot(magnitudes / magnitudes[0], label=name)
        ax.axhline(EIGEN_FLOOR, color="grey", linestyle=":", label="floor")
        ax.set(yscale="log", ylim=(1e-20, None), title=label(activation),  # below: exact null directions
               xlabel="eigenvalue index (by |λ|)")
    axes[0][0].set_ylabel("|λ| / max|λ|")
    axes[0][-1].legend()
    fig.tight_layout()
    return fig


def plot_adam_against_gauss_newton(results: dict):
    """Adam's second moment v against diag G, log-log, one panel per field."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (activation, r) in zip(axes[0], results.items()):
        keep = (r.adam_v > 0) & (r.gn_diagonal > 0)
        ax.loglog(r.gn_diagonal[keep], r.adam_v[keep], ".", markersize=3, alpha=0.5)
        ax.set(title=f"{label(activation)}: log-corr {r.adam_gn_correlation:.2f}",
               xlabel="diag G (exact, whole patch)")
    axes[0][0].set_ylabel("Adam v")
    fig.tight_layout()
    return fig


def _per_field(values: dict, form: str) -> str:
    """"sine 0.12, ReLU(PE) 0.40": each field's label and its value in `form` ("{:.2f}")."""
    return ", ".join(f"{label(a)} {form.format(v)}" for a, v in values.items())


def findings(results: dict) -> Markdown:
    """What the measurements say about each part of the paper's explanation."""
    fields = list(results)
    notes = []
    for key, name in [("kappa", "κ"), ("max_over_median", "max/median")]:
        better = [a for a in fields if kappa(results, a, "equilibration", key) < kappa(results, a, "jacobi", key)]
        notes.append(f"Equilibration gives a lower {name} than Jacobi for: {labels(better)}; not for: "
                     f"{labels([a for a in fields if a not in better])} (the paper claims it for every field).")
    k = {a: {p: kappa(results, a, p) for p in PRECONDITIONERS} for a in fields}
    notes += [f"Equilibration lowers κ below the unpreconditioned H for: "
              f"{labels(a for a in fields if k[a]['equilibration'] < k[a]['identity'])}.",
              f"ESGD's stochastic estimate conditions H within 3× of the exact equilibration for: "
              f"{labels(a for a in fields if k[a]['esgd'] < 3 * k[a]['equilibration'])}.",
              f"Adam's sqrt(v) leaves a higher κ than ESGD's sqrt(D) for: "
              f"{labels(a for a in fields if k[a]['adam'] > k[a]['esgd'])}."]
    floor = [a for a in fields if k[a]["identity"] > 0.1 / EIGEN_FLOOR]
    if floor:
        notes.append(f"For {labels(floor)} κ of H is within 10× of 1/floor: the smallest kept eigenvalues sit "
                     "at the floor, so κ there measures the null space more than the conditioning; read max/median.")
    gains = {a: kappa(results, a, "identity", "max_over_median") / kappa(results, a, "equilibration", "max_over_median")
             for a in fields}
    least = min(gains, key=gains.get)
    notes.append(f"Equilibration's gain in max/median (none ÷ equilibration): {_per_field(gains, '{:.0f}×')}. The "
                 "paper's explanation (little for a diagonal preconditioner to do for ReLU(PE)) predicts the smallest "
                 f"gain for ReLU(PE); here it is for {label(least)}"
                 + (", as predicted." if least == "relu" else ", so on this measure the explanation is not borne out."))
    densities = {a: results[a].hv_density["trained"] for a in fields}
    sparsest = min(densities, key=densities.get)
    notes.append(f"Hv after training is sparsest for {label(sparsest)} ({densities[sparsest]:.2f}); " + (
        "this agrees with the paper (sparse for ReLU(PE))" if sparsest == "relu" else "the paper says it should be "
        "ReLU(PE)") + f"; densities: {_per_field(densities, '{:.2f}')}. No field's Hv is exactly dense or exactly "
        "sparse: the difference is one of degree (dead ReLU units give exactly zero rows).")
    correlations = {a: results[a].adam_gn_correlation for a in fields}
    notes.append(f"Log-scale correlation of Adam's v with diag G: {_per_field(correlations, '{:.2f}')}; the paper's "
                 f"claim (v ≈ diag G) holds best for {label(max(correlations, key=correlations.get))} and worst for "
                 f"{label(min(correlations, key=correlations.get))}.")
    return bullets(notes)


def record_claims(report, results: dict) -> None:
    """The scorecard's curvature claims: equilibration against Jacobi (max/median) per
    field but ReLU(PE), and the Hv density of ReLU(PE) against the sine field's."""
    for activation in ("gaussian", "sine", "wavelet"):
        report.record(f"curvature-{activation}-equilibration", {
            p: (kappa(results, activation, p, "max_over_median"), 0.0, 1) for p in ("equilibration", "jacobi")})
    report.record("curvature-relu-sparse-hv", {a: (results[a].hv_density["trained"], 0.0, 1) for a in ("relu", "sine")})
