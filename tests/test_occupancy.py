"""3D occupancy: inside/outside labels, IoU, marching cubes, Chamfer, mesh loading, the task."""

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from pnf.data import FETCH_HINT
from pnf.data.meshes import HALF_EXTENT, Mesh, cube_grid, inside, load_mesh
from pnf.metrics import chamfer, iou, reconstruct
from pnf.tasks.occupancy import Occupancy, sample_points

SHARED_MESHES = Path(__file__).resolve().parents[2] / "shared" / "data"


def as_mesh(shape: trimesh.Trimesh) -> Mesh:
    return Mesh(np.asarray(shape.vertices), np.asarray(shape.faces, dtype=np.int64), "test")


def test_points_inside_and_outside_a_unit_cube():
    cube = as_mesh(trimesh.creation.box(extents=(1, 1, 1)))
    inner = np.array([[0, 0, 0], [0.45, 0.45, 0.45], [-0.45, 0.2, -0.3], [0.49, 0, 0]])
    outer = np.array([[0.55, 0, 0], [0, -0.51, 0], [0.6, 0.6, 0.6], [2, 0, 0], [0.4, 0.4, -0.55]])
    assert inside(cube, inner).all()
    assert not inside(cube, outer).any()


def test_points_inside_and_outside_a_sphere_even_with_a_hole():
    sphere = trimesh.creation.icosphere(4, radius=1.0)
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = rng.uniform(0, 1, size=(500, 1)) ** (1 / 3)
    in_points, out_points = 0.95 * radii * directions, (1.05 + radii) * directions
    top = sphere.triangles_center[:, 2] > 0.97  # a cap of the sphere removed: a hole about 0.5 wide
    holed = Mesh(np.asarray(sphere.vertices), np.asarray(sphere.faces[~top], dtype=np.int64), "holed")
    assert 10 < top.sum() < 100 and not trimesh.Trimesh(holed.vertices, holed.faces).is_watertight
    for mesh in (as_mesh(sphere), holed):
        assert inside(mesh, in_points).all()
        assert not inside(mesh, out_points).any()
    assert inside(holed, np.array([[0, 0, 0.8], [0.1, 0, 0.9]])).all()  # just under the hole
    assert not inside(holed, np.array([[0, 0, 1.05], [0, 0, 1.3]])).any()  # just above it


def test_inward_facing_mesh_is_labelled_the_same():
    sphere = trimesh.creation.icosphere(3, radius=1.0)
    flipped = Mesh(np.asarray(sphere.vertices), np.asarray(sphere.faces[:, ::-1], dtype=np.int64), "flipped")
    points = np.array([[0, 0, 0], [0.5, 0.5, 0], [1.2, 0, 0]])
    assert inside(flipped, points).tolist() == [True, True, False]


def test_iou_of_identical_disjoint_and_partial_grids():
    grid = np.zeros((4, 4, 4), dtype=bool)
    grid[:2] = True
    assert iou(grid, grid) == 1.0
    assert iou(grid, ~grid) == 0.0
    half = np.zeros_like(grid)
    half[:1] = True
    assert iou(half, grid) == pytest.approx(0.5)
    shifted = np.zeros_like(grid)
    shifted[1:3] = True
    assert iou(grid, shifted) == pytest.approx(1 / 3)


def test_marching_cubes_of_a_sphere_occupancy_has_its_volume():
    radius, resolution = 0.6, 64
    points = cube_grid(resolution)
    occupancy = (np.linalg.norm(points, axis=1) <= radius).reshape((resolution,) * 3).astype(np.float32)
    surface = reconstruct(occupancy)
    assert abs(surface.volume) == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.02)
    assert np.abs(surface.vertices).max() < 1.0
    radii = np.linalg.norm(surface.vertices, axis=1)
    assert np.abs(radii - radius).max() < 2 / (resolution - 1)  # within a voxel of the sphere


def test_marching_cubes_of_a_grid_without_surface_raises():
    with pytest.raises(ValueError):
        reconstruct(np.zeros((8, 8, 8), dtype=np.float32))


def test_chamfer_of_concentric_spheres_is_their_gap_twice():
    small = trimesh.creation.icosphere(5, radius=0.5)
    large = trimesh.creation.icosphere(5, radius=0.6)
    assert chamfer(small, large) == pytest.approx(0.2, abs=0.015)
    assert chamfer(small, small) < 0.015  # only the sampling density


