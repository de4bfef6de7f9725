"""The signed distance task: its supervision, its Eikonal term, ESGD's curvature
through that term, a tiny run, and its refusals of bad options and meshes."""

import math
import warnings

import igl
import numpy as np
import pytest
import torch
import trimesh

from pnf.checks import ConfigError
from pnf.config import RunConfig
from pnf.data.meshes import load_mesh
from pnf.fields import GaborLayer, GaussianLayer, make_field
from pnf.optim import ESGD
from pnf.runs.cache import compute
from pnf.tasks import make_task
from pnf.tasks.sdf import FieldWithGradient, eikonal, sdf_loss, signed_distance
from pnf.train import optimizer_step

torch.set_num_threads(1)
TINY_FIELD = {"hidden_features": 8, "hidden_layers": 1}


@pytest.fixture
def data(tmp_path, monkeypatch):
    """An empty cache and data folder."""
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DATA", str(tmp_path))
    return tmp_path


def config(data: str = "embedded:snowman", **fields) -> RunConfig:
    values = {"task": "sdf", "activation": "relu", "optimizer": "adam", "data": data, "resolution": 8, "epochs": 1,
              "batch_size": 16, "field_options": TINY_FIELD, **fields}
    return RunConfig(**values)


def write_cube(folder) -> str:
    """A cube of side 2 as an OBJ file: normalised, it spans [-0.9, 0.9]³."""
    path = folder / "cube.obj"
    trimesh.creation.box([2.0, 2.0, 2.0]).export(path)
    return str(path)


def cube_distance(points: np.ndarray, half: float = 0.9) -> np.ndarray:
    """The exact signed distance `[N]` to the cube [-half, half]³."""
    offset = np.abs(points) - half
    return np.linalg.norm(np.maximum(offset, 0), axis=1) + np.minimum(offset.max(1), 0)


def test_supervision_is_the_exact_distance_of_a_cube_and_igl_signed_distance(data):
    mesh = load_mesh(write_cube(data))
    known = np.array([[0.0, 0, 0], [0.5, 0, 0], [1.0, 0, 0], [1.0, 1.0, 1.0], [0.9, 0.2, -0.3]])
    assert signed_distance(mesh, known) == pytest.approx([-0.9, -0.4, 0.1, 0.1 * math.sqrt(3), 0.0], abs=1e-12)
    task = make_task(config(write_cube(data), task_options={"pool_size": 3000}), torch.device("cpu"))
    points, distances = task.pool()
    assert distances == pytest.approx(cube_distance(points.astype(np.float64)), abs=1e-6)
    default = igl.signed_distance(points.astype(np.float64), mesh.vertices, mesh.faces)[0]
    assert distances == pytest.approx(default, abs=1e-6)
    assert (distances < 0).mean() == pytest.approx(0.5 * 0.9**3 + 0.25, abs=0.05)  # uniform half + half the near ones


class Sphere(torch.nn.Module):
    """`scale · (|x| − radius)`: the sphere's signed distance at scale 1."""

    def __init__(self, radius: float = 0.5, scale: float = 1.0):
        super().__init__()
        self.radius, self.scale = radius, scale

    def forward(self, x):
        return self.scale * (torch.linalg.vector_norm(x, dim=-1, keepdim=True) - self.radius)


