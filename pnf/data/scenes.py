"""Scenes for NeRF: posed views of a scene, and the scene sources of the registry
(`pnf.data.sources`):
- `"embedded"`: the procedural scene of `pnf.data.embedded_scene`, which needs no download;
- `"lego"`: the NeRF-synthetic Lego training views in the data folder,
  `nerf/lego/lego_train_<R>.npz` (R = 100, 200 or 400; see `LEGO_NPZ_HINT`), else
  the Blender folder `nerf/lego/` (`transforms_train.json`, `train/r_<i>.png`);
  every 8th view is held out for testing (there is no test split offline);
- the user's own scene folder, `blender:<folder>`, `llff:<folder>` or just `<folder>`:
  the NeRF-synthetic format, `transforms_train.json` (and `transforms_test.json` when
  present, else every 8th view is held out) with RGBA PNGs; or the LLFF format of the
  paper's scenes, `poses_bounds.npy` and `images/` (sorted by name), every 8th view held
  out, as NeRF does (`llffhold`).

RGBA images are composited on white, as nerf-pytorch does for the Blender scenes.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pnf.checks import check_memory
from pnf.data import embedded_scene
from pnf.data.cameras import pixel_rays
from pnf.data.images import read_image_file, read_npz, to_rgb
from pnf.data.sources import (FETCH_HINT, REMOTES, DataSource, data_dir, register, register_kind, resolve,
                              user_source)

EMBEDDED_SCENE = "embedded"
LEGO_SCENE = "lego"
BLENDER_SPLITS = ("transforms_train.json", "transforms_test.json")
LLFF_POSES = "poses_bounds.npy"
LEGO_RESOLUTIONS = (100, 200, 400)
HOLDOUT_EVERY = 8
# Memory a view pixel takes (peak resident growth, measured): 67 bytes for a loaded scene
# (its images, every view's rays, an epoch's shuffle) at Lego 200; 2,100 for the embedded
# scene, traced at 3×3 subpixels.
PIXEL_BYTES = 100
EMBEDDED_PIXEL_BYTES = 2200
LEGO_NPZ_HINT = (
    "the npz files are built from the 100 PNGs of data/nerf_synthetic/lego/train in shouxieai/nerf "
    "@ c56f8179fca38c84200e230e7cb1133f765ec998 by `build_lego_npz.py` (an exact 800/R box downsample of "
    "the straight RGBA, rounded to uint8; keys images_rgba, poses, focal, near, far), see data/README.md; "
    "or copy those PNGs to nerf/lego/train/ (no checksums are recorded for them)"
)
# the npz files have no download: `make data` copies them from PNF_DATA_MIRROR
LEGO_REMOTES = tuple(remote for path, remote in REMOTES.items() if path.startswith("nerf/lego/"))


@dataclass
class Scene:
    """Posed views of one scene.

    images `[V, H, W, 3]` float32 in [0, 1]; poses `[V, 4, 4]` camera-to-world (see
    `pnf.data.cameras`); focal in pixels; near/far bound the rendered depths (world units);
    `scale` is the half-size of the region holding the scene (points are divided by it
    before the field); `background` is the color seen through empty space (white).
    """

    images: torch.Tensor
    poses: torch.Tensor
    focal: float
    near: float
    far: float
    scale: float
    test_views: tuple[int, ...]
    background: float = 1.0
    source: str = ""

    @property
    def train_views(self) -> tuple[int, ...]:
        return tuple(v for v in range(len(self.images)) if v not in self.test_views)

    def rays(self, views) -> torch.Tensor:
        """Rays `[len(views), H, W, 6]` through every pixel of `views`."""
        height, width = self.images.shape[1:3]
        return pixel_rays(self.poses[list(views)], height, width, self.focal)


def load_scene(source: str, resolution: int | None = None, folder: Path | None = None) -> Scene:
    """Load `source` (see the module docstring), its views resized to `resolution`
    pixels wide (area average, focal scaled alike; `None` keeps their size, or 64 for the
    embedded scene)."""
    scene = resolve(source, "scene").load(data_dir(folder), resolution)
    if not 0 < scene.near < scene.far:
        raise ValueError(f"scene {source!r}: its depths run from near {scene.near} to far {scene.far}; "
                         "a scene needs 0 < near < far")
    views, height, width = scene.images.shape[:3]
    if resolution and resolution != width:
        size = (round(height * resolution / width), resolution)
        check_memory(f"nerf resolution {resolution} ({views} views of {size[1]}×{size[0]})",
                     views * size[0] * size[1] * PIXEL_BYTES)
        chw = F.interpolate(scene.images.permute(0, 3, 1, 2), size=size, mode="area")
        scene = replace(scene, images=chw.permute(0, 2, 3, 1).contiguous(), focal=scene.focal * resolution / width)
    return replace(scene, source=source)


def _holdout(count: int) -> tuple[int, ...]:
    return tuple(range(0, count, HOLDOUT_EVERY))


def _load_embedded(folder: Path, resolution: int | None) -> Scene:
    check_memory(f"nerf resolution {resolution} ({embedded_scene.VIEWS} embedded views of {resolution}²)",
                 embedded_scene.VIEWS * (resolution or 64) ** 2 * EMBEDDED_PIXEL_BYTES)
    images, poses, focal = embedded_scene.render_views(resolution or 64)
    return Scene(images, poses, focal, near=2.0, far=6.0, scale=1.5, test_views=embedded_scene.TEST_VIEWS)


# --- Lego (npz layout of the shared data folder) -------------------------------------

def _load_lego(folder: Path, resolution: int | None) -> Scene:
    """The smallest Lego npz at least `resolution` wide (the largest when None), else
    the full-size PNGs of the Blender folder."""
    folder = folder / "nerf" / "lego"
    candidates = [r for r in LEGO_RESOLUTIONS if resolution is None or r >= resolution]
    present = [r for r in candidates if (folder / f"lego_train_{r}.npz").exists()]
    if not present and (folder / "train" / "r_0.png").exists():
        return _load_blender(folder)
    if not present:
        wanted = folder / f"lego_train_{candidates[0] if candidates else LEGO_RESOLUTIONS[-1]}.npz"
        raise FileNotFoundError(f"Lego scene: {wanted} does not exist; {FETCH_HINT}; {LEGO_NPZ_HINT}")
    return load_lego_npz(folder / f"lego_train_{min(present) if resolution else max(present)}.npz")


def load_lego_npz(path: Path) -> Scene:
    """A Lego npz (`images_rgba` uint8 [V, R, R, 4], `poses` [V, 4, 4], `focal`, `near`, `far`)."""
    expected = "images_rgba uint8 [V, R, R, 4], poses [V, 4, 4] and the numbers focal, near, far; " + LEGO_NPZ_HINT
    arrays = read_npz(path, ("images_rgba", "poses", "focal", "near", "far"), expected)
    rgba, poses = arrays["images_rgba"], arrays["poses"]
    if rgba.ndim != 4 or rgba.shape[-1] != 4 or poses.shape != (len(rgba), 4, 4) or any(
            arrays[name].size != 1 for name in ("focal", "near", "far")):
        shapes = ", ".join(f"{name} {array.shape}" for name, array in arrays.items())
        raise ValueError(f"{path}: arrays of shapes {shapes}; expected {expected}")
    images = to_rgb(rgba, str(path))
    poses, focal = poses.astype(np.float32), float(arrays["focal"])
    near, far = float(arrays["near"]), float(arrays["far"])
    return Scene(torch.from_numpy(images), torch.from_numpy(poses), focal, near, far, scale=1.5,
                 test_views=_holdout(len(images)), source=LEGO_SCENE)


# --- Blender / NeRF-synthetic --------------------------------------------------------

def _load_blender(folder: Path) -> Scene:
    """NeRF-synthetic scene: near 2, far 6 and scene half-size 1.5 as in NeRF's loader; the
    test split's views (when there is one) are the test views, else every 8th."""
    train_json = folder / BLENDER_SPLITS[0]
    if not train_json.exists():
        raise FileNotFoundError(f"Blender scene: {train_json} does not exist; {FETCH_HINT}")
    metas = [_read_transforms(path) for path in blender_splits(folder)]
    frames = [frame for _, split_frames in metas for frame in split_frames]
    paths = [blender_view(folder, file_path) for file_path, _ in frames]
    images = [to_rgb(read_image_file(path), str(path)) for path in paths]
    sizes = sorted({image.shape for image in images})
    if len(sizes) > 1:
        raise ValueError(f"Blender scene {folder}: views of {len(sizes)} sizes ({', '.join(map(str, sizes[:3]))}); "
                         "every view needs the same size")
    poses = np.stack([matrix for _, matrix in frames])
    train_count = len(metas[0][1])
    test_views = tuple(range(train_count, len(frames))) if len(metas) == 2 else _holdout(train_count)
    focal = 0.5 * images[0].shape[1] / np.tan(0.5 * metas[0][0])
    return Scene(torch.from_numpy(np.stack(images)), torch.from_numpy(poses), float(focal),
                 near=2.0, far=6.0, scale=1.5, test_views=test_views)


