"""3D signed distance: points `[N, 3]` in [-1, 1]³ -> signed distance `[N, 1]` to a mesh
(negative inside, in the cube's units), beyond the paper's tasks.

Loss: `mean((f − d)²) + EIKONAL_WEIGHT · mean((‖∇ₓf‖ − 1)²)` on the true signed distance d.
The squared error: d is known everywhere, not only on the surface, so this is plain
regression, the loss of the paper's other tasks (image, NeRF); DeepSDF's clamped L1 serves
sparse samples far from the surface, which the near-surface half of our points replaces.
The Eikonal term is IGR's (Gropp et al., ICML 2020, Eq. 2) with its weight λ = 0.1: IGR
squares it as here, while SIREN's 5e1 weighs an unsquared |‖∇ₓf‖ − 1| against on-surface
terms of weight 3e3 and is not transferable. Its gradient ∇ₓf is part of the model's
output (`FieldWithGradient`), so the one training loop trains it unchanged and a
curvature optimizer's Hv differentiates the field three times.

Points and their distances are drawn as occupancy draws them (`pnf.tasks.occupancy`:
half uniform in the cube, half near the surface, σ = 0.01), labelled once per (mesh,
seed, sampling) by libigl's unsigned distance signed with the winding number
(`pnf.data.meshes.inside`). Metrics on a `resolution`³ grid: IoU of {f < 0} against the
mesh's inside, and Chamfer distance and normal consistency of the zero level set
(marching cubes) against the mesh.
"""

from dataclasses import asdict, dataclass, replace
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Callable

import igl
import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy.spatial import cKDTree

from pnf.checks import check_int, check_memory, check_number
from pnf.data import data_dir
from pnf.data.meshes import Mesh, cube_grid, inside, load_mesh
from pnf.fields import make_field
from pnf.metrics import chamfer, iou, reconstruct
from pnf.tasks.occupancy import CHAMFER_SAMPLES, FIELD_PRESETS, GRID_BYTES_PER_POINT, POOL_BYTES_PER_POINT, \
    sample_points
from pnf.tasks.records import Settings, Task, in_chunks, register

EIKONAL_WEIGHT = 0.1  # λ of IGR (Gropp et al. 2020), whose Eikonal term is squared as ours
# A step's cost over a plain MSE step of as many points (forward, the input gradient with
# its graph, and the backward through both): 1.3-2.0× across the four fields, measured with
# Adam on one core (64 wide, 500 points).
GRADIENT_COST = 2


@dataclass(frozen=True)
class Sampling:
    """The pool of `pool_size` labelled points: a `uniform_fraction` uniform in [-1, 1]³,
    the rest area-uniform surface points moved by Gaussian noise of standard deviation
    `surface_sigma` (cube units); each epoch draws `batch_size` of them."""

    pool_size: int = 1_000_000
    uniform_fraction: float = 0.5
    surface_sigma: float = 0.01

    def __post_init__(self):
        check_int("sdf option pool_size", self.pool_size, 1)
        check_memory(f"sdf option pool_size = {self.pool_size:,}", self.pool_size * POOL_BYTES_PER_POINT)
        check_number("sdf option uniform_fraction", self.uniform_fraction, 0.0, 1.0)
        check_number("sdf option surface_sigma", self.surface_sigma, 0.0, positive=True)


