"""The field registry: shapes, initialisations, encodings, derivatives."""

import math

import pytest
import torch

from benchmarks.activations import differentiated_by
from pnf.fields import ACTIVATIONS, PositionalEncoding, make_field
from pnf.tasks.records import in_chunks


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("in_dim,out_dim", [(2, 3), (3, 1)])
def test_output_shape_and_depth(name, in_dim, out_dim):
    field = make_field(name, in_dim, out_dim)
    assert field(torch.rand(7, in_dim) * 2 - 1).shape == (7, out_dim)
    linears = [m for m in field.modules() if isinstance(m, torch.nn.Linear)]
    per_layer = 2 if name == "wavelet" else 1  # a Gabor layer has two linear maps
    assert len(linears) == 4 * per_layer + 1  # input + 3 hidden activated layers, linear output
    assert linears[-1].out_features == out_dim and linears[-1].in_features == 256


def test_siren_initialisation_ranges():
    field = make_field("sine", 2, 3)
    first, hidden, output = field[0].linear.weight, field[1].linear.weight, field[4].weight
    assert first.abs().max() <= 1 / 2 and first.abs().max() > 0.45
    bound = math.sqrt(6 / 256) / 30
    for weight in (hidden, output):
        assert weight.abs().max() <= bound and weight.abs().max() > 0.95 * bound


@pytest.mark.parametrize("in_dim,frequencies", [(2, 8), (3, 8), (3, 4)])
def test_positional_encoding_size_and_values(in_dim, frequencies):
    x = torch.rand(5, in_dim)
    encoded = PositionalEncoding(frequencies)(x)
    assert encoded.shape == (5, in_dim + 2 * in_dim * frequencies)
    torch.testing.assert_close(encoded[:, :in_dim], x)
    torch.testing.assert_close(encoded[:, in_dim + 1], torch.sin(2 * math.pi * x[:, 0]))  # k = 1
    assert make_field("relu", in_dim, 1, frequencies=frequencies)[0].linear.in_features == encoded.shape[1]


def test_gaussian_and_gabor_values():
    gaussian = make_field("gaussian", 1, 1, sigma=0.5)[0]
    z = gaussian.linear(torch.tensor([[0.3]]))
    torch.testing.assert_close(gaussian(torch.tensor([[0.3]])), torch.exp(-z**2 / (2 * 0.25)))
    gabor = make_field("wavelet", 1, 1)[0]
    x = torch.tensor([[0.2]])
    expected = torch.cos(10 * gabor.frequency(x)) * torch.exp(-(10 * gabor.envelope(x)) ** 2)
    torch.testing.assert_close(gabor(x), expected)


def test_exp_floor_changes_far_tails_by_under_2e_35_and_gradients_by_under_1e_25():
    layer = make_field("gaussian", 1, 1)[0]
    with torch.no_grad():
        layer.linear.weight.fill_(1.0)
        layer.linear.bias.zero_()
    x = torch.tensor([[50.0], [0.0], [0.05]], requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert 0 < y[0].max() < 2e-35  # exp(-250000) floored at exp(-80)
    torch.testing.assert_close(y[1:, 0], torch.tensor([1.0, math.exp(-0.5)]))
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().max() < 1e-25


def test_unknown_names_and_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="registered"):
        make_field("tanh", 2, 3)
    with pytest.raises(ValueError, match="takes"):
        make_field("sine", 2, 3, sigma=0.1)


def _gradient_and_hessian_vector_product(model, x, y, vectors):
    """(∂L/∂θ, H v) of the mean squared error L, by double backward."""
    params = list(model.parameters())
    gradient = torch.autograd.grad(((model(x) - y) ** 2).mean(), params, create_graph=True)
    products = torch.autograd.grad(gradient, params, grad_outputs=vectors)
    return [g.detach() for g in gradient], list(products)


