"""NeRF: cameras, volume rendering against closed forms, scene loaders, the task."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scene_writers import write_blender, write_llff

from pnf.data.cameras import look_at, pixel_rays, ring_poses
from pnf.data.embedded_scene import trace
from pnf.data.scenes import load_lego_npz, load_scene
from pnf.fields import SkipMLP, make_field
from pnf.metrics import absolute_error_map
from pnf.runs.cache import RunConfig, compute
from pnf.tasks.nerf import NeRFFitting
from pnf.tasks.volume_rendering import composite, render_rays

LEGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "nerf" / "lego"


def test_pinhole_ray_hits_known_point():
    # Camera at (0, 0, 5) looking down -z, up +y: the rotation is the identity.
    pose = look_at(torch.tensor([0.0, 0.0, 5.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
    assert torch.allclose(pose[:3, :3], torch.eye(3))
    rays = pixel_rays(pose[None], 11, 11, focal=25.0)[0]  # [11, 11, 6]
    # (1, 0.4, 0) is at depth 5: column 5.5 + 25·1/5 − ½ = 10, row 5.5 − 25·0.4/5 − ½ = 3.
    point = torch.tensor([1.0, 0.4, 0.0])
    ray = rays[3, 10]
    assert torch.allclose(ray[:3] + 5.0 * ray[3:], point, atol=1e-6)
    # ...and it is the pixel whose ray passes nearest the point.
    directions = torch.nn.functional.normalize(rays[..., 3:], dim=-1)
    offset = point - rays[..., :3]
    distance = (offset - (offset * directions).sum(-1, keepdim=True) * directions).norm(dim=-1)
    assert divmod(int(distance.argmin()), 11) == (3, 10)


def test_ring_cameras_look_at_the_origin():
    poses = ring_poses(6, 4.0, 30.0)
    assert torch.allclose(poses[:, :3, 3].norm(dim=-1), torch.full((6,), 4.0), atol=1e-5)
    centre = pixel_rays(poses, 9, 9, focal=20.0)[:, 4, 4]  # the middle pixel of an odd image
    assert torch.allclose(centre[:, :3] + 4.0 * centre[:, 3:], torch.zeros(6, 3), atol=1e-5)


def _slab_field(sigma: float, low: float, high: float):
    """Density `sigma` where low <= z <= high, red everywhere."""

    def field(points):
        inside = (points[:, 2] >= low) & (points[:, 2] <= high)
        return sigma * inside.float(), torch.tensor([1.0, 0.0, 0.0]).expand(len(points), 3)

    return field


@pytest.mark.parametrize("sigma", [0.5, 3.0])
@pytest.mark.parametrize("speed", [1.0, 2.0])
@pytest.mark.parametrize("jitter", [False, True])
def test_constant_density_slab_matches_closed_form(sigma, speed, jitter):
    # Rays from z = 5 down -z at `speed` world units per unit depth cross a slab of
    # thickness 1 (z in [-0.5, 0.5]), whose bins align with the 400 bins of [2, 6].
    rays = torch.tensor([[0.1 * k, 0.0, 5.0, 0.0, 0.0, -speed] for k in range(4)])
    generator = torch.Generator().manual_seed(0) if jitter else None
    rgb = render_rays(_slab_field(sigma, -0.5, 0.5), rays, 2.0, 6.0, 400, background=1.0, generator=generator)
    opacity = 1 - math.exp(-sigma * 1.0)
    expected = torch.tensor([1.0, 1 - opacity, 1 - opacity]).expand(4, 3)
    assert torch.allclose(rgb, expected, atol=1e-5)


def test_compositing_weights_and_transmittance():
    density = torch.tensor([[0.0, 2.0, 1.0, 4.0]])
    segment = torch.full((1, 4), 0.5)
    color = torch.zeros(1, 4, 3)
    rgb, weights = composite(density, color, segment, background=1.0)
    transmittance = np.exp(-np.cumsum([0.0, 0.0, 1.0, 0.5]))
    alpha = 1 - np.exp(-np.array([0.0, 1.0, 0.5, 2.0]))
    assert np.allclose(weights[0].numpy(), alpha * transmittance, atol=1e-6)
    # the background shows through exactly the light that is left: exp(-3.5)
    assert np.allclose(rgb.numpy(), math.exp(-3.5), atol=1e-6)


def test_sphere_density_renders_its_silhouette():
    radius, distance, size, focal = 0.8, 4.0, 41, 40.0
    pose = look_at(torch.tensor([0.0, distance, 0.0]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    rays = pixel_rays(pose[None], size, size, focal).reshape(-1, 6)

    def sphere(points):
        inside = points.norm(dim=-1) <= radius
        return 200.0 * inside.float(), torch.zeros(len(points), 3)

    rgb = render_rays(sphere, rays, 2.0, 6.0, 256, background=1.0)
    opaque = (rgb.mean(-1) < 0.5).reshape(size, size).numpy()
    # The silhouette of a sphere seen from distance D is a disc of radius f·tan(asin(r/D)).
    disc = focal * math.tan(math.asin(radius / distance))
    centre = (size - 1) / 2
    rows, cols = np.mgrid[:size, :size]
    from_centre = np.hypot(rows - centre, cols - centre)
    clear = np.abs(from_centre - disc) > 1.0
    assert np.array_equal(opaque[clear], (from_centre <= disc)[clear])
    assert abs(opaque.sum() - math.pi * disc**2) < 2 * math.pi * disc  # area within a pixel ring


def test_skip_connection_concatenates_the_input():
    field = make_field("gaussian", 3, 4, hidden_features=16, hidden_layers=3, skips=(1,))
    assert isinstance(field, SkipMLP)
    assert field.layers[2].linear.in_features == 16 + 3
    assert field(torch.zeros(5, 3)).shape == (5, 4)
    with pytest.raises(ValueError, match="skips"):
        make_field("gaussian", 3, 4, hidden_layers=3, skips=(3,))


def test_embedded_scene_is_the_analytic_render():
    scene = load_scene("embedded", 16)
    assert scene.images.shape == (44, 16, 16, 3)
    assert scene.test_views == (40, 41, 42, 43) and len(scene.train_views) == 40
    # A pixel in the middle of the image looks at an object, a corner at the white background.
    assert scene.images[:, 8, 8].mean() < 0.9
    assert torch.allclose(scene.images[:, 0, 0], torch.ones(44, 3))
    # The analytic tracer agrees at the pixel centre of a background and an object pixel.
    rays = scene.rays([0])[0]
    assert torch.allclose(trace(rays[0, :1]), torch.ones(1, 3))
    assert trace(rays[8, 8:9]).mean() < 0.9


def test_llff_round_trip(tmp_path):
    scene = load_scene("embedded", 16)
    write_llff(scene, tmp_path, bounds=(2.0, 6.0))
    loaded = load_scene(f"llff:{tmp_path}")
    assert loaded.images.shape == (44, 16, 16, 3)
    assert torch.allclose(loaded.images, scene.images, atol=0.5 / 255 + 1e-6)
    assert loaded.focal == pytest.approx(scene.focal)
    assert torch.allclose(loaded.poses[:, :3, :3], scene.poses[:, :3, :3], atol=1e-6)
    centres = scene.poses[:, :3, 3]
    assert torch.allclose(loaded.poses[:, :3, 3], centres - centres.mean(0), atol=1e-5)
    assert loaded.near == pytest.approx(1.8) and loaded.far == pytest.approx(6.0)
    assert loaded.test_views == tuple(range(0, 44, 8))


def test_blender_round_trip(tmp_path):
    scene = load_scene("embedded", 16)
    write_blender(scene, tmp_path)
    loaded = load_scene(f"blender:{tmp_path}", resolution=8)
    assert loaded.images.shape == (44, 8, 8, 3)
    assert loaded.test_views == (40, 41, 42, 43)
    assert loaded.focal == pytest.approx(scene.focal / 2, rel=1e-6)
    assert torch.allclose(loaded.poses, scene.poses, atol=1e-6)
    averaged = torch.nn.functional.avg_pool2d(scene.images.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    assert torch.allclose(loaded.images, averaged, atol=0.5 / 255 + 1e-6)


def test_missing_scene_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="lego_train_100.npz"):
        load_scene("lego", 64, folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="poses_bounds.npy"):
        load_scene(f"llff:{tmp_path}")


@pytest.mark.skipif(not (LEGO / "lego_train_100.npz").exists(), reason="shared Lego npz absent")
def test_shared_lego_npz():
    scene = load_lego_npz(LEGO / "lego_train_100.npz")
    assert scene.images.shape == (100, 100, 100, 3)
    assert scene.focal == pytest.approx(138.88887889922103)
    frames = json.loads((LEGO / "transforms_train.json").read_text())["frames"]
    assert torch.allclose(scene.poses[7], torch.tensor(frames[7]["transform_matrix"]), atol=1e-6)
    assert torch.allclose(scene.images[:, 0, 0], torch.ones(100, 3))  # composited on white
    assert len(scene.test_views) == 13 and len(scene.train_views) == 87
    resized = load_scene("lego", 50, folder=LEGO.parents[1])
    assert resized.images.shape == (100, 50, 50, 3) and resized.focal == pytest.approx(scene.focal / 2)


def test_error_map():
    prediction = np.zeros((2, 3, 3))
    target = np.zeros((2, 3, 3))
    target[0, 0] = [0.3, 0.6, 0.0]
    errors = absolute_error_map(prediction, target)
    assert errors.shape == (2, 3) and errors[0, 0] == pytest.approx(0.3) and errors.mean() == pytest.approx(0.05)


def test_renderer_state_dict_carries_the_jitter_stream():
    scene = load_scene("embedded", 8)
    task = NeRFFitting(scene, rays_per_epoch=64, seed=0, device=torch.device("cpu"), samples=8)
    model = task.make_model("gaussian", hidden_features=8, hidden_layers=1, skips=())
    rays = task.train_rays[:16]
    state = model.state_dict()
    first = model(rays)
    assert not torch.equal(first, model(rays))  # jittered afresh at each call
    model.load_state_dict(state)
    assert torch.equal(first, model(rays))
    model.eval()
    assert torch.equal(model(rays), model(rays))  # evaluation is deterministic


def _tiny_nerf(optimizer: str) -> RunConfig:
    return RunConfig(task="nerf", activation="gaussian", optimizer=optimizer, data="embedded", resolution=12,
                     epochs=2, batch_size=32, task_options={"samples": 8},
                     field_options={"hidden_features": 16, "hidden_layers": 1, "skips": ()})


@pytest.mark.parametrize("optimizer", ["adam", "esgd"])
def test_nerf_training_is_reproducible_bit_for_bit(optimizer, monkeypatch):
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    first, second = compute(_tiny_nerf(optimizer), progress=False), compute(_tiny_nerf(optimizer), progress=False)
    assert first.status == "ok"
    assert first.history["train_loss"] == second.history["train_loss"]
    assert first.history["metrics"] == second.history["metrics"]
    assert set(first.history["metrics"]) == {"mse", "psnr", "error"}
    assert first.snapshots[2].shape == (12, 12, 3)


def test_nerf_resumes_from_a_checkpoint_bit_for_bit(tmp_path, monkeypatch):
    from pnf.checkpoint import Checkpoints

    monkeypatch.setenv("PNF_DEVICE", "cpu")
    checkpoints = Checkpoints(tmp_path / "partial", every=1)
    full = compute(_tiny_nerf("esgd"), progress=False, checkpoints=checkpoints)  # leaves epoch 1's checkpoint
    resumed = compute(_tiny_nerf("esgd"), progress=False, checkpoints=checkpoints)  # redoes epoch 2 from it
    assert resumed.history["train_loss"] == full.history["train_loss"]
    assert resumed.history["metrics"] == full.history["metrics"]