def blender_splits(folder: Path) -> list[Path]:
    """The Blender scene's `transforms_<split>.json` files present in `folder`, train first."""
    return [folder / name for name in BLENDER_SPLITS if (folder / name).is_file()]


def blender_view(folder: Path, file_path: str) -> Path:
    """The image of a Blender frame whose `file_path` (relative, without `.png`) is given."""
    return folder / (file_path + ".png")


def _read_transforms(path: Path) -> tuple[float, list[tuple[str, np.ndarray]]]:
    """A Blender `transforms_<split>.json`: its horizontal field of view (radians) and its
    frames, each (file path without `.png`, camera-to-world matrix `[4, 4]` float32)."""
    expected = ("expected a JSON object with camera_angle_x (radians, between 0 and π) and a list of frames, "
                "each with a file_path and a 4×4 transform_matrix")
    try:
        meta = json.loads(path.read_text())
        angle = float(meta["camera_angle_x"])
        frames = [(str(frame["file_path"]), np.asarray(frame["transform_matrix"], np.float32))
                  for frame in meta["frames"]]
    except (ValueError, KeyError, TypeError) as error:
        reason = f"no {error}" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
        raise ValueError(f"{path}: unreadable ({reason}); {expected}") from None
    if not 0 < angle < np.pi or not frames or any(matrix.shape != (4, 4) for _, matrix in frames):
        raise ValueError(f"{path}: camera_angle_x {angle}, {len(frames)} frames, transform_matrix shapes "
                         f"{sorted({matrix.shape for _, matrix in frames})}; {expected}")
    return angle, frames