def _relative_error(values, reference) -> float:
    """max |a - b| over max |b| across a list of tensors."""
    return max(float((a - b).abs().max()) for a, b in zip(values, reference)) / max(
        float(b.abs().max()) for b in reference)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_closed_form_derivatives_match_autograd_of_the_plain_formulas(name, dtype, tolerance):
    """Values bitwise, gradients and Hessian-vector products to `tolerance` relative,
    against autograd differentiating the formulas as plain torch operations."""
    torch.manual_seed(0)
    model = make_field(name, 2, 3, hidden_features=64).to(dtype)
    x = (torch.rand(256, 2, dtype=dtype) * 2 - 1)
    y = torch.rand(256, 3, dtype=dtype)
    vectors = [torch.randint(0, 2, p.shape).to(dtype) * 2 - 1 for p in model.parameters()]
    closed = _gradient_and_hessian_vector_product(model, x, y, vectors)
    with differentiated_by("autograd"):
        reference = _gradient_and_hessian_vector_product(model, x, y, vectors)
        with torch.no_grad():
            plain_values = model(x)
    assert torch.equal(model(x), plain_values)
    assert all(float(h.abs().max()) > 0 for h in reference[1][:-2])  # curvature reaches every hidden layer
    assert _relative_error(closed[0], reference[0]) < tolerance
    assert _relative_error(closed[1], reference[1]) < tolerance


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_weight_scale_multiplies_every_weight_but_the_outputs(name):
    torch.manual_seed(3)
    plain = make_field(name, 2, 3, hidden_features=16)
    torch.manual_seed(3)
    scaled = make_field(name, 2, 3, hidden_features=16, weight_scale=2.5)
    named = dict(plain.named_parameters())
    output = f"{len(plain) - 1}."
    for key, value in scaled.named_parameters():
        factor = 2.5 if key.endswith("weight") and not key.startswith(output) else 1.0
        assert torch.equal(value, named[key] * factor), key


def test_sine_registers_a_documented_weight_scale():
    sine = ACTIVATIONS["sine"]
    assert sine.weight_scale > 1 and "Yeom" in sine.weight_scale_source
    make_field("sine", 2, 3, hidden_features=8, weight_scale=sine.weight_scale)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "2", None, True, torch.tensor(2.0)])
def test_bad_weight_scales_are_rejected_with_a_clear_message(bad):
    with pytest.raises(ValueError, match=r"weight_scale must be a finite number > 0 \(1.0 = off\), not") as error:
        make_field("sine", 2, 3, hidden_features=8, weight_scale=bad)
    assert repr(bad) in str(error.value)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_torch_func_hessian_and_batched_jacobian_match_the_plain_formulas(name):
    """`pnf.studies.curvature` differentiates fields with torch.func (forward over reverse, vmap)."""
    torch.manual_seed(1)
    model = make_field(name, 2, 3, hidden_features=8).double()
    x, y = torch.rand(16, 2, dtype=torch.float64) * 2 - 1, torch.rand(16, 3, dtype=torch.float64)
    params = {key: p.detach() for key, p in model.named_parameters()}

    def loss(weights):
        return ((torch.func.functional_call(model, weights, (x,)) - y) ** 2).mean()

    def jacobian(point):
        return torch.func.jacrev(lambda weights: torch.func.functional_call(model, weights, (point[None],)))(params)

    closed = torch.func.hessian(loss)(params), torch.func.vmap(jacobian)(x)
    with differentiated_by("autograd"):
        reference = torch.func.hessian(loss)(params), torch.func.vmap(jacobian)(x)
    assert _relative_error(_leaves(closed), _leaves(reference)) < 1e-12


def _leaves(tree) -> list[torch.Tensor]:
    """The tensors of nested tuples and dicts, in order."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    children = tree.values() if isinstance(tree, dict) else tree
    return [leaf for child in children for leaf in _leaves(child)]


@pytest.mark.parametrize("name", ["gaussian", "sine", "wavelet", "relu"])
@pytest.mark.parametrize("rows, in_dim", [(256 * 256, 2), (40**3, 3)])  # quick's image and occupancy grid
def test_evaluating_in_chunks_gives_the_one_piece_values_bit_for_bit(name, rows, in_dim):
    """Evaluation runs 4,096 rows at a time (faster on a CPU); the values must not change."""
    torch.manual_seed(0)
    model = make_field(name, in_dim, 3)
    points = torch.rand(rows, in_dim) * 2 - 1
    with torch.no_grad():
        whole = model(points)
    assert torch.equal(in_chunks(model, points), whole)
