"""Exact curvature tools on matrices and models whose answer is known in closed form."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from pnf.data.images import pixel_grid
from pnf.fields import make_field
from pnf.studies import curvature

torch.set_num_threads(1)


def eigenvalues(matrix, scaling=None):
    return torch.linalg.eigvalsh(curvature.precondition(matrix, scaling))


def test_condition_number_of_diagonal_matrix_under_each_preconditioner():
    diagonal = torch.tensor([4.0, -0.5, 2.0, 100.0], dtype=torch.float64)
    hessian = torch.diag(diagonal)
    # identity: max|d| / min|d|
    assert curvature.condition_number(eigenvalues(hessian))[0] == pytest.approx(100.0 / 0.5)
    # Jacobi and equilibration both scale a diagonal H to signs: κ = 1
    assert curvature.condition_number(eigenvalues(hessian, curvature.jacobi_scaling(hessian)))[0] == pytest.approx(1.0)
    assert curvature.condition_number(eigenvalues(hessian, curvature.equilibration_scaling(hessian)))[0] == pytest.approx(1.0)
    # an arbitrary D: eigenvalues d_i / s_i
    scaling = torch.tensor([1.0, 0.25, 8.0, 10.0], dtype=torch.float64)
    expected = (diagonal / scaling).abs()
    assert curvature.condition_number(eigenvalues(hessian, scaling))[0] == pytest.approx(
        float(expected.max() / expected.min()))


def test_jacobi_makes_a_positive_diagonal_hessian_perfectly_conditioned():
    hessian = torch.diag(torch.logspace(-6, 3, 50, dtype=torch.float64))
    assert curvature.condition_number(eigenvalues(hessian))[0] == pytest.approx(1e9)
    kappa, below = curvature.condition_number(eigenvalues(hessian, curvature.jacobi_scaling(hessian)))
    assert kappa == pytest.approx(1.0) and below == 0


def test_condition_number_leaves_out_eigenvalues_under_the_floor():
    kappa, below = curvature.condition_number(torch.tensor([1e-20, 0.0, 0.1, -2.0], dtype=torch.float64))
    assert kappa == pytest.approx(20.0) and below == 2


def test_diagonal_preconditioners_undo_most_of_a_bad_scaling_of_a_dense_matrix():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(30, 30, generator=generator, dtype=torch.float64)
    well = base @ base.T / 30 + torch.eye(30, dtype=torch.float64)
    scales = torch.logspace(-3, 3, 30, dtype=torch.float64)
    badly = scales[:, None] * well * scales[None, :]
    plain = curvature.condition_number(eigenvalues(badly))[0]
    # Jacobi undoes any diagonal scaling exactly
    assert curvature.condition_number(eigenvalues(badly, curvature.jacobi_scaling(badly)))[0] == pytest.approx(
        curvature.condition_number(eigenvalues(well, curvature.jacobi_scaling(well)))[0])
    # equilibration's row norms of S W S are about s_i · max_j s_j |W_ij|: it removes about half the scaling
    equilibrated = curvature.condition_number(eigenvalues(badly, curvature.equilibration_scaling(badly)))[0]
    assert equilibrated < 1e-3 * plain


@pytest.mark.parametrize("outputs", [1, 3])
def test_hessian_of_linear_model_with_mse_is_2xtx_over_n_per_output(outputs):
    generator = torch.Generator().manual_seed(1)
    samples, inputs = 40, 5
    x = torch.randn(samples, inputs, generator=generator, dtype=torch.float64)
    y = torch.randn(samples, outputs, generator=generator, dtype=torch.float64)
    model = torch.nn.Linear(inputs, outputs, bias=False).double()
    # F.mse_loss averages over all N·C entries; weight [C, in] is flattened output by output
    block = 2 * x.T @ x / (samples * outputs)
    expected = torch.kron(torch.eye(outputs, dtype=torch.float64), block)
    torch.testing.assert_close(curvature.loss_hessian(model, x, y), expected)
    # a linear model has no residual term: Gauss-Newton is the Hessian
    torch.testing.assert_close(curvature.gauss_newton(model, x, y), expected)


def test_hessian_of_a_field_matches_double_backward_and_is_symmetric():
    torch.manual_seed(0)
    model = make_field("sine", 2, 3, hidden_features=5, hidden_layers=1).double()
    x = torch.rand(70, 2, dtype=torch.float64) * 2 - 1  # more than one HESSIAN_CHUNK
    y = torch.rand(70, 3, dtype=torch.float64)
    hessian = curvature.loss_hessian(model, x, y)
    parameters = list(model.parameters())
    loss = torch.nn.functional.mse_loss(model(x), y)
    gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, parameters, create_graph=True)])
    first_row = torch.cat([g.reshape(-1) for g in torch.autograd.grad(gradient[0], parameters)])
    torch.testing.assert_close(hessian[0], first_row)
    torch.testing.assert_close(hessian, hessian.T)


def test_hv_density_of_sparse_and_dense_matrices():
    size = 200
    sparse = torch.diag((torch.arange(size) < 20).double())  # H couples nothing to the last 180 coordinates
    assert curvature.hv_density(sparse) == pytest.approx(0.1)
    dense = torch.ones(size, size, dtype=torch.float64) + torch.eye(size, dtype=torch.float64)
    assert curvature.hv_density(dense) > 0.99  # Hv of a dense H: no exactly-cancelling rows
    assert curvature.density(torch.tensor([1.0, 1e-4, -0.5, 0.0])) == pytest.approx(0.5)


def test_log_correlation_is_one_for_a_power_law_and_ignores_zeros():
    a = torch.tensor([1.0, 10.0, 100.0, 0.0, 3.0], dtype=torch.float64)
    assert curvature.log_correlation(a, 5 * a**2) == pytest.approx(1.0)


def test_analyse_field_at_tiny_profile_reports_finite_curvature():
    settings = replace(curvature.SETTINGS["tiny"], train_steps=60)
    generator = torch.Generator().manual_seed(0)
    patch = curvature.Patch(pixel_grid(6, 6), torch.rand(36, 3, generator=generator))
    result = curvature.analyse_field("sine", patch, settings)
    assert result.trained_loss < result.initial_loss
    assert set(result.conditions["H"]) == set(curvature.PRECONDITIONERS)
    kappas = {name: values["kappa"] for name, values in result.conditions["H"].items()}
    assert all(np.isfinite(k) and k >= 1.0 for k in kappas.values())
    assert len(result.spectra["H"]) == result.parameters == len(result.adam_v)
    assert 0.0 < result.hv_density["trained"] <= 1.0
    assert -1.0 <= result.adam_gn_correlation <= 1.0


def test_analyse_measures_an_image_patch_once_then_loads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path))
    settings = curvature.SETTINGS["tiny"]
    first = curvature.analyse("sine", "skimage:astronaut", settings)
    monkeypatch.setattr(curvature, "analyse_field", lambda *args: pytest.fail("analysed again"))
    again = curvature.analyse("sine", "skimage:astronaut", settings)
    assert again.conditions == first.conditions and again.hv_density == first.hv_density
    np.testing.assert_array_equal(again.spectra["H"], first.spectra["H"])
    assert again.adam_gn_correlation == first.adam_gn_correlation