def signed_distance(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """Distance `[N]` of `points` `[N, 3]` to the surface of `mesh` (libigl), negative
    inside by the winding number (`inside`), so that a mesh with inward-facing triangles
    or small holes is signed as occupancy labels it."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    distance = igl.signed_distance(points, mesh.vertices, mesh.faces, igl.SIGNED_DISTANCE_TYPE_UNSIGNED)[0]
    return np.where(inside(mesh, points), -distance, distance)


@lru_cache(maxsize=4)
def labelled_pool(source: str, folder: Path, seed: int, pool_size: int, uniform_fraction: float,
                  surface_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Points `[P, 3]` and their signed distances `[P]`, float32, computed once per process."""
    mesh = load_mesh(source, folder)
    points = sample_points(mesh, pool_size, uniform_fraction, surface_sigma, np.random.default_rng(seed))
    return points.astype(np.float32), signed_distance(mesh, points).astype(np.float32)


@lru_cache(maxsize=4)
def grid_distance(source: str, folder: Path, resolution: int) -> np.ndarray:
    """The mesh's signed distance on the `resolution`³ grid of `cube_grid`, float32 `[R, R, R]`."""
    mesh = load_mesh(source, folder)
    return signed_distance(mesh, cube_grid(resolution)).astype(np.float32).reshape((resolution,) * 3)


class FieldWithGradient(torch.nn.Module):
    """A field `[N, 3] -> [N, 1]` returned with its spatial gradient: `[N, 3] -> [N, 4]`,
    (f, ∂f/∂x, ∂f/∂y, ∂f/∂z). With gradients enabled the gradient stays in the graph, so a
    loss of it trains the field; under `no_grad` both come back detached."""

    def __init__(self, field: torch.nn.Module):
        super().__init__()
        self.field = field

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        training = torch.is_grad_enabled()
        with torch.enable_grad():
            points = points.detach().requires_grad_(True)
            distance = self.field(points)
            (gradient,) = torch.autograd.grad(distance.sum(), points, create_graph=training)
        output = torch.cat([distance, gradient], dim=-1)
        return output if training else output.detach()


def eikonal(gradient: torch.Tensor) -> torch.Tensor:
    """`mean((‖g‖ − 1)²)` over the rows of `gradient` `[N, 3]`: 0 for a distance function."""
    return ((torch.linalg.vector_norm(gradient, dim=-1) - 1) ** 2).mean()


def sdf_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`prediction` `[N, 4]` (f and ∇ₓf, `FieldWithGradient`), `target` `[N, 1]` distances:
    the squared error of f plus `EIKONAL_WEIGHT` × the Eikonal term."""
    return F.mse_loss(prediction[:, :1], target) + EIKONAL_WEIGHT * eikonal(prediction[:, 1:])


def normal_consistency(mesh_a: trimesh.Trimesh, mesh_b: trimesh.Trimesh, samples: int, seed: int = 0) -> float:
    """Mean |cos| of the angle between the face normal at `samples` area-uniform points of
    each mesh and that at the nearest such point of the other, averaged over the two
    directions (Occupancy Networks' measure; 1 = parallel everywhere, orientation ignored)."""
    points_a, faces_a = trimesh.sample.sample_surface(mesh_a, samples, seed=seed)
    points_b, faces_b = trimesh.sample.sample_surface(mesh_b, samples, seed=seed + 1)
    normals_a, normals_b = mesh_a.face_normals[faces_a], mesh_b.face_normals[faces_b]
    a_to_b = np.abs((normals_a * normals_b[cKDTree(points_b).query(points_a)[1]]).sum(-1)).mean()
    b_to_a = np.abs((normals_b * normals_a[cKDTree(points_a).query(points_b)[1]]).sum(-1)).mean()
    return float((a_to_b + b_to_a) / 2)


class SignedDistance:
    """Fit the signed distance function of one mesh."""

    metric = "chamfer"
    loss = staticmethod(sdf_loss)

    def __init__(self, mesh: Mesh, distance: np.ndarray, pool: Callable[[], tuple[np.ndarray, np.ndarray]],
                 points_per_epoch: int, device: torch.device):
        self.mesh = mesh
        self.distance = distance  # [R, R, R] the mesh's own signed distance on the grid
        self.grid = torch.from_numpy(cube_grid(distance.shape[0])).float().to(device)
        self.pool = pool  # -> (points [P, 3], signed distances [P]), labelled when training first asks
        self.points_per_epoch = points_per_epoch
        self.device = device

    @cached_property
    def labelled_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The pool on the device: points `[P, 3]`, signed distances `[P, 1]`."""
        points, distances = self.pool()
        return torch.from_numpy(points).to(self.device), torch.from_numpy(distances)[:, None].to(self.device)

    def make_model(self, activation: str, **field_options) -> FieldWithGradient:
        """The field with occupancy's 3D presets (the paper's), returning its gradient too."""
        options = {**FIELD_PRESETS.get(activation, {}), **field_options}
        return FieldWithGradient(make_field(activation, 3, 1, **options)).to(self.device)

    def epoch_data(self, epoch: int, generator: torch.Generator):
        """A fresh draw of `points_per_epoch` points from the pool: (points `[n, 3]`,
        signed distances `[n, 1]`)."""
        points, distances = self.labelled_points
        index = torch.randint(len(points), (self.points_per_epoch,), generator=generator,
                              device=generator.device).to(self.device)
        return points[index], distances[index]

    def evaluate(self, model: FieldWithGradient) -> tuple[dict[str, float], np.ndarray]:
        """IoU of {f < 0} against the mesh's inside on the grid; Chamfer distance (cube
        units) and normal consistency of the marching-cubes zero level set against the
        mesh (NaN while the field has none); and the field's grid `[R, R, R]`."""
        values = in_chunks(model.field, self.grid).reshape(self.distance.shape).cpu().numpy()
        try:
            surface, truth = reconstruct(-values, level=0.0), self.mesh.trimesh()
            distance = chamfer(surface, truth, CHAMFER_SAMPLES)
            consistency = normal_consistency(surface, truth, CHAMFER_SAMPLES)
        except ValueError:
            distance = consistency = float("nan")
        metrics = {"iou": iou(values < 0, self.distance < 0), "chamfer": distance, "normal_consistency": consistency}
        return metrics, values

    def target(self) -> np.ndarray:
        return self.distance


