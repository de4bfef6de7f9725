"""Neural fields: registered activation layers and one MLP builder.

A field maps coordinates `[N, in_dim]` to values `[N, out_dim]`. It is an input
layer and `hidden_layers` hidden layers of `hidden_features` units, each an
activated layer of one registered kind, followed by a linear output layer
(the paper's Sec. 3; `pnf.paper` cites it). Every layer kind takes `(in_features, out_features, first)`
plus its own hyperparameters, whose paper values are its preset. Beyond the paper, "hashgrid"
is Instant-NGP's field: a multiresolution hash encoding (`HashEncoding`) as the first layer's
input, then ReLU layers (its published options: `INSTANT_NGP`, pnf's CPU ones: `HASHGRID_CPU`).

Gaussian bumps (the Gaussian layer, the Gabor envelope) are `Bump`s applied by
`activate`: value, first and second derivative in closed form, so that the double
backward of curvature optimizers runs a few products per layer instead of
differentiating a chain of five operations. sin and cos stay plain torch operations:
autograd differentiates them in two, and closed forms measured slower there
(`make bench`, table 1c).
"""

import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import torch
from torch import nn

from pnf.checks import check_int, check_memory

# float32 `exp` underflows below about -87, and CPU kernels take a slow path there.
# Clamping the exponent at -80 changes the value by under 2e-35 but makes Gaussian and
# Gabor layers several times faster on CPU (`make bench` measures it). In the floored
# tail the derivatives are the closed forms below evaluated at that value: for any
# pre-activation below 10³ under 1e-28 (first) and 1e-23 (second), where the exact
# ones are 0 to float32 precision.
EXP_FLOOR = -80.0


