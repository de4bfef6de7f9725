"""Curvature of small neural fields: why a diagonal preconditioner helps some fields.

The paper explains its results by the curvature of each field (its theory
section): the Hessian-vector product Hv is dense for Gaussian, sine and wavelet fields
and sparse for ReLU(PE); Adam's second moment approximates the diagonal of the
Gauss-Newton matrix; the equilibration preconditioner `sqrt(diag H²)` lowers the
condition number more than the Jacobi one `|diag H|`. This module measures each of
these exactly on a field small enough (a few thousand parameters) for its whole
Hessian to be formed:

- the exact Hessian `H` `[P, P]` of the MSE loss over a flat parameter vector
  (`torch.func.hessian` of a `torch.func.functional_call`), in float64;
- the Gauss-Newton matrix `G = 2 JᵀJ / (N·C)` `[P, P]`, J the Jacobian `[N·C, P]` of
  the N×C outputs: the Hessian of `mean((f - y)²)` without its residual term;
- condition numbers of `D^{-1/2} H D^{-1/2}` for diagonal preconditioners D.

**Condition number** (`condition_number`): H is indefinite and, for an over-
parameterised field, nearly singular, so the ratio to the smallest |eigenvalue| is set
by round-off. We use `κ = max|λ| / min{|λ| : |λ| ≥ floor · max|λ|}` with a relative
floor (default `EIGEN_FLOOR` = 1e-10, float64), i.e. eigenvalues below the floor count
as the null space and are left out; the count left out is reported beside κ. The paper's
code takes the smallest non-zero |eigenvalue| in float32 instead, which is this rule
with a floor at round-off.
"""

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, hessian, jacrev, vmap

from pnf.data.images import load_image, pixel_grid
from pnf.fields import make_field
from pnf.optim import make_optimizer
from pnf.runs.cache import memoized
from pnf.train import optimizer_step

EIGEN_FLOOR = 1e-10  # relative floor of |eigenvalues| counted in a condition number
SCALE_FLOOR = 1e-12  # preconditioner entries below this fraction of their largest are raised to it
DENSITY_THRESHOLD = 1e-3  # a coordinate of Hv counts as non-zero above this fraction of max |Hv|
HESSIAN_CHUNK = 64  # pixels per `torch.func.hessian` call (memory); H sums over chunks
PRECONDITIONERS = ("identity", "jacobi", "equilibration", "adam", "esgd")


@dataclass(frozen=True)
class CurvatureSettings:
    """A field of `hidden_layers` × `hidden_features` (about a thousand parameters at
    quick, so its whole Hessian can be formed) on the central `patch`² pixels of the image
    at `resolution`², trained by Adam for `train_steps` steps of `batch_size` pixels. The
    paper gives no setting for this analysis; its `paper` values are only larger."""

    resolution: int = 256
    patch: int = 32
    hidden_features: int = 32
    hidden_layers: int = 2
    batch_size: int = 256
    train_steps: int = 1000


SETTINGS = {
    "paper": CurvatureSettings(),
    "quick": CurvatureSettings(patch=24, hidden_features=16, train_steps=200),
    "cpu": CurvatureSettings(),
    "tiny": CurvatureSettings(resolution=24, patch=8, hidden_features=6, hidden_layers=1, batch_size=32,
                              train_steps=10),
}


@dataclass(frozen=True)
class Patch:
    """A square image patch as a fitting problem: coords `[N, 2]` in [-1, 1] (the patch
    is fitted as a small image of its own), colors `[N, 3]` in [0, 1]."""

    coords: torch.Tensor
    colors: torch.Tensor