def test_eikonal_term_vanishes_for_an_exact_distance_and_not_otherwise():
    x = torch.rand(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    exact = FieldWithGradient(Sphere())(x)
    assert torch.allclose(exact[:, 1:], x / x.norm(dim=1, keepdim=True), rtol=0, atol=1e-12)
    assert float(eikonal(exact[:, 1:]).detach()) < 1e-24
    assert float(sdf_loss(exact, x.norm(dim=1, keepdim=True) - 0.5)) < 1e-24
    assert float(eikonal(FieldWithGradient(Sphere(scale=2.0))(x)[:, 1:])) == pytest.approx(1.0)
    assert float(eikonal(FieldWithGradient(Sphere(scale=0.25))(x)[:, 1:])) == pytest.approx(0.75**2)


def plain_forward(field: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`field(x)` with the Gaussian and Gabor bumps as plain torch operations (no
    closed-form derivatives): the reference that autograd differentiates to any order."""
    for layer in field:
        if isinstance(layer, GaussianLayer):
            x = torch.exp(-0.5 * (layer.linear(x) / layer.sigma) ** 2)
        elif isinstance(layer, GaborLayer):
            x = torch.cos(layer.omega * layer.frequency(x)) * torch.exp(-(layer.scale * layer.envelope(x)) ** 2)
        else:
            x = layer(x)
    return x


class RecordingESGD(ESGD):
    """ESGD that keeps the Hessian-vector products and vectors of its last curvature step."""

    def update(self, params, products, vectors):
        self.recorded = products, vectors
        super().update(params, products, vectors)


# Hyperparameters where a float64 comparison is well conditioned (the presets' narrow
# bumps and high frequencies give products of 1e8 and more on random points).
MILD = {"gaussian": {"sigma": 0.5}, "sine": {"omega": 3.0}, "wavelet": {"omega": 2.0, "scale": 1.0},
        "relu": {"frequencies": 2}}
@pytest.mark.parametrize("activation", ["gaussian", "sine", "wavelet", "relu"])
def test_esgd_hessian_vector_products_through_the_eikonal_term_equal_autograd(activation):
    torch.manual_seed(0)
    model = FieldWithGradient(make_field(activation, 3, 1, hidden_features=6, hidden_layers=1, **MILD[activation]))
    model = model.double()
    x = torch.rand(32, 3, dtype=torch.float64) * 2 - 1
    y = torch.rand(32, 1, dtype=torch.float64) - 0.5
    optimizer = RecordingESGD(model.parameters(), lr=0.0, seed=3)
    optimizer_step(model, optimizer, sdf_loss, x, y)
    products, vectors = optimizer.recorded
    params = list(model.parameters())
    reference = FieldWithGradient(lambda points: plain_forward(model.field, points))
    gradients = torch.autograd.grad(sdf_loss(reference(x), y), params, create_graph=True)
    expected = torch.autograd.grad(gradients, params, grad_outputs=vectors)
    for product, exact in zip(products, expected):
        assert torch.allclose(product, exact, rtol=1e-6, atol=1e-6 * float(exact.abs().max()))


def test_a_tiny_run_trains_and_its_metrics_improve(data):
    result = compute(config(activation="sine", optimizer_options={"lr": 1e-3}, resolution=20, epochs=80,
                            batch_size=500, eval_every=40, field_options={"hidden_features": 32, "hidden_layers": 2},
                            task_options={"pool_size": 20000}), progress=False)
    losses, metrics = result.history["train_loss"], result.history["metrics"]
    assert result.status == "ok" and losses[-1] < 0.1 * losses[0]
    assert metrics["iou"][0] == 0 and metrics["iou"][-1] > 0.6  # the initial field has no inside
    assert metrics["chamfer"][-1] < min(0.1, metrics["chamfer"][1])
    assert metrics["normal_consistency"][-1] > max(0.7, metrics["normal_consistency"][1])
    assert result.snapshots[80].shape == (20, 20, 20)


@pytest.mark.parametrize("options, message", [
    ({"pool_size": 0}, "sdf option pool_size must be an integer ≥ 1, not 0"),
    ({"pool_size": 2.5}, "sdf option pool_size must be an integer ≥ 1, not 2.5"),
    ({"uniform_fraction": 1.5}, "sdf option uniform_fraction must be a number from 0 to 1, not 1.5"),
    ({"surface_sigma": 0}, "sdf option surface_sigma must be a positive number, not 0"),
    ({"surface_sigma": math.nan}, "sdf option surface_sigma must be a positive number, not nan"),
    ({"points_per_epoch": 10}, "task 'sdf' takes the task options ['pool_size', 'uniform_fraction', "
                               "'surface_sigma'], not ['points_per_epoch']"),
])
def test_bad_task_options_are_refused_before_anything_is_loaded(options, message, data):
    with pytest.raises(ConfigError) as refused:
        make_task(config(task_options=options), torch.device("cpu"))
    assert message in str(refused.value)


def test_a_flat_mesh_is_refused_and_an_open_one_warned_about(data):
    flat, open_box = data / "flat.obj", data / "open.obj"
    trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]]).export(flat)
    box = trimesh.creation.box()
    trimesh.Trimesh(box.vertices, box.faces[:-2]).export(open_box)
    with pytest.raises(ValueError, match="a flat mesh"):
        make_task(config(str(flat)), torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_task(config(str(open_box)), torch.device("cpu"))
    assert any("the mesh is open (not watertight)" in str(w.message) for w in caught)