class Bump:
    """f(z) = `exp(-rate · z²)` elementwise on `[N, F]`, the exponent floored at
    EXP_FLOOR, with f' = -2 rate z f and f'' = -2 rate (f + z f') in closed form for
    `activate`. A subclass gives `rate` and `exponent(z)`, -rate · z² written as its
    layer always has (so values stay bitwise those of earlier versions)."""

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.exponent(z), min=EXP_FLOOR).exp_()

    def slope(self, z: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """f'(z), given value = f(z)."""
        return (z * value).mul_(-2 * self.rate)

    def curvature(self, z: torch.Tensor, value: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        """f''(z), given f(z) and f'(z)."""
        return torch.addcmul(value, z, slope).mul_(-2 * self.rate)

    def derivatives(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f'(z) and f''(z) by out-of-place operations, which autograd differentiates once
        more (a third order: the curvature of a loss of the field's input gradient)."""
        value = torch.clamp(-self.rate * z * z, min=EXP_FLOOR).exp()
        slope = -2 * self.rate * z * value
        return slope, -2 * self.rate * (value + z * slope)


@dataclass(frozen=True)
class Gaussian(Bump):
    """`exp(-z² / (2σ²))`."""

    sigma: float

    @property
    def rate(self) -> float:
        return 0.5 / self.sigma**2

    def exponent(self, z):
        return (z / self.sigma).pow_(2).mul_(-0.5)


@dataclass(frozen=True)
class Envelope(Bump):
    """`exp(-(s z)²)`, the Gabor wavelet's envelope of scale s."""

    scale: float

    @property
    def rate(self) -> float:
        return self.scale**2

    def exponent(self, z):
        return (self.scale * z).pow_(2).neg_()


class _Activate(torch.autograd.Function):
    """`f(z)` whose backward is `_Slope`, itself differentiable: a double backward
    (Hessian-vector products) then costs a few elementwise products per layer instead
    of differentiating autograd's chain for each of f's operations. Returns f(z) and
    f'(z), the latter saved for the derivatives (torch.func needs it as an output)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(z, bump):
        value = bump.value(z)
        return value, bump.slope(z, value)

    @staticmethod
    def setup_context(ctx, inputs, output):
        z, ctx.bump = inputs
        value, slope = output
        ctx.mark_non_differentiable(slope)
        ctx.set_materialize_grads(False)  # no zeros for the slope's (unused) gradient
        ctx.save_for_backward(z, value, slope)
        ctx.save_for_forward(slope)

    @staticmethod
    def backward(ctx, grad, _):
        z, value, slope = ctx.saved_tensors
        if not torch.is_grad_enabled():  # a first-order backward: no graph to record
            return grad * slope, None
        return _Slope.apply(grad, z, value, slope, ctx.bump), None

    @staticmethod
    def jvp(ctx, z_tangent, _):
        (slope,) = ctx.saved_tensors
        return z_tangent * slope, None


class _Slope(torch.autograd.Function):
    """`grad · f'(z)`, differentiable once more in grad and z (value and slope are
    f(z) and f'(z), given so as not to recompute them)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad, z, value, slope, bump):
        return grad * slope

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad, z, value, slope, ctx.bump = inputs
        ctx.save_for_backward(grad, z, value, slope)
        ctx.save_for_forward(grad, z, value, slope)

    @staticmethod
    def backward(ctx, outer):
        grad, z, value, slope = ctx.saved_tensors
        if torch.is_grad_enabled():  # a third order: f' and f'' recomputed in the graph of z
            slope, curvature = ctx.bump.derivatives(z)
            by_z = outer * grad * curvature if ctx.needs_input_grad[1] else None
        else:
            by_z = (outer * grad).mul_(ctx.bump.curvature(z, value, slope)) if ctx.needs_input_grad[1] else None
        by_grad = outer * slope if ctx.needs_input_grad[0] else None
        return by_grad, by_z, None, None, None

    @staticmethod
    def jvp(ctx, grad_tangent, z_tangent, value_tangent, slope_tangent, _):
        grad, z, value, slope = ctx.saved_tensors
        tangent = torch.zeros_like(grad)
        if grad_tangent is not None:
            tangent = tangent + grad_tangent * slope
        if z_tangent is not None:
            tangent = tangent + z_tangent * grad * ctx.bump.curvature(z, value, slope)
        return tangent


def activate(z: torch.Tensor, bump: Bump) -> torch.Tensor:
    """`bump(z)` elementwise, `[N, F] -> [N, F]`, differentiable twice in z."""
    if torch.is_grad_enabled() and z.requires_grad:
        return _Activate.apply(z, bump)[0]
    return bump.value(z)


class GaussianLayer(nn.Module):
    """`exp(-z² / (2σ²))` of a linear map z; σ is the width (paper: 0.05; 3D: 0.09)."""

    def __init__(self, in_features: int, out_features: int, first: bool, sigma: float):
        super().__init__()
        self.sigma = sigma
        self.bump = Gaussian(sigma)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(self.linear(x), self.bump)


class SineLayer(nn.Module):
    """SIREN: `sin(ω z)` with Sitzmann et al.'s initialisation (ω = 30)."""

    def __init__(self, in_features: int, out_features: int, first: bool, omega: float):
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(in_features, out_features)
        _siren_init(self.linear, omega, first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * self.linear(x))


def _siren_init(linear: nn.Linear, omega: float, first: bool = False) -> None:
    """SIREN's weights: uniform in ±1/in for the first layer, else ±√(6/in)/ω (the linear
    output layer is initialised like a hidden one)."""
    bound = 1 / linear.in_features if first else math.sqrt(6 / linear.in_features) / omega
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)


class GaborLayer(nn.Module):
    """Real Gabor wavelet (WIRE): `cos(ω f(x)) · exp(-(s · g(x))²)` with two linear
    maps f, g of the same input; ω = 10, s (scale) = 10."""

    def __init__(self, in_features: int, out_features: int, first: bool, omega: float, scale: float):
        super().__init__()
        self.omega, self.scale = omega, scale
        self.window = Envelope(scale)
        self.frequency = nn.Linear(in_features, out_features)
        self.envelope = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(self.omega * self.frequency(x)) * activate(self.envelope(x), self.window)


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


# The spatial hash of Müller et al. (Eq. 4): one large prime a dimension, the first 1.
HASH_PRIMES = (1, 2654435761, 805459861)


def level_resolutions(levels: int, base: int, finest: int) -> list[int]:
    """Grid resolution of each level `[levels]`: `N_l = ⌊N_min · b^l⌋` with
    `b = exp((ln N_max − ln N_min) / (L − 1))` (Müller et al., Eq. 2-3), so N_{L−1} = N_max
    (rounded to 1e-9 before the floor, against float error; one level: N_min)."""
    growth = math.log(finest / base) / max(levels - 1, 1)
    return [math.floor(round(base * math.exp(level * growth), 9)) for level in range(levels)]


def spatial_hash(vertices: torch.Tensor) -> torch.Tensor:
    """`XOR_i (x_i · π_i)` of integer vertices `[..., d]` -> `[...]` (int64; its low bits
    equal Instant-NGP's uint32 arithmetic, so `& (T − 1)` is its `mod T`)."""
    hashed = vertices[..., 0] * HASH_PRIMES[0]
    for axis in range(1, vertices.shape[-1]):
        hashed = hashed ^ (vertices[..., axis] * HASH_PRIMES[axis])
    return hashed


class HashEncoding(nn.Module):
    """Instant-NGP's multiresolution hash encoding (Müller, Evans, Schied, Keller,
    SIGGRAPH 2022): `[N, d] -> [N, levels · features]`, d = 2 or 3, points in [-1, 1]^d
    (clamped to it).

    Level l is a grid of `level_resolutions` cells a side over the cube; its table holds
    `T_l = min(2^log2_table, (N_l + 1)^d)` feature vectors, indexed densely (row-major)
    where all its vertices fit, else by `spatial_hash mod 2^log2_table`. A point's
    features at a level are the bi/trilinear interpolation of its cell's 2^d corner
    vectors, linear in the table (so twice differentiable in it). The tables are one
    parameter `table` `[Σ T_l, features]`, initialised U(−1e-4, 1e-4).
    """

    def __init__(self, dim: int, levels: int, features: int, log2_table: int, base_resolution: int,
                 finest_resolution: int):
        super().__init__()
        check_int("hashgrid input dimension", dim, 2, 3)
        check_int("hashgrid levels", levels, 1, 64)
        check_int("hashgrid features", features, 1, 64)
        check_int("hashgrid log2_table", log2_table, 1, 24)
        check_int("hashgrid base_resolution", base_resolution, 1, 2**24)
        check_int(f"hashgrid finest_resolution (at least base_resolution = {base_resolution})", finest_resolution,
                  base_resolution, 2**24)
        resolutions = level_resolutions(levels, base_resolution, finest_resolution)
        size = 2**log2_table
        dense = [(n + 1) ** dim <= size for n in resolutions]
        rows = [(n + 1) ** dim if fits else size for n, fits in zip(resolutions, dense)]
        # 16 bytes an entry: its value, gradient and Adam's two moments in float32
        check_memory(f"hashgrid table ({sum(rows):,} × {features} features)", 16 * sum(rows) * features)
        self.mask = size - 1
        self.table = nn.Parameter(torch.empty(sum(rows), features).uniform_(-1e-4, 1e-4))
        strides = [[(n + 1) ** axis if fits else 0 for axis in range(dim)] for n, fits in zip(resolutions, dense)]
        corners = [[(corner >> axis) & 1 for axis in range(dim)] for corner in range(2**dim)]
        self.register_buffer("resolutions", torch.tensor(resolutions, dtype=torch.float32), persistent=False)
        self.register_buffer("dense", torch.tensor(dense), persistent=False)
        self.register_buffer("strides", torch.tensor(strides), persistent=False)  # [L, d]; 0 at hashed levels
        self.register_buffer("starts", torch.tensor([0] + rows[:-1]).cumsum(0), persistent=False)  # [L]
        self.register_buffer("corners", torch.tensor(corners), persistent=False)  # [2^d, d] of 0 and 1

    def rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(table rows `[N, L, 2^d]` of each point's cell corners, their interpolation weights `[N, L, 2^d]`)."""
        scaled = ((x + 1) / 2).clamp(0, 1)[:, None, :] * self.resolutions[:, None]  # [N, L, d] in cells
        cell = torch.minimum(scaled.floor(), self.resolutions[:, None] - 1)  # x = 1 lies in the last cell
        fraction = scaled - cell
        vertices = cell.long()[:, :, None, :] + self.corners  # [N, L, 2^d, d]
        local = torch.where(self.dense[:, None], (vertices * self.strides[:, None, :]).sum(-1),
                            spatial_hash(vertices) & self.mask)
        weights = torch.where(self.corners.bool(), fraction[:, :, None, :], 1 - fraction[:, :, None, :]).prod(-1)
        return self.starts[:, None] + local, weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, weights = self.rows(x)
        return (self.table[rows] * weights[..., None]).sum(2).flatten(1)


class HashGridLayer(nn.Module):
    """ReLU layer; the first one encodes its input with a `HashEncoding`: Instant-NGP's
    field is the encoding followed by a small ReLU MLP."""

    def __init__(self, in_features: int, out_features: int, first: bool, levels: int, features: int,
                 log2_table: int, base_resolution: int, finest_resolution: int):
        super().__init__()
        self.encoding = (HashEncoding(in_features, levels, features, log2_table, base_resolution, finest_resolution)
                         if first else nn.Identity())
        self.linear = nn.Linear(levels * features if first else in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.encoding(x)))


# Hash-grid fields' `field_options` (`make_field("hashgrid", ..., **options)`).
# Müller et al. 2022 (Sec. 4 and Table 1; their gigapixel image, SDF and NeRF settings): L = 16
# levels of F = 2 features, T = 2^19 (their range 2^14-2^24), N_min = 16, N_max = 2048 (the
# finest detail of the data), and an MLP of two hidden ReLU layers of 64 (here the encoding's
# layer and one hidden layer, then the linear output).
INSTANT_NGP = {"levels": 16, "features": 2, "log2_table": 19, "base_resolution": 16, "finest_resolution": 2048,
               "hidden_features": 64, "hidden_layers": 1}
# pnf's CPU profiles fit 256² images: N_max = 256 (a finer grid has under a pixel a cell) and
# T = 2^14, the bottom of their range: at 2^19 every level of a 256² image (257² vertices at
# most) would be stored densely, nothing hashed; at 2^14 the 4 finest levels hash in 2D (13 in
# 3D) and the table holds 228k parameters in 2D (479k in 3D), a few per pixel.
HASHGRID_CPU = {**INSTANT_NGP, "log2_table": 14, "finest_resolution": 256}
# The registry's preset: 8 levels of T = 2^8 from 4 to 64, the smallest grid with both
# dense and hashed levels in 2D and 3D (1,362 rows in 2D), small enough that the registry's
# generic tests (`tests/test_fields.py`) form its exact Hessian; runs give the options above.
HASHGRID_PRESET = {"levels": 8, "features": 2, "log2_table": 8, "base_resolution": 4, "finest_resolution": 64}


@dataclass(frozen=True)
class Activation:
    """A registered layer kind with its paper hyperparameters (2D image preset).

    `weight_scale` is the factor of `make_field(..., weight_scale=...)` recommended for
    this kind, with its `weight_scale_source`; None where none is published."""

    layer: type
    preset: dict
    init_output: Callable[..., None] | None = None
    label: str = ""
    weight_scale: float | None = None
    weight_scale_source: str = ""


ACTIVATIONS: dict[str, Activation] = {
    "gaussian": Activation(GaussianLayer, {"sigma": 0.05}, label="Gaussian"),
    "sine": Activation(
        SineLayer, {"omega": 30.0}, _siren_init, label="sine (SIREN)", weight_scale=2.0,
        weight_scale_source="Yeom, Lee, Lee, ICLR 2025 (Fast Training of Sinusoidal Neural Fields via Scaling "
        "Initialization) recommend a moderate factor; 2.0 is our choice within their range, not a value "
        "quoted from the paper",
    ),
    "wavelet": Activation(GaborLayer, {"omega": 10.0, "scale": 10.0}, label="wavelet (Gabor)"),
    "relu": Activation(ReLULayer, {"frequencies": 8}, label="ReLU(PE)"),
    "hashgrid": Activation(HashGridLayer, HASHGRID_PRESET, label="hash grid (Instant-NGP)"),
}


def make_field(
    name: str,
    in_dim: int,
    out_dim: int,
    hidden_features: int = 256,
    hidden_layers: int = 3,
    skips: tuple[int, ...] = (),
    weight_scale: float = 1.0,
    **hyperparameters,
) -> nn.Module:
    """The paper's MLP: `[N, in_dim] -> [N, out_dim]` with activation `name`.

    Hyperparameters not given take the activation's preset. `skips` lists the layers
    (counted from 0, the input layer) after which the field's input `[N, in_dim]` is
    concatenated to the hidden features, as NeRF's `skips=[4]` (`SkipMLP`).
    `weight_scale` multiplies every initial weight matrix except the output layer's
    (biases untouched): the weight scaling of Yeom, Lee, Lee (ICLR 2025), 1.0 = off;
    `ACTIVATIONS[name].weight_scale` is the recommended factor where there is one.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; registered: {', '.join(ACTIVATIONS)}")
    if isinstance(weight_scale, bool) or not (isinstance(weight_scale, Real) and 0 < weight_scale < math.inf):
        raise ValueError(f"weight_scale must be a finite number > 0 (1.0 = off), not {weight_scale!r}")
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
    with torch.no_grad():  # a no-op at 1.0
        for linear in nn.ModuleList(layers).modules():
            if isinstance(linear, nn.Linear):
                linear.weight.mul_(float(weight_scale))
    output = nn.Linear(hidden_features, out_dim)
    if activation.init_output is not None:
        activation.init_output(output, **params)
    return SkipMLP(layers, output, skips) if skips else nn.Sequential(*layers, output)


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