def test_sampling_mix_puts_the_requested_fraction_near_the_surface():
    sphere = as_mesh(trimesh.creation.icosphere(4, radius=0.5))
    points = sample_points(sphere, 20000, uniform_fraction=0.25, surface_sigma=0.01, rng=np.random.default_rng(0))
    assert points.shape == (20000, 3) and np.abs(points).max() <= 1.0
    near = np.abs(np.linalg.norm(points, axis=1) - 0.5) < 0.04
    assert 0.75 <= near.mean() < 0.78  # 75% near the surface, plus uniform points that fall in the shell


@pytest.mark.skipif(not (SHARED_MESHES / "meshes" / "armadillo.obj").exists(), reason="real meshes absent")
@pytest.mark.parametrize("name", ["armadillo", "bunny", "dragon"])
def test_real_mesh_is_normalised_into_the_cube(name):
    mesh = load_mesh(f"mesh:{name}", SHARED_MESHES)
    low, high = mesh.vertices.min(0), mesh.vertices.max(0)
    assert np.allclose(low + high, 0, atol=1e-9)  # bounding box centred
    assert (high - low).max() == pytest.approx(2 * HALF_EXTENT)
    occupied = inside(mesh, cube_grid(24)).mean()
    assert 0.01 < occupied < 0.5


def test_embedded_mesh_is_closed_and_normalised():
    mesh = load_mesh("embedded:snowman")
    assert trimesh.Trimesh(mesh.vertices, mesh.faces).is_watertight
    assert np.abs(mesh.vertices).max() == pytest.approx(HALF_EXTENT)
    assert inside(mesh, np.array([[0, -0.3, 0], [0, 0.85, 0]])).all()  # body; hat
    assert not inside(mesh, np.array([[0.8, -0.8, 0.8], [0, 0, -0.95]])).any()


@pytest.mark.parametrize("name, content", [
    ("notes.obj", b"this is not a mesh\njust text\n"),
    ("empty.off", b""),
    ("junk.ply", b"\x00\x01\x02 binary junk \xff\xfe"),
])
def test_a_non_mesh_file_gives_an_error_naming_it(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=name):
        load_mesh(str(path))


def test_a_missing_mesh_names_the_file_and_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="meshes/armadillo.obj") as error:
        load_mesh("mesh:armadillo", tmp_path)
    assert FETCH_HINT in str(error.value)


def test_task_draws_fresh_correctly_labelled_points_and_evaluates():
    sphere = as_mesh(trimesh.creation.icosphere(3, radius=0.6))
    points = sample_points(sphere, 4000, 0.5, 0.01, np.random.default_rng(0)).astype(np.float32)
    labels = inside(sphere, points)
    occupancy = inside(sphere, cube_grid(16)).reshape(16, 16, 16)
    labelled = []
    task = Occupancy(sphere, occupancy, lambda: labelled.append(1) or (points, labels), points_per_epoch=500,
                     device=torch.device("cpu"))
    assert task.target().shape == (16, 16, 16) and not labelled  # the pool is labelled when training asks
    generator = torch.Generator().manual_seed(0)
    first, first_labels = task.epoch_data(1, generator)
    second, _ = task.epoch_data(2, generator)
    assert first.shape == (500, 3) and first_labels.shape == (500, 1)
    assert not torch.equal(first, second)
    assert np.array_equal(first_labels[:, 0].numpy() > 0.5, inside(sphere, first.numpy()))
    assert labelled == [1]  # once

    model = task.make_model("gaussian")
    assert model[0].sigma == 0.09  # the 3D preset
    assert task.make_model("gaussian", sigma=0.2)[0].sigma == 0.2
    metrics, probability = task.evaluate(model)
    assert probability.shape == (16, 16, 16) and 0 <= metrics["iou"] <= 1

    class Oracle(torch.nn.Module):  # the true inside logit of the sphere
        def forward(self, x):
            return 50 * (0.6 - x.norm(dim=1, keepdim=True))

    metrics, probability = task.evaluate(Oracle())
    assert metrics["iou"] > 0.99
    assert metrics["chamfer"] < 0.05
    assert task.loss(Oracle()(first), first_labels) < 0.5 * np.log(2)  # half of a know-nothing field's
