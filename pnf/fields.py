"""Neural fields: registered activation layers and one MLP builder.

A field maps coordinates `[N, in_dim]` to values `[N, out_dim]`. It is an input
layer and `hidden_layers` hidden layers of `hidden_features` units, each an
activated layer of one registered kind, followed by a linear output layer
(`../shared/paper.md`). Every layer kind takes `(in_features, out_features, first)`
plus its own hyperparameters, whose paper values are its preset.
"""

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

# float32 `exp` underflows below about -87, and CPU kernels take a slow path there.
# Clamping the exponent at -80 changes the value by under 2e-35 and the gradient by
# nothing float32 can represent, but makes Gaussian and Gabor layers several times
# faster on CPU (`make bench` measures it).
EXP_FLOOR = -80.0


def _exp_neg(exponent: torch.Tensor) -> torch.Tensor:
    """exp of a non-positive exponent, floored at EXP_FLOOR."""
    return torch.exp(torch.clamp(exponent, min=EXP_FLOOR))


class GaussianLayer(nn.Module):
    """`exp(-z² / (2σ²))` of a linear map z; σ is the width (paper: 0.05; 3D: 0.09)."""

    def __init__(self, in_features: int, out_features: int, first: bool, sigma: float):
        super().__init__()
        self.sigma = sigma
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        return _exp_neg(-0.5 * (z / self.sigma) ** 2)


class SineLayer(nn.Module):
    """SIREN: `sin(ω z)` with Sitzmann et al.'s initialisation (ω = 30)."""

    def __init__(self, in_features: int, out_features: int, first: bool, omega: float):
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(in_features, out_features)
        bound = 1 / in_features if first else math.sqrt(6 / in_features) / omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * self.linear(x))


def _siren_output_init(linear: nn.Linear, omega: float) -> None:
    """SIREN initialises its linear output layer like a hidden layer."""
    bound = math.sqrt(6 / linear.in_features) / omega
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)


class GaborLayer(nn.Module):
    """Real Gabor wavelet (WIRE): `cos(ω f(x)) · exp(-(s · g(x))²)` with two linear
    maps f, g of the same input; ω = 10, s (scale) = 10."""

    def __init__(self, in_features: int, out_features: int, first: bool, omega: float, scale: float):
        super().__init__()
        self.omega, self.scale = omega, scale
        self.frequency = nn.Linear(in_features, out_features)
        self.envelope = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        carrier = torch.cos(self.omega * self.frequency(x))
        return carrier * _exp_neg(-((self.scale * self.envelope(x)) ** 2))


class PositionalEncoding(nn.Module):
    """NeRF encoding `[x, sin(2^k π x), cos(2^k π x)]` for k < L: `[N, d] -> [N, d + 2dL]`."""

    def __init__(self, frequencies: int):
        super().__init__()
        self.register_buffer("bands", 2.0 ** torch.arange(frequencies) * math.pi, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = (x[..., None] * self.bands).flatten(-2)  # [N, d*L]
        return torch.cat([x, torch.sin(spectrum), torch.cos(spectrum)], dim=-1)


class ReLULayer(nn.Module):
    """ReLU layer; the first one encodes its input with L positional frequencies."""

    def __init__(self, in_features: int, out_features: int, first: bool, frequencies: int):
        super().__init__()
        self.encoding = PositionalEncoding(frequencies) if first and frequencies else nn.Identity()
        encoded = in_features * (1 + 2 * frequencies) if first else in_features
        self.linear = nn.Linear(encoded, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.encoding(x)))


@dataclass(frozen=True)
class Activation:
    """A registered layer kind with its paper hyperparameters (2D image preset)."""

    layer: type
    preset: dict = field(default_factory=dict)
    init_output: Callable[..., None] | None = None
    label: str = ""


ACTIVATIONS: dict[str, Activation] = {
    "gaussian": Activation(GaussianLayer, {"sigma": 0.05}, label="Gaussian"),
    "sine": Activation(SineLayer, {"omega": 30.0}, _siren_output_init, label="sine (SIREN)"),
    "wavelet": Activation(GaborLayer, {"omega": 10.0, "scale": 10.0}, label="wavelet (Gabor)"),
    "relu": Activation(ReLULayer, {"frequencies": 8}, label="ReLU(PE)"),
}


def make_field(
    name: str,
    in_dim: int,
    out_dim: int,
    hidden_features: int = 256,
    hidden_layers: int = 3,
    skips: tuple[int, ...] = (),
    **hyperparameters,
) -> nn.Module:
    """The paper's MLP: `[N, in_dim] -> [N, out_dim]` with activation `name`.

    Hyperparameters not given take the activation's preset. `skips` lists the layers
    (counted from 0, the input layer) after which the field's input `[N, in_dim]` is
    concatenated to the hidden features, as NeRF's `skips=[4]` (`SkipMLP`).
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; registered: {', '.join(ACTIVATIONS)}")
    activation = ACTIVATIONS[name]
    unknown = set(hyperparameters) - set(activation.preset)
    if unknown:
        raise ValueError(f"{name} takes {sorted(activation.preset)}, not {sorted(unknown)}")
    params = {**activation.preset, **hyperparameters}
    if any(not 0 <= skip < hidden_layers for skip in skips):
        raise ValueError(f"skips {skips} must be layers 0..{hidden_layers - 1}, each followed by a hidden layer")
    widths = [in_dim] + [hidden_features] * (hidden_layers + 1)
    layers = [
        activation.layer(width_in + (in_dim if i - 1 in skips else 0), width_out, first=(i == 0), **params)
        for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:]))
    ]
    output = nn.Linear(hidden_features, out_dim)
    if activation.init_output is not None:
        activation.init_output(output, **params)
    if skips:
        return SkipMLP(layers, output, skips)
    return nn.Sequential(*layers, output)


class SkipMLP(nn.Module):
    """Layers applied in turn; after each layer i in `skips` the hidden features h are
    concatenated with the field's input x `[N, in_dim]` (NeRF's skip connection)."""

    def __init__(self, layers: list[nn.Module], output: nn.Module, skips: tuple[int, ...]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.output = output
        self.skips = tuple(skips)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x
        for i, layer in enumerate(self.layers):
            hidden = layer(hidden)
            if i in self.skips:
                hidden = torch.cat([hidden, x], dim=-1)
        return self.output(hidden)
