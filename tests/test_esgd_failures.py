"""pnf.studies.esgd_failures on a tiny field and image: its numbers against direct computation."""

import matplotlib
import numpy as np
import pytest
import torch

from pnf.fields import make_field
from pnf.metrics import psnr
from pnf.optim import make_optimizer
from pnf.studies import esgd_failures
from pnf.studies.esgd_failures import effective_step, plot_psnr, plot_trace, summarize, trace_image_training

matplotlib.use("Agg")

IMAGE = np.stack(np.meshgrid(np.linspace(0, 1, 8), np.linspace(1, 0, 8), indexing="ij") + (np.full((8, 8), 0.5),), -1)
CURVATURE = dict(d_warmup=2, update_d_every=3)


def tiny(optimizer="esgd", seed=0, **options):
    torch.manual_seed(seed)
    model = make_field("sine", 2, 3, hidden_features=8, hidden_layers=1)
    return model, make_optimizer(optimizer, model.parameters(), "sine", seed=seed, **options)


def test_trace_matches_a_direct_step_and_the_initial_psnr():
    model, optimizer = tiny(**CURVATURE)
    before = [p.detach().clone() for p in model.parameters() if p.dim() >= 2]
    coords = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 8), torch.linspace(-1, 1, 8), indexing="ij"), -1)
    with torch.no_grad():
        initial = model(coords.reshape(-1, 2)).reshape(8, 8, 3).clamp(0, 1).numpy()
    trace = trace_image_training(model, optimizer, IMAGE, steps=10, batch_size=16, eval_every=4)

    reference, reference_optimizer = tiny(**CURVATURE)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0))[:16]
    image = torch.as_tensor(IMAGE, dtype=torch.float32)

    def closure(create_graph=False):
        reference_optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(reference(coords.reshape(-1, 2)[order]), image.reshape(-1, 3)[order])
        loss.backward(create_graph=create_graph)
        return loss

    first_loss = float(reference_optimizer.step(closure).detach())
    after = [p.detach() for p in reference.parameters() if p.dim() >= 2]
    ratios = [float((a - b).norm() / b.norm()) for a, b in zip(after, before)]
    assert trace["loss"][0] == pytest.approx(first_loss, rel=1e-6)
    np.testing.assert_allclose(trace["update_ratio"][0], ratios, rtol=1e-5)
    np.testing.assert_allclose(trace["initial_weight_norm"], [float(b.norm()) for b in before], rtol=1e-6)
    np.testing.assert_allclose(trace["weight_norm"][0], [float(a.norm()) for a in after], rtol=1e-5)
    assert trace["psnr"][0] == pytest.approx(psnr(initial, IMAGE.astype(np.float32)), rel=1e-6)
    assert trace["layers"] == ["0.linear.weight", "1.linear.weight", "2.weight"]
    assert trace["update_ratio"].shape == (10, 3) and trace["scale_quantiles"].shape == (10, 3, 5)
    assert trace["eval_step"].tolist() == [0, 1, 4, 8, 10]


def test_refreshes_are_marked_where_the_schedule_puts_them():
    # warm-up refreshes at steps 1 and 2, then every 3rd: 5 and 8 (step 1 has no D before it)
    trace = trace_image_training(*tiny(**CURVATURE), IMAGE, steps=10, batch_size=16)
    refreshed = np.flatnonzero(np.isfinite(trace["refresh_change"][:, 0])) + 1
    assert refreshed.tolist() == [2, 5, 8]
    assert np.all(np.isfinite(trace["fresh_over_held"][refreshed - 1]))
    quantiles = trace["scale_quantiles"]
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    # at step 1, D̂ = (Hv)² from one sample, so the largest effective step is lr / (min |Hv| + ε)
    summary = summarize(trace)
    assert summary["first_move_step"] == 1
    largest = float(np.max(effective_step(0.15, 1e-4, quantiles[0, :, 0])))
    assert summary["first_move_max_effective_step"] == pytest.approx(largest)
    assert summary["first_move_ratio"] == trace["update_ratio"][0].max()


