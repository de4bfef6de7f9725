"""Writers of the scene formats `pnf.data.scenes` reads, for round-trip tests."""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from pnf.data.scenes import Scene


def write_blender(scene: Scene, folder: Path) -> None:
    """Write `scene` in the NeRF-synthetic format (its test views as the test split)."""
    width = scene.images.shape[2]
    angle = 2 * np.arctan(0.5 * width / scene.focal)
    for split, views in (("train", scene.train_views), ("test", scene.test_views)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for view in views:
            write_png(scene.images[view], folder / split / f"r_{view}.png")
            frames.append({"file_path": f"./{split}/r_{view}", "transform_matrix": scene.poses[view].tolist()})
        meta = {"camera_angle_x": float(angle), "frames": frames}
        (folder / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1))


def write_llff(scene: Scene, folder: Path, bounds: tuple[float, float]) -> None:
    """Write `scene` in the LLFF format with depth `bounds` (near, far) for every view."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    height, width = scene.images.shape[1:3]
    rows = []
    for view, pose in enumerate(scene.poses.numpy()):
        right, up, back, centre = (pose[:3, i] for i in range(4))
        matrix = np.stack([-up, right, back, centre, [height, width, scene.focal]], axis=-1)
        rows.append(np.concatenate([matrix.ravel(), bounds]))
        write_png(scene.images[view], folder / "images" / f"image_{view:03d}.png")
    np.save(folder / "poses_bounds.npy", np.asarray(rows, np.float64))


def write_png(image: torch.Tensor, path: Path) -> None:
    """An RGB image `[H, W, 3]` in [0, 1] as an 8-bit PNG."""
    PILImage.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(path)
