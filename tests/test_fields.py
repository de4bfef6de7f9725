"""The field registry: shapes, initialisations, encodings."""

import math

import pytest
import torch

from pnf.fields import ACTIVATIONS, PositionalEncoding, make_field


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


def test_exp_floor_changes_far_tails_by_under_2e_35_and_keeps_gradients_finite():
    layer = make_field("gaussian", 1, 1)[0]
    with torch.no_grad():
        layer.linear.weight.fill_(1.0)
        layer.linear.bias.zero_()
    x = torch.tensor([[50.0], [0.0], [0.05]], requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert 0 < y[0].max() < 2e-35  # exp(-250000) floored at exp(-80)
    torch.testing.assert_close(y[1:, 0], torch.tensor([1.0, math.exp(-0.5)]))
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().max() == 0


def test_unknown_names_and_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="registered"):
        make_field("tanh", 2, 3)
    with pytest.raises(ValueError, match="takes"):
        make_field("sine", 2, 3, sigma=0.1)