def test_primed_first_move_comes_after_the_priming():
    trace = trace_image_training(*tiny("esgd_primed", prime_steps=3, **CURVATURE), IMAGE, steps=6, batch_size=16)
    assert np.all(trace["update_ratio"][:3] == 0) and np.all(trace["update_ratio"][3] > 0)
    assert summarize(trace)["first_move_step"] == 4


def test_adam_has_no_curvature_and_divergence_stops_the_trace():
    trace = trace_image_training(*tiny("adam"), IMAGE, steps=3, batch_size=16)
    assert np.all(np.isnan(trace["scale_quantiles"])) and trace["diverged_step"] is None
    exploding = trace_image_training(*tiny("sgd", lr=1e30), IMAGE, steps=20, batch_size=16)
    step = exploding["diverged_step"]
    assert step is not None and not np.isfinite(exploding["loss"][-1]) and len(exploding["update_ratio"]) == step - 1


def test_plots_return_figures():
    trace = trace_image_training(*tiny(**CURVATURE), IMAGE, steps=4, batch_size=16, eval_every=2)
    assert len(plot_trace(trace, "tiny").axes) == 4
    assert len(plot_psnr({"esgd": trace}).axes[0].lines) == 1


@pytest.mark.parametrize("setting, value, pixels", [
    ("steps", 0, IMAGE), ("batch_size", 2.5, IMAGE), ("eval_every", -1, IMAGE), ("shape", None, IMAGE[..., :2]),
])
def test_bad_inputs_raise(setting, value, pixels):
    options = {"steps": 2, "batch_size": 16, "eval_every": 1}
    if setting != "shape":
        options[setting] = value
    message = (r"\[H, W, 3\], got shape \(8, 8, 2\)" if setting == "shape"
               else rf"{setting} must be an integer ≥ 1, not {value!r}")
    with pytest.raises(ValueError, match=message):
        trace_image_training(*tiny(), pixels, **options)


def test_trace_field_traces_an_image_once_then_loads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path))
    settings = esgd_failures.SETTINGS["tiny"]
    first = esgd_failures.trace_field("sine", "esgd", "skimage:astronaut", 0, settings, steps=3)
    assert first["step"].tolist() == [1, 2, 3] and first["layers"][-1] == "4.weight"  # 4 layers + output
    monkeypatch.setattr(esgd_failures, "trace_image_training", lambda *args: pytest.fail("traced again"))
    again = esgd_failures.trace_field("sine", "esgd", "skimage:astronaut", 0, settings, steps=3)
    assert again.keys() == first.keys() and again["diverged_step"] is None
    for key in ("loss", "update_ratio", "scale_quantiles", "psnr"):
        np.testing.assert_array_equal(again[key], first[key])


def test_the_succeeding_case_is_the_candidate_esgd_gains_most_on():
    assert esgd_failures.candidates("div2k:test:14") == ["div2k:test:14"]  # the paper's lion, when at hand
    assert esgd_failures.candidates("skimage:astronaut") == ["skimage:chelsea", "skimage:coffee", "skimage:rocket"]
    traces = {"a": {"psnr": np.array([6.0, 8.0])}, "b": {"psnr": np.array([6.0, 12.5])}, "c": {"psnr": [9.0, 9.5]}}
    assert esgd_failures.pick_succeeding(traces) == ("b", True)  # +6.5 dB, above the 3 dB stall threshold
    del traces["b"]
    assert esgd_failures.pick_succeeding(traces) == ("a", False)  # +2 dB: every candidate stalls


def test_summary_table_has_no_column_without_values():
    one_step = {seed: trace_image_training(*tiny(seed=seed, **CURVATURE), IMAGE, steps=1, batch_size=16)
                for seed in range(2)}
    header, rows = esgd_failures.summary_table(one_step)
    assert "median later move" not in header and all(len(row) == len(header) for row in rows)
    adam = trace_image_training(*tiny("adam"), IMAGE, steps=3, batch_size=16)
    header, rows = esgd_failures.summary_table({"adam": adam, "esgd": one_step[0]})
    assert rows[0][header.index("its largest lr/(√D̂+ε)")] == "none (no curvature)"
    assert rows[1][header.index("median later move")] == "none"  # one step: no later move
    assert not any("nan" in str(cell) for row in rows for cell in row)
