"""Scenes for NeRF: posed views of a scene, from four kinds of source behind one function.

A source is a string:
- `"embedded"`: a procedural scene (three Lambertian spheres on a slab, white
  background) rendered here by analytic ray–primitive intersection, independently of
  the NeRF's volume renderer, from a ring of 40 training and 4 held-out test poses;
- `"lego"`: the NeRF-synthetic Lego training views in the data folder,
  `nerf/lego/lego_train_<R>.npz` (R = 100, 200 or 400; see `LEGO_NPZ_HINT`), else
  the Blender folder `nerf/lego/` (`transforms_train.json`, `train/r_<i>.png`);
  every 8th view is held out for testing (there is no test split offline);
- `"blender:<folder>"`: the NeRF-synthetic format, `transforms_train.json` (and
  `transforms_test.json` when present, else every 8th view is held out) with RGBA PNGs;
- `"llff:<folder>"`: the LLFF format of the paper's scenes, `poses_bounds.npy` and
  `images/` (sorted by name); every 8th view is held out, as NeRF does (`llffhold`).

RGBA images are composited on white, as nerf-pytorch does for the Blender scenes.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

from pnf.data import FETCH_HINT, data_dir
from pnf.nerf import pixel_rays, ring_poses

EMBEDDED_SCENE = "embedded"
LEGO_SCENE = "lego"
LEGO_RESOLUTIONS = (100, 200, 400)
HOLDOUT_EVERY = 8
LEGO_NPZ_HINT = (
    "the npz files are built from the 100 PNGs of data/nerf_synthetic/lego/train in shouxieai/nerf "
    "@ c56f8179fca38c84200e230e7cb1133f765ec998 by `build_lego_npz.py` (an exact 800/R box downsample of "
    "the straight RGBA, rounded to uint8; keys images_rgba, poses, focal, near, far), see data/SOURCES.md"
)


@dataclass
class Scene:
    """Posed views of one scene.

    images `[V, H, W, 3]` float32 in [0, 1]; poses `[V, 4, 4]` camera-to-world (see
    `pnf.nerf`); focal in pixels; near/far bound the rendered depths (world units);
    `scale` is the half-size of the region holding the scene (points are divided by it
    before the field); `background` is the color seen through empty space.
    """

    images: torch.Tensor
    poses: torch.Tensor
    focal: float
    near: float
    far: float
    scale: float
    background: float
    test_views: tuple[int, ...]
    source: str

    @property
    def train_views(self) -> tuple[int, ...]:
        return tuple(v for v in range(len(self.images)) if v not in self.test_views)

    def rays(self, views) -> torch.Tensor:
        """Rays `[len(views), H, W, 6]` through every pixel of `views`."""
        height, width = self.images.shape[1:3]
        return pixel_rays(self.poses[list(views)], height, width, self.focal)


def load_scene(source: str, resolution: int | None = None, folder: Path | None = None) -> Scene:
    """Load `source` (see the module docstring), its views resized to `resolution`
    pixels wide (area average; `None` keeps their size, or 64 for the embedded scene)."""
    folder = Path(folder) if folder else data_dir()
    if source == EMBEDDED_SCENE:
        return embedded_scene(resolution or 64)
    if source == LEGO_SCENE:
        scene = _load_lego(folder / "nerf" / "lego", resolution)
    elif source.startswith("blender:"):
        scene = _load_blender(Path(source.split(":", 1)[1]))
    elif source.startswith("llff:"):
        scene = _load_llff(Path(source.split(":", 1)[1]))
    else:
        raise ValueError(f"unknown scene {source!r}; 'embedded', 'lego', 'blender:<folder>' or 'llff:<folder>'")
    return resize(scene, resolution) if resolution else scene


def default_scene_source(folder: Path | None = None) -> str:
    """Lego when its npz or PNGs are in the data folder, else the embedded scene."""
    lego = (Path(folder) if folder else data_dir()) / "nerf" / "lego"
    files = [lego / f"lego_train_{r}.npz" for r in LEGO_RESOLUTIONS] + [lego / "train" / "r_0.png"]
    return LEGO_SCENE if any(file.exists() for file in files) else EMBEDDED_SCENE


def describe_scene(source: str) -> str:
    """One line for a report: what the scene is, and whether it is the paper's."""
    if source == LEGO_SCENE:
        return ("the NeRF-synthetic Lego (training views; every 8th held out for testing). The paper's NeRF "
                "numbers are on LLFF scenes, which are not available offline: compare orderings, not values")
    if source == EMBEDDED_SCENE:
        return (f"**embedded default scene** (procedural spheres rendered analytically): the Lego views were "
                f"not found in the data folder ({FETCH_HINT}); numbers are not comparable to the paper's, "
                "only the orderings are")
    return f"user-supplied scene `{source}`"