# --- LLFF ----------------------------------------------------------------------------

def _load_llff(folder: Path) -> Scene:
    """LLFF scene in world space (no NDC): poses re-centred on the mean camera centre,
    depths between 0.9× the nearest and the farthest bound, scene half-size `far`."""
    bounds_file = folder / LLFF_POSES
    if not bounds_file.exists():
        raise FileNotFoundError(f"LLFF scene: {bounds_file} does not exist; {FETCH_HINT}")
    table = _read_poses_bounds(bounds_file)  # [V, 17]: a 3x5 matrix [R | t | (H, W, focal)] and (near, far)
    matrices, bounds = table[:, :15].reshape(-1, 3, 5), table[:, 15:]
    paths = llff_images(folder)
    if len(paths) != len(table):
        raise ValueError(f"{folder}: {len(table)} poses in poses_bounds.npy but {len(paths)} images in images/")
    images = np.stack([to_rgb(read_image_file(path), str(path)) for path in paths])
    width, focal = matrices[0, 1:, 4]
    down, right, back, centre = (matrices[:, :, i] for i in range(4))
    poses = np.zeros((len(table), 4, 4), np.float32)
    poses[:, :3, :3] = np.stack([right, -down, back], axis=-1)  # LLFF [down, right, back] -> [right, up, back]
    poses[:, :3, 3] = centre - centre.mean(0)
    poses[:, 3, 3] = 1.0
    far = float(bounds.max())
    return Scene(torch.from_numpy(images), torch.from_numpy(poses), float(focal * images.shape[2] / width),
                 near=0.9 * float(bounds.min()), far=far, scale=far, test_views=_holdout(len(images)))