def image_patch(source: str, resolution: int, size: int) -> Patch:
    """The central `size`×`size` window of image `source` loaded at `resolution`²."""
    pixels = load_image(source, resolution).pixels
    top = (resolution - size) // 2
    window = pixels[top : top + size, top : top + size]
    return Patch(pixel_grid(size, size), window.reshape(-1, 3).contiguous())


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    """All parameters of `model` as one detached vector `[P]`, in `named_parameters` order."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _unflatten(model: torch.nn.Module, theta: torch.Tensor) -> dict:
    """`{name: tensor}` views of a flat `[P]` vector shaped like `model`'s parameters."""
    named = dict(model.named_parameters())
    pieces = theta.split([p.numel() for p in named.values()])
    return {name: piece.view_as(p) for (name, p), piece in zip(named.items(), pieces)}


def _outputs(model, theta: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The field's outputs `[N, C]` at flat parameters `theta`."""
    return functional_call(model, _unflatten(model, theta), (coords,))


def loss_hessian(model: torch.nn.Module, coords: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Exact Hessian `[P, P]` of `mean((model(coords) - targets)²)` (mean over all N·C
    entries, as `F.mse_loss`) at the model's parameters, in the model's dtype. The loss
    is a sum over pixels, so H is summed over chunks of HESSIAN_CHUNK pixels."""
    count = targets.numel()

    def chunk_loss(theta, x, y):  # a chunk's share of the loss
        return ((_outputs(model, theta, x) - y) ** 2).sum() / count

    chunks = zip(coords.split(HESSIAN_CHUNK), targets.split(HESSIAN_CHUNK))
    return sum(hessian(chunk_loss)(flat_parameters(model), x, y) for x, y in chunks).contiguous()


def gauss_newton(model: torch.nn.Module, coords: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gauss-Newton matrix `2 JᵀJ / (N·C)` `[P, P]` of the same MSE loss, J the Jacobian
    `[N·C, P]` of the outputs: H without the residual-times-second-derivative term."""
    theta = flat_parameters(model)

    def pixel_outputs(t, x):
        return _outputs(model, t, x[None])[0]

    jacobian = vmap(jacrev(pixel_outputs), in_dims=(None, 0))(theta, coords).flatten(0, 1)  # [N·C, P]
    return 2 * jacobian.T @ jacobian / targets.numel()


def jacobi_scaling(matrix: torch.Tensor) -> torch.Tensor:
    """Jacobi preconditioner `|diag H|` `[P]`."""
    return matrix.diagonal().abs()


def equilibration_scaling(matrix: torch.Tensor) -> torch.Tensor:
    """Equilibration preconditioner `sqrt(diag H²)` `[P]`: the row norms of H."""
    return torch.linalg.vector_norm(matrix, dim=1)


def precondition(matrix: torch.Tensor, scaling: torch.Tensor | None) -> torch.Tensor:
    """`D^{-1/2} H D^{-1/2}` for D = diag(`scaling`) `[P]` (None: D = I). Entries of D
    below SCALE_FLOOR of its largest are raised to that floor (a damping, as the
    optimizers' eps), so a coordinate the loss does not see does not divide by zero."""
    if scaling is None:
        return matrix
    scaling = scaling.to(matrix.dtype)
    scaling = scaling.clamp(min=SCALE_FLOOR * float(scaling.max()))
    inverse_root = scaling.rsqrt()
    return inverse_root[:, None] * matrix * inverse_root[None, :]


def condition_number(eigenvalues: torch.Tensor, floor: float = EIGEN_FLOOR) -> tuple[float, int]:
    """(κ, count below the floor) of a symmetric matrix's eigenvalues `[P]`:
    `κ = max|λ| / min{|λ| : |λ| ≥ floor · max|λ|}` (module docstring)."""
    magnitudes = eigenvalues.abs()
    largest = float(magnitudes.max())
    kept = magnitudes[magnitudes >= floor * largest]
    return largest / float(kept.min()), int(len(magnitudes) - len(kept))


def conditioning(eigenvalues: torch.Tensor) -> dict:
    """`{"kappa", "below_floor", "max_over_median"}` of eigenvalues `[P]`; `max|λ| / median|λ|`
    is a floor-free measure of how far the bulk of the spectrum lies below its top (a
    diagonal preconditioner mostly moves the bulk)."""
    kappa, below = condition_number(eigenvalues)
    magnitudes = eigenvalues.abs()
    return {"kappa": kappa, "below_floor": below, "max_over_median": float(magnitudes.max() / magnitudes.median())}


def density(values: torch.Tensor, threshold: float = DENSITY_THRESHOLD) -> float:
    """Fraction of entries of `values` whose magnitude exceeds `threshold · max|values|`."""
    magnitudes = values.abs().reshape(-1)
    return float((magnitudes > threshold * magnitudes.max()).double().mean())


def rademacher_columns(size: int, probes: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """`probes` Rademacher vectors of `size` entries ±1, as the columns of `[size, probes]`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (size, probes), generator=generator).to(dtype) * 2 - 1


def hv_density(matrix: torch.Tensor, probes: int = 8, seed: int = 0, threshold: float = DENSITY_THRESHOLD) -> float:
    """Mean `density` of Hv over `probes` Rademacher vectors v `[P]` (the vectors ESGD uses)."""
    signs = rademacher_columns(matrix.shape[0], probes, seed, matrix.dtype)
    return float(np.mean([density(product, threshold) for product in (matrix @ signs).T]))


def field_hv_density(model: torch.nn.Module, coords: torch.Tensor, targets: torch.Tensor, probes: int = 8,
                     seed: int = 0, threshold: float = DENSITY_THRESHOLD) -> float:
    """`hv_density` of the Hessian of `mean((model(coords) - targets)²)` (coords `[N, in]`,
    targets `[N, out]`) without forming it: Hv by double backward for the same vectors,
    so it equals `hv_density(loss_hessian(...))`, for fields whose H is too large to form
    (a hash grid's table)."""
    params = list(model.parameters())
    signs = rademacher_columns(sum(p.numel() for p in params), probes, seed, params[0].dtype)
    gradient = torch.autograd.grad(F.mse_loss(model(coords), targets), params, create_graph=True)
    densities = []
    for vector in signs.T:
        pieces = [piece.view_as(p) for piece, p in zip(vector.split([p.numel() for p in params]), params)]
        products = torch.autograd.grad(gradient, params, grad_outputs=pieces, retain_graph=True)
        densities.append(density(torch.cat([h.reshape(-1) for h in products]), threshold))
    return float(np.mean(densities))


def log_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of `log a` and `log b` `[P]` over entries positive in both."""
    keep = (a > 0) & (b > 0)
    return float(np.corrcoef(torch.log(a[keep]).numpy(), torch.log(b[keep]).numpy())[0, 1])


def train_steps(model, optimizer, patch: Patch, steps: int, batch_size: int, seed: int) -> None:
    """`steps` optimizer steps on random mini-batches of `batch_size` pixels of `patch`,
    through the closure protocol of `pnf.train` (so ESGD gets its Hessian products)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randperm(len(patch.coords), generator=generator)[:batch_size]
        optimizer_step(model, optimizer, F.mse_loss, patch.coords[batch], patch.colors[batch])


def optimizer_state(optimizer: torch.optim.Optimizer, model: torch.nn.Module, key: str) -> torch.Tensor:
    """Optimizer state `key` of every parameter, flattened like `flat_parameters` `[P]`."""
    return torch.cat([optimizer.state[p][key].detach().reshape(-1) for p in model.parameters()])


@dataclass
class FieldCurvature:
    """Curvature measurements of one activation's field on one patch.

    `conditions[matrix][preconditioner]` is `conditioning` of `D^{-1/2} M D^{-1/2}` at
    the trained point (M: "H", or "G" with D = I only); `spectra[name]` the eigenvalues
    `[P]` (ascending) of H at initialisation ("H init"), of H and G after training ("H", "G") and of H under
    equilibration ("H equilibrated"); `hv_density[point]` the density of Hv at "init"
    and "trained"; `adam_v` and `gn_diagonal` `[P]` Adam's second moment and diag G."""

    activation: str
    parameters: int
    initial_loss: float
    trained_loss: float
    conditions: dict
    spectra: dict
    hv_density: dict
    adam_v: np.ndarray
    gn_diagonal: np.ndarray

    @property
    def adam_gn_correlation(self) -> float:
        return log_correlation(torch.from_numpy(self.adam_v), torch.from_numpy(self.gn_diagonal))


def analyse(activation: str, source: str, settings, seed: int = 0) -> FieldCurvature:
    """`analyse_field` on the central patch of image `source` (`settings`: a
    `CurvatureSettings`), cached like a run (`pnf.runs.cache.memoized`)."""
    inputs = {"activation": activation, "source": source, "settings": asdict(settings), "seed": seed}
    return FieldCurvature(**memoized("curvature", inputs, sources=(source,), compute=lambda: asdict(analyse_field(
        activation, image_patch(source, settings.resolution, settings.patch), settings, seed))))


def analyse_field(activation: str, patch: Patch, settings, seed: int = 0) -> FieldCurvature:
    """Measure `activation`'s field (`settings`: a `CurvatureSettings`).

    The field starts from seed `seed`; Adam (the paper's preset) trains it for
    `settings.train_steps` mini-batch steps, which gives the trained point and Adam's
    second moment v. ESGD (paper preset, its own warm-up and refresh schedule) is then
    run for the same number of steps *with learning rate 0* at the trained point, so its
    running estimate D of `diag H²` is of the same Hessian the others are measured on.
    """
    torch.manual_seed(seed)
    model = make_field(activation, 2, 3, hidden_features=settings.hidden_features,
                       hidden_layers=settings.hidden_layers)
    initial = _exact(model, patch, with_gauss_newton=False)
    adam = make_optimizer("adam", model.parameters(), activation)
    train_steps(model, adam, patch, settings.train_steps, settings.batch_size, seed)
    esgd = make_optimizer("esgd", model.parameters(), activation, seed=seed, lr=0.0)
    train_steps(model, esgd, patch, settings.train_steps, settings.batch_size, seed + 1)
    trained = _exact(model, patch, with_gauss_newton=True)
    scalings = {
        "identity": None,
        "jacobi": jacobi_scaling(trained["H"]),
        "equilibration": equilibration_scaling(trained["H"]),
        "adam": optimizer_state(adam, model, "exp_avg_sq").double().sqrt(),
        "esgd": optimizer_state(esgd, model, "exp_avg_d").double().sqrt(),
    }
    preconditioned = {name: torch.linalg.eigvalsh(precondition(trained["H"], scaling))
                      for name, scaling in scalings.items()}
    spectra = {"H init": torch.linalg.eigvalsh(initial["H"]), "H": preconditioned["identity"],
               "G": torch.linalg.eigvalsh(trained["G"]), "H equilibrated": preconditioned["equilibration"]}
    conditions = {"H": {name: conditioning(eigenvalues) for name, eigenvalues in preconditioned.items()},
                  "G": {"identity": conditioning(spectra["G"])}}
    return FieldCurvature(
        activation=activation, parameters=initial["H"].shape[0],
        initial_loss=initial["loss"], trained_loss=trained["loss"],
        conditions=conditions, spectra={k: v.numpy() for k, v in spectra.items()},
        hv_density={"init": hv_density(initial["H"], seed=seed), "trained": hv_density(trained["H"], seed=seed)},
        adam_v=scalings["adam"].pow(2).numpy(), gn_diagonal=trained["G"].diagonal().numpy(),
    )


def _exact(model: torch.nn.Module, patch: Patch, with_gauss_newton: bool) -> dict:
    """Full-patch loss, H (and G) `[P, P]` at the model's parameters, in float64 on a copy."""
    double = copy.deepcopy(model).double()
    coords, colors = patch.coords.double(), patch.colors.double()
    with torch.no_grad():
        loss = float(F.mse_loss(double(coords), colors))
    exact = {"loss": loss, "H": loss_hessian(double, coords, colors)}
    if with_gauss_newton:
        exact["G"] = gauss_newton(double, coords, colors)
    return exact