def build(config, device) -> SignedDistance:
    """Refuses options out of range, and a grid or pool larger than this machine's memory,
    before anything is loaded."""
    sampling = Sampling(**config.task_options)
    check_memory(f"sdf resolution {config.resolution} (a {config.resolution}³ grid)",
                 config.resolution**3 * GRID_BYTES_PER_POINT)
    folder = data_dir()
    mesh = load_mesh(config.data, folder)
    pool = partial(labelled_pool, config.data, folder, config.seed, sampling.pool_size, sampling.uniform_fraction,
                   sampling.surface_sigma)
    return SignedDistance(mesh, grid_distance(config.data, folder, config.resolution), pool, config.batch_size,
                          device)


def sampling_settings(config) -> dict:
    """The sampling a run used, defaults filled in (for reports)."""
    return asdict(Sampling(**config.task_options))


@dataclass(frozen=True)
class SDFSettings(Settings):
    """`batch_size` points a step (one step an epoch) from a pool of `pool_size`, metrics
    on a `resolution`³ grid, a field of `hidden_layers` + 1 layers of `hidden_features`."""

    pool_size: int = 5_000_000
    hidden_features: int = 256
    hidden_layers: int = 3

    def run_options(self) -> dict:
        return {"task_options": {"pool_size": self.pool_size},
                "field_options": {"hidden_features": self.hidden_features, "hidden_layers": self.hidden_layers}}


# The paper has no SDF task: its 3D occupancy settings (50,000 points, 5,000 epochs, 128³,
# the 256-wide field of 4 layers) are the nearest.
PAPER = SDFSettings(resolution=128, batch_size=50000, epochs=5000, eval_every=50, seeds=3)
SETTINGS = {
    "paper": PAPER,
    # 36 runs in under 2 min of 2 cores (at 200 epochs they took 269 s of one core): 500
    # points a step, a 64-wide field, 160 epochs, metrics on a 32³ grid.
    "quick": replace(PAPER, resolution=32, batch_size=500, epochs=160, eval_every=40, pool_size=200_000,
                     hidden_features=64),
    # 12× quick's steps on 4× its points (2,000 epochs of 2,000, the quick field), metrics on
    # a 64³ grid: projected from quick's step times at about 2 min a run on one core, 36 min
    # of the profile on two; not yet run.
    "cpu": replace(PAPER, resolution=64, batch_size=2000, epochs=2000, eval_every=200, pool_size=1_000_000,
                   hidden_features=64),
    "tiny": replace(PAPER, resolution=12, batch_size=128, epochs=3, eval_every=3, pool_size=2048,
                    hidden_features=16, hidden_layers=1, seeds=1),
}


def grid(task: Task, settings: SDFSettings, source: str) -> list:
    """The paper's four fields × Adam, the paper's ESGD and `esgd_primed` (sdf_fields)."""
    return task.configs(settings, source, ["gaussian", "sine", "wavelet", "relu"], ["adam", "esgd", "esgd_primed"])


def cost(config) -> tuple[int, int, int]:
    """(steps an epoch, points a step, points an evaluation): one step an epoch, each
    `GRADIENT_COST` plain steps' worth, then the grid."""
    return 1, config.batch_size * GRADIENT_COST, config.resolution**3


SDF = register(Task("sdf", build, SETTINGS, "mesh", grid, cost, FIELD_PRESETS, curve_metric="chamfer",
                    task_options=tuple(Sampling.__dataclass_fields__)))