def llff_images(folder: Path) -> list[Path]:
    """An LLFF scene's views: the PNG and JPEG files of `folder/images`, sorted by name."""
    images = folder / "images"
    if not images.is_dir():
        return []
    return sorted(p for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def scene_files(folder: Path) -> list[Path]:
    """The files the scene in `folder` is read from (for the runs' cache keys): a Blender scene's
    splits and the view of each of their frames, wherever it lies; an LLFF scene's poses and
    views; every file under `folder` when it is in neither format. Only the frames' file paths
    are read from a split; one that has none readable brings only itself (loading it says why)."""
    splits = blender_splits(folder)
    if splits:
        views = []
        for split in splits:
            try:
                views += [blender_view(folder, frame["file_path"]) for frame in json.loads(split.read_text())["frames"]]
            except (ValueError, KeyError, TypeError):
                pass
        return splits + views
    if (folder / LLFF_POSES).is_file():
        return [folder / LLFF_POSES, *llff_images(folder)]
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _read_poses_bounds(path: Path) -> np.ndarray:
    """LLFF's `poses_bounds.npy` `[V, 17]` with finite entries and positive bounds, read without unpickling."""
    expected = "expected LLFF's poses_bounds.npy, a float array [V, 17] (a 3×5 pose and near, far > 0 a view)"
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise ValueError(f"{path}: not a readable .npy array; {expected}") from None
    if not isinstance(table, np.ndarray) or table.dtype.kind not in "fiu" or table.ndim != 2 or table.shape[1] != 17:
        raise ValueError(f"{path}: holds {getattr(table, 'shape', type(table).__name__)}; {expected}")
    if not np.isfinite(table).all() or (table[:, 15:] <= 0).any():
        raise ValueError(f"{path}: has non-finite entries or bounds ≤ 0; {expected}")
    return table


# --- the registry ----------------------------------------------------------------------

SCENE_FORMATS = {"blender": ("transforms_train.json", _load_blender), "llff": ("poses_bounds.npy", _load_llff)}


def _read_user_scene(name: str) -> DataSource:
    """The user's scene folder: `blender:<folder>`, `llff:<folder>`, or a folder in either format."""
    form, _, folder = name.partition(":") if name.split(":")[0] in SCENE_FORMATS else ("", "", name)

    def read(path: Path) -> Scene:
        found = form or next((f for f, (marker, _) in SCENE_FORMATS.items() if (path / marker).exists()), None)
        if found is None:
            raise ValueError(f"scene {name!r}: {path} has neither transforms_train.json (a Blender scene) nor "
                             "poses_bounds.npy (an LLFF scene)")
        return SCENE_FORMATS[found][1](path)

    return user_source(name, "scene", read, Path(folder))


def _register_sources() -> None:
    register(DataSource(
        LEGO_SCENE, "scene", _load_lego,
        "the NeRF-synthetic Lego (training views; every 8th held out for testing). The paper's NeRF numbers are "
        "on LLFF scenes, which are not available offline: compare orderings, not values", remotes=LEGO_REMOTES,
        files=tuple(f"nerf/lego/lego_train_{r}.npz" for r in LEGO_RESOLUTIONS) + ("nerf/lego/train/r_0.png",)))
    register(DataSource(EMBEDDED_SCENE, "scene", _load_embedded,
                        "procedural spheres on a slab, rendered analytically (`pnf.data.embedded_scene`)"))
    register_kind("scene", _read_user_scene, LEGO_SCENE, EMBEDDED_SCENE)


_register_sources()
