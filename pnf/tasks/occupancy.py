"""3D binary occupancy: points `[N, 3]` in [-1, 1]³ -> inside logit `[N, 1]`, binary
cross-entropy on logits, IoU on a dense grid.

Training points come from a pool labelled once per (mesh, seed, sampling) with the
generalized winding number, when training first asks for it, and kept in memory; each
epoch draws a fresh random subset of it (the paper's code draws a fresh sample each
epoch), so no winding number is computed inside the training loop. By default an epoch
is one batch of points: one optimizer step.
"""

from dataclasses import asdict, dataclass, replace
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from pnf.checks import check_int, check_memory, check_number
from pnf.data import data_dir
from pnf.data.meshes import Mesh, cube_grid, inside, load_mesh
from pnf.fields import make_field
from pnf.metrics import chamfer, iou, reconstruct
from pnf.tasks.records import Settings, Task, in_chunks, register

CHAMFER_SAMPLES = 10000  # surface points per mesh for the Chamfer distance
# Memory, measured (peak resident growth): the IoU grid's coordinates, winding numbers and
# evaluation take about 240 bytes a grid point at 256³; labelling the pool about 100 bytes a
# point; an epoch's draw (indices, points, labels, their shuffle) 48 bytes a point before the
# field's activations.
GRID_BYTES_PER_POINT = 256
POOL_BYTES_PER_POINT = 128
DRAW_BYTES_PER_POINT = 48

# The paper's 3D field hyperparameters (`options/bocc.yaml` of its code) differ from the
# 2D presets only in the Gaussian's width.
FIELD_PRESETS = {"gaussian": {"sigma": 0.09}}


@dataclass(frozen=True)
class Sampling:
    """How training points are drawn. The pool holds `pool_size` labelled points: a
    `uniform_fraction` of them uniform in [-1, 1]³, the rest near the surface
    (area-uniform surface points moved by Gaussian noise of standard deviation
    `surface_sigma`, in the cube's units). The paper's data loader is not published;
    this half-and-half mix with σ = 0.01 is Occupancy Networks' (Mescheder et al.
    2019), the field's standard. `points_per_epoch` defaults to the batch size."""

    pool_size: int = 1_000_000
    uniform_fraction: float = 0.5
    surface_sigma: float = 0.01
    points_per_epoch: int | None = None

    def __post_init__(self):
        check_int("occupancy option pool_size", self.pool_size, 1)
        check_memory(f"occupancy option pool_size = {self.pool_size:,}", self.pool_size * POOL_BYTES_PER_POINT)
        check_number("occupancy option uniform_fraction", self.uniform_fraction, 0.0, 1.0)
        check_number("occupancy option surface_sigma", self.surface_sigma, 0.0, positive=True)
        if self.points_per_epoch is not None:
            check_int("occupancy option points_per_epoch", self.points_per_epoch, 1)


def sample_points(mesh: Mesh, count: int, uniform_fraction: float, surface_sigma: float,
                  rng: np.random.Generator) -> np.ndarray:
    """`count` points `[count, 3]` in [-1, 1]³, mixed as `Sampling` describes."""
    uniform_count = int(round(count * uniform_fraction))
    uniform = rng.uniform(-1.0, 1.0, size=(uniform_count, 3))
    surface = trimesh.sample.sample_surface(mesh.trimesh(), count - uniform_count, seed=rng)[0]
    near = surface + rng.normal(0.0, surface_sigma, size=surface.shape)
    return np.clip(np.concatenate([uniform, near]), -1.0, 1.0)