def resize(scene: Scene, width: int) -> Scene:
    """The scene with its views area-averaged to `width` pixels wide (focal scaled alike)."""
    height, old_width = scene.images.shape[1:3]
    if width == old_width:
        return scene
    new_height = round(height * width / old_width)
    chw = F.interpolate(scene.images.permute(0, 3, 1, 2), size=(new_height, width), mode="area")
    return replace(scene, images=chw.permute(0, 2, 3, 1).contiguous(), focal=scene.focal * width / old_width)


def _holdout(count: int) -> tuple[int, ...]:
    return tuple(range(0, count, HOLDOUT_EVERY))


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """uint8 RGBA or RGB `[..., 3|4]` -> float32 RGB in [0, 1] composited on white."""
    pixels = rgba.astype(np.float32) / 255.0
    if pixels.shape[-1] == 3:
        return pixels
    alpha = pixels[..., 3:]
    return pixels[..., :3] * alpha + (1.0 - alpha)


def _read_png(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(f"scene image {path} does not exist; {FETCH_HINT}")
    with PILImage.open(path) as image:
        return np.asarray(image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"))


# --- Lego (npz layout of the shared data folder) -------------------------------------

def _load_lego(folder: Path, resolution: int | None) -> Scene:
    """The smallest Lego npz at least `resolution` wide (the largest when None), else
    the full-size PNGs of the Blender folder."""
    candidates = [r for r in LEGO_RESOLUTIONS if resolution is None or r >= resolution]
    present = [r for r in candidates if (folder / f"lego_train_{r}.npz").exists()]
    if not present and (folder / "train" / "r_0.png").exists():
        return replace(_load_blender(folder), source=LEGO_SCENE)
    if not present:
        wanted = folder / f"lego_train_{candidates[0] if candidates else LEGO_RESOLUTIONS[-1]}.npz"
        raise FileNotFoundError(f"Lego scene: {wanted} does not exist; {FETCH_HINT}; {LEGO_NPZ_HINT}")
    return load_lego_npz(folder / f"lego_train_{min(present) if resolution else max(present)}.npz")


def load_lego_npz(path: Path) -> Scene:
    """A Lego npz (`images_rgba` uint8 [V, R, R, 4], `poses` [V, 4, 4], `focal`, `near`, `far`)."""
    with np.load(path) as archive:
        images = _on_white(archive["images_rgba"])
        poses, focal = archive["poses"].astype(np.float32), float(archive["focal"])
        near, far = float(archive["near"]), float(archive["far"])
    return Scene(torch.from_numpy(images), torch.from_numpy(poses), focal, near, far, scale=1.5,
                 background=1.0, test_views=_holdout(len(images)), source=LEGO_SCENE)


# --- Blender / NeRF-synthetic --------------------------------------------------------

def _read_transforms(folder: Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    meta = json.loads((folder / f"transforms_{split}.json").read_text())
    images = [_on_white(_read_png(folder / (frame["file_path"] + ".png"))) for frame in meta["frames"]]
    poses = [np.asarray(frame["transform_matrix"], np.float32) for frame in meta["frames"]]
    return images, poses, float(meta["camera_angle_x"])


def _load_blender(folder: Path) -> Scene:
    """NeRF-synthetic scene: near 2, far 6 and scene half-size 1.5 as in NeRF's loader."""
    train_json = folder / "transforms_train.json"
    if not train_json.exists():
        raise FileNotFoundError(f"Blender scene: {train_json} does not exist; {FETCH_HINT}")
    images, poses, angle = _read_transforms(folder, "train")
    test_views = ()
    if (folder / "transforms_test.json").exists():
        test_images, test_poses, _ = _read_transforms(folder, "test")
        test_views = tuple(range(len(images), len(images) + len(test_images)))
        images, poses = images + test_images, poses + test_poses
    else:
        test_views = _holdout(len(images))
    width = images[0].shape[1]
    focal = 0.5 * width / np.tan(0.5 * angle)
    return Scene(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(poses)), float(focal),
                 near=2.0, far=6.0, scale=1.5, background=1.0, test_views=test_views, source=f"blender:{folder}")


def write_blender(scene: Scene, folder: Path) -> None:
    """Write `scene` in the NeRF-synthetic format (its test views as the test split)."""
    width = scene.images.shape[2]
    angle = 2 * np.arctan(0.5 * width / scene.focal)
    for split, views in (("train", scene.train_views), ("test", scene.test_views)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for view in views:
            _write_png(scene.images[view], folder / split / f"r_{view}.png")
            frames.append({"file_path": f"./{split}/r_{view}", "transform_matrix": scene.poses[view].tolist()})
        meta = {"camera_angle_x": float(angle), "frames": frames}
        (folder / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1))


# --- LLFF ----------------------------------------------------------------------------

def _load_llff(folder: Path) -> Scene:
    """LLFF scene in world space (no NDC): poses re-centred on the mean camera centre,
    depths between 0.9× the nearest and the farthest bound, scene half-size `far`."""
    bounds_file = folder / "poses_bounds.npy"
    if not bounds_file.exists():
        raise FileNotFoundError(f"LLFF scene: {bounds_file} does not exist; {FETCH_HINT}")
    table = np.load(bounds_file)  # [V, 17]: a 3x5 matrix [R | t | (H, W, focal)] and (near, far)
    matrices, bounds = table[:, :15].reshape(-1, 3, 5), table[:, 15:]
    paths = sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(paths) != len(table):
        raise ValueError(f"{folder}: {len(table)} poses in poses_bounds.npy but {len(paths)} images in images/")
    images = np.stack([_on_white(_read_png(p)) for p in paths])
    width, focal = matrices[0, 1:, 4]
    down, right, back, centre = (matrices[:, :, i] for i in range(4))
    poses = np.zeros((len(table), 4, 4), np.float32)
    poses[:, :3, :3] = np.stack([right, -down, back], axis=-1)  # LLFF [down, right, back] -> [right, up, back]
    poses[:, :3, 3] = centre - centre.mean(0)
    poses[:, 3, 3] = 1.0
    far = float(bounds.max())
    return Scene(torch.from_numpy(images), torch.from_numpy(poses), float(focal * images.shape[2] / width),
                 near=0.9 * float(bounds.min()), far=far, scale=far, background=1.0,
                 test_views=_holdout(len(images)), source=f"llff:{folder}")


def write_llff(scene: Scene, folder: Path, bounds: tuple[float, float]) -> None:
    """Write `scene` in the LLFF format with depth `bounds` (near, far) for every view."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    height, width = scene.images.shape[1:3]
    rows = []
    for view, pose in enumerate(scene.poses.numpy()):
        right, up, back, centre = (pose[:3, i] for i in range(4))
        matrix = np.stack([-up, right, back, centre, [height, width, scene.focal]], axis=-1)
        rows.append(np.concatenate([matrix.ravel(), bounds]))
        _write_png(scene.images[view], folder / "images" / f"image_{view:03d}.png")
    np.save(folder / "poses_bounds.npy", np.asarray(rows, np.float64))


def _write_png(image: torch.Tensor, path: Path) -> None:
    PILImage.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(path)


# --- the embedded scene ----------------------------------------------------------------

SPHERES = (  # centre (x, y, z), radius, albedo
    ((0.45, -0.1, 0.05), 0.45, (0.85, 0.15, 0.1)),
    ((-0.45, 0.4, -0.05), 0.35, (0.1, 0.7, 0.2)),
    ((-0.25, -0.55, -0.1), 0.3, (0.15, 0.3, 0.9)),
)
SLAB = ((-0.9, -0.9, -0.6), (0.9, 0.9, -0.4), (0.9, 0.75, 0.3))  # box min, box max, albedo
LIGHT = (0.4, -0.3, 0.87)  # direction towards the light
SUPERSAMPLING = 3  # subpixels per side: anti-aliased (soft) edges
LEGO_CAMERA_ANGLE_X = 0.6911112070083618  # horizontal field of view (radians) of the Blender scenes


def embedded_scene(width: int) -> Scene:
    """The procedural scene at `width`² pixels: 40 training views on a ring (radius 4,
    30° elevation) and 4 test views between them (at 20°), field of view as Lego's."""
    poses = torch.cat([ring_poses(40, 4.0, 30.0), ring_poses(4, 4.0, 20.0, offset_deg=20.0)])
    focal = 0.5 * width / np.tan(0.5 * LEGO_CAMERA_ANGLE_X)
    fine = SUPERSAMPLING * width
    rays = pixel_rays(poses, fine, fine, focal * SUPERSAMPLING).reshape(-1, 6)
    colors = trace(rays).reshape(len(poses), fine, fine, 3).permute(0, 3, 1, 2)
    images = F.avg_pool2d(colors, SUPERSAMPLING).permute(0, 2, 3, 1).contiguous()
    return Scene(images, poses, float(focal), near=2.0, far=6.0, scale=1.5, background=1.0,
                 test_views=tuple(range(40, 44)), source=EMBEDDED_SCENE)


def trace(rays: torch.Tensor) -> torch.Tensor:
    """Colors `[N, 3]` of rays `[N, 6]` hitting the embedded scene: the nearest surface,
    Lambert-shaded with ambient light, else white."""
    origins, directions = rays[:, :3], rays[:, 3:]
    hits, normals, albedos = [], [], []
    for centre, radius, albedo in SPHERES:
        depth = _sphere_hit(origins, directions, torch.tensor(centre), radius)
        hits.append(depth)
        normals.append((origins + depth.masked_fill(torch.isinf(depth), 0)[:, None] * directions - torch.tensor(centre)) / radius)
        albedos.append(torch.tensor(albedo).expand(len(rays), 3))
    depth, normal = _box_hit(origins, directions, torch.tensor(SLAB[0]), torch.tensor(SLAB[1]))
    hits.append(depth)
    normals.append(normal)
    albedos.append(torch.tensor(SLAB[2]).expand(len(rays), 3))
    depths = torch.stack(hits)  # [objects, N], inf where missed
    nearest = depths.argmin(0)
    rows = torch.arange(len(rays))
    normal = torch.stack(normals)[nearest, rows]
    albedo = torch.stack(albedos)[nearest, rows]
    shade = 0.35 + 0.65 * (normal @ F.normalize(torch.tensor(LIGHT), dim=0)).clamp(min=0)
    color = albedo * shade[:, None]
    missed = torch.isinf(depths.min(0).values)
    return torch.where(missed[:, None], torch.ones_like(color), color)


def _sphere_hit(origins, directions, centre, radius) -> torch.Tensor:
    """Depth `[N]` of the first positive intersection with a sphere, inf if none."""
    offset = origins - centre
    a = (directions * directions).sum(-1)
    b = 2 * (directions * offset).sum(-1)
    c = (offset * offset).sum(-1) - radius**2
    discriminant = b * b - 4 * a * c
    depth = (-b - torch.sqrt(discriminant.clamp(min=0))) / (2 * a)
    return torch.where((discriminant > 0) & (depth > 0), depth, torch.full_like(depth, float("inf")))


def _box_hit(origins, directions, low, high) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth `[N]` of the entry into an axis-aligned box (inf if missed) and the
    outward normal `[N, 3]` of the face entered (slab method)."""
    inverse = 1.0 / directions
    t_low, t_high = (low - origins) * inverse, (high - origins) * inverse
    t_near, t_far = torch.minimum(t_low, t_high), torch.maximum(t_low, t_high)
    entry, axis = t_near.max(-1)
    exit_ = t_far.min(-1).values
    hit = (entry <= exit_) & (entry > 0)
    normal = F.one_hot(axis, 3).float() * -torch.sign(directions.gather(1, axis[:, None]))
    return torch.where(hit, entry, torch.full_like(entry, float("inf"))), normal
