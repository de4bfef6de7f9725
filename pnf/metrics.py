"""Image metrics (through scikit-image) and occupancy metrics (IoU, marching-cubes
reconstruction, Chamfer distance)."""

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes
from skimage.metrics import peak_signal_noise_ratio


def psnr(prediction: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, `10 log10(range² / MSE)`; inf for identical arrays."""
    if np.array_equal(prediction, target):
        return float("inf")
    return float(peak_signal_noise_ratio(target, prediction, data_range=data_range))


def absolute_error_map(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error `[H, W]` of images `[H, W, C]`, averaged over channels
    (the NeRF error maps of the paper's Fig. 1h/i; their mean is its "error")."""
    return np.abs(prediction - target).mean(axis=-1)


def iou(prediction: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two boolean occupancy grids of the same shape
    (1 for two empty grids)."""
    union = np.logical_or(prediction, target).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(prediction, target).sum() / union)


def reconstruct(probability: np.ndarray, level: float = 0.5, low: float = -1.0, high: float = 1.0) -> trimesh.Trimesh:
    """Marching cubes of a grid `[R, R, R]` sampled on [low, high]³ (point (i, j, k) at
    x = low + i·(high-low)/(R-1), ...) at `level`; vertices in the grid's coordinates.
    The grid is padded with a layer below `level`, so the surface is closed. Raises
    ValueError when the grid does not cross `level`."""
    padded = np.pad(probability, 1, constant_values=min(float(probability.min()), level) - 1)
    step = (high - low) / (probability.shape[0] - 1)
    vertices, faces, _, _ = marching_cubes(padded, level, spacing=(step,) * 3)
    return trimesh.Trimesh(vertices + low - step, faces, process=False)


def chamfer(mesh_a: trimesh.Trimesh, mesh_b: trimesh.Trimesh, samples: int = 20000, seed: int = 0) -> float:
    """Symmetric Chamfer distance: the mean distance from `samples` area-uniform surface
    points of each mesh to the nearest such point of the other, summed over the two
    directions (in the meshes' units)."""
    points_a = trimesh.sample.sample_surface(mesh_a, samples, seed=seed)[0]
    points_b = trimesh.sample.sample_surface(mesh_b, samples, seed=seed + 1)[0]
    a_to_b = cKDTree(points_b).query(points_a)[0].mean()
    b_to_a = cKDTree(points_a).query(points_b)[0].mean()
    return float(a_to_b + b_to_a)