@lru_cache(maxsize=4)
def labelled_pool(source: str, folder: Path, seed: int, pool_size: int, uniform_fraction: float,
                  surface_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Points `[P, 3]` float32 and inside labels `[P]` bool, computed once per process."""
    mesh = load_mesh(source, folder)
    points = sample_points(mesh, pool_size, uniform_fraction, surface_sigma, np.random.default_rng(seed))
    return points.astype(np.float32), inside(mesh, points)


@lru_cache(maxsize=4)
def grid_occupancy(source: str, folder: Path, resolution: int) -> np.ndarray:
    """The mesh's own occupancy on the `resolution`³ grid of `cube_grid`, bool `[R, R, R]`."""
    mesh = load_mesh(source, folder)
    return inside(mesh, cube_grid(resolution)).reshape((resolution,) * 3)


class Occupancy:
    """Fit the inside/outside function of one mesh."""

    metric = "iou"
    loss = staticmethod(F.binary_cross_entropy_with_logits)

    def __init__(self, mesh: Mesh, occupancy: np.ndarray, pool: Callable[[], tuple[np.ndarray, np.ndarray]],
                 points_per_epoch: int, device: torch.device):
        self.mesh = mesh
        self.occupancy = occupancy  # [R, R, R] bool
        self.grid = torch.from_numpy(cube_grid(occupancy.shape[0])).float().to(device)
        self.pool = pool  # -> (points [P, 3], inside labels [P]), labelled when training first asks
        self.points_per_epoch = points_per_epoch
        self.device = device

    @cached_property
    def labelled_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The pool on the device: points `[P, 3]`, labels `[P, 1]` in {0, 1}."""
        points, labels = self.pool()
        return torch.from_numpy(points).to(self.device), torch.from_numpy(labels).float()[:, None].to(self.device)

    def make_model(self, activation: str, **hyperparameters) -> torch.nn.Module:
        preset = {**FIELD_PRESETS.get(activation, {}), **hyperparameters}
        return make_field(activation, 3, 1, **preset).to(self.device)

    def epoch_data(self, epoch: int, generator: torch.Generator):
        """A fresh draw of `points_per_epoch` labelled points from the pool:
        (points `[n, 3]`, labels `[n, 1]` in {0, 1})."""
        points, labels = self.labelled_points
        index = torch.randint(len(points), (self.points_per_epoch,), generator=generator,
                              device=generator.device).to(self.device)
        return points[index], labels[index]

    def evaluate(self, model) -> tuple[dict[str, float], np.ndarray]:
        """IoU of {probability ≥ 0.5} against the mesh's grid occupancy; Chamfer distance
        (cube units) between the marching-cubes surface at 0.5 and the mesh (NaN while
        the field has no 0.5 level set); and the probability grid `[R, R, R]`."""
        inside_probability = in_chunks(lambda points: torch.sigmoid(model(points)), self.grid)
        probability = inside_probability.reshape(self.occupancy.shape).cpu().numpy()
        try:
            distance = chamfer(reconstruct(probability), self.mesh.trimesh(), CHAMFER_SAMPLES)
        except ValueError:
            distance = float("nan")
        return {"iou": iou(probability >= 0.5, self.occupancy), "chamfer": distance}, probability

    def target(self) -> np.ndarray:
        return self.occupancy.astype(np.float32)


def build(config, device) -> Occupancy:
    """Refuses options out of range, and a grid or draw larger than this machine's memory,
    before anything is loaded."""
    sampling = Sampling(**config.task_options)
    points_per_epoch = sampling.points_per_epoch or config.batch_size
    check_memory(f"occupancy resolution {config.resolution} (a {config.resolution}³ grid)",
                 config.resolution**3 * GRID_BYTES_PER_POINT)
    check_memory(f"{points_per_epoch:,} occupancy points an epoch", points_per_epoch * DRAW_BYTES_PER_POINT)
    folder = data_dir()
    mesh = load_mesh(config.data, folder)
    pool = partial(labelled_pool, config.data, folder, config.seed, sampling.pool_size, sampling.uniform_fraction,
                   sampling.surface_sigma)
    occupancy = grid_occupancy(config.data, folder, config.resolution)
    return Occupancy(mesh, occupancy, pool, points_per_epoch, device)


def sampling_settings(config) -> dict:
    """The sampling a run used, defaults filled in (for reports)."""
    return asdict(Sampling(**config.task_options))


@dataclass(frozen=True)
class OccupancySettings(Settings):
    """`batch_size` points a step (one step an epoch), IoU on a `resolution`³ grid,
    labelled training points drawn from a pool of `pool_size`."""

    pool_size: int = 5_000_000

    def run_options(self) -> dict:
        return {"task_options": {"pool_size": self.pool_size}}


PAPER = OccupancySettings(resolution=128, batch_size=50000, epochs=5000, eval_every=50, snapshot_epoch=1000)
SETTINGS = {
    "paper": PAPER,
    # 5,000 points a step (an ESGD warm-up step with its curvature product costs about half
    # a second on one core), 60 epochs, a 40³ IoU grid; the snapshot at epoch 12 is the same
    # fifth of the run as the paper's epoch 1,000 of 5,000.
    "quick": replace(PAPER, resolution=40, batch_size=5000, epochs=60, eval_every=6, pool_size=500_000,
                     snapshot_epoch=12),
    # past the paper's epoch-1,000 snapshot (Fig. 1f/g) at 20,000 points a step on a 64³ grid
    "cpu": replace(PAPER, resolution=64, batch_size=20000, epochs=1100, eval_every=100, pool_size=2_000_000),
    "tiny": replace(PAPER, resolution=12, batch_size=256, epochs=2, eval_every=1, pool_size=4096, snapshot_epoch=1),
}


def grid(task: Task, settings: OccupancySettings, source: str) -> list:
    """Four fields × ESGD and Adam (occupancy_fig1b, occupancy_activations)."""
    return task.configs(settings, source, ["gaussian", "sine", "wavelet", "relu"], ["adam", "esgd"])


def cost(config) -> tuple[int, int, int]:
    """(steps an epoch, points a step, points an evaluation): one step an epoch, then the grid."""
    return 1, config.batch_size, config.resolution**3


OCCUPANCY = register(Task("occupancy", build, SETTINGS, "mesh", grid, cost, FIELD_PRESETS, curve_metric="iou",
                          task_options=tuple(Sampling.__dataclass_fields__)))
