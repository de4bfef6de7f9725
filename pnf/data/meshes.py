"""Meshes for 3D binary occupancy, their inside/outside labels, and the mesh sources of
the registry (`pnf.data.sources`):
- `"mesh:<name>"`: `meshes/<name>.obj` in the data folder for the Stanford `armadillo`
  (the paper's, Fig. 1b), `bunny` and `dragon`, which `make data` fetches;
- `"embedded:snowman"`: a shape built here from trimesh primitives, which needs no
  download (a stand-in when the real meshes are absent);
- a path to the user's own OBJ, PLY, OFF or STL file.

A mesh with a non-finite vertex or a flat one (no volume) is refused; an open one (not
watertight) is used with a warning. Every mesh is normalised the same way: its bounding
box is centred at the origin and scaled so that its longest side spans [-0.9, 0.9];
fields are fitted on the cube [-1, 1]³ (the paper's code evaluates on that cube), which
leaves a margin of empty space around the shape. Inside/outside is the generalized
winding number (Jacobson et al. 2013, through libigl) above 1/2, which stays correct for
meshes with small holes or self-overlapping parts, where ray parity tests fail.
"""

import warnings
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import igl
import numpy as np
import trimesh
from skimage.measure import marching_cubes

from pnf.data.sources import (FETCH_HINT, REMOTES, DataSource, data_dir, register, register_kind, resolve,
                              user_source)

PAPER_MESH = "mesh:armadillo"
EMBEDDED_MESH = "embedded:snowman"
HALF_EXTENT = 0.9  # the normalised mesh's longest side spans [-HALF_EXTENT, HALF_EXTENT]
STANFORD_MESHES = {  # name: what it is
    "armadillo": "the paper's Armadillo (Stanford 3D Scanning Repository, a 50k-vertex watertight decimation; "
                 "the paper may have used another resolution of the scan)",
    "bunny": "the Stanford Bunny (a 35k-vertex watertight decimation)",
    "dragon": "the Stanford Dragon (a 10k-vertex watertight decimation)",
}


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh: vertices `[V, 3]` float64, faces `[F, 3]` int64 indices."""

    vertices: np.ndarray
    faces: np.ndarray
    source: str

    def trimesh(self) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def normalise(vertices: np.ndarray) -> np.ndarray:
    """Centre the bounding box of `vertices` `[V, 3]` at the origin and scale it
    uniformly so its longest side spans [-HALF_EXTENT, HALF_EXTENT]."""
    low, high = vertices.min(0), vertices.max(0)
    half = (high - low).max() / 2
    return (vertices - (low + high) / 2) * (HALF_EXTENT / half)


def winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalized winding number `[N]` of `points` `[N, 3]` with respect to the
    triangle soup (vertices `[V, 3]`, faces `[F, 3]`): ≈ 1 inside, ≈ 0 outside."""
    vertices, points = (np.ascontiguousarray(array, dtype=np.float64) for array in (vertices, points))
    return igl.fast_winding_number(vertices, np.ascontiguousarray(faces, dtype=np.int64), points)


def inside(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """Whether each of `points` `[N, 3]` lies inside `mesh`: bool `[N]`. The winding
    number's magnitude is used, so a mesh with inward-facing triangles works too."""
    return np.abs(winding_number(mesh.vertices, mesh.faces, points)) > 0.5


def cube_grid(resolution: int) -> np.ndarray:
    """Points of a regular `resolution`³ grid spanning [-1, 1]³, `[R³, 3]`, in
    (x, y, z) 'ij' order: point (i, j, k) is row `(i·R + j)·R + k`."""
    axis = np.linspace(-1.0, 1.0, resolution)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def load_mesh(source: str, folder: Path | None = None) -> Mesh:
    """Load `source` (see the module docstring), normalised into [-0.9, 0.9]³."""
    return _load_cached(source, data_dir(folder))


@lru_cache(maxsize=8)
def _load_cached(source: str, folder: Path) -> Mesh:
    vertices, faces = resolve(source, "mesh").load(folder, None)
    return Mesh(normalise(vertices), faces, source)


def _read_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices `[V, 3]` (scaled by a power of two, the longest side in [0.5, 1)) and triangle
    faces `[F, 3]` of an OBJ/PLY/OFF/STL file, duplicate vertices merged. Refuses non-finite
    vertices and flat meshes (no volume); warns when the mesh is open."""
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many kinds on unreadable input
        raise ValueError(f"{path}: not a readable mesh ({type(error).__name__}: {error})") from None
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(faces) == 0:
        raise ValueError(f"{path}: not a triangle mesh (no faces found)")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    bad = int((~np.isfinite(vertices)).any(axis=1).sum())
    if bad:
        raise ValueError(f"{path}: {bad} of {len(vertices)} vertices are not finite (NaN or inf); "
                         "a mesh needs finite coordinates")
    extent = float(np.ptp(vertices, axis=0).max())
    if extent == 0:
        raise ValueError(f"{path}: all its vertices are the same point; occupancy needs a solid")
    # Scaled exactly (by a power of two) to a longest side in [0.5, 1), so that merging
    # duplicates (trimesh's absolute tolerance, 1e-8) and the volume work in any unit.
    vertices = np.ldexp(vertices, -np.frexp(extent)[1])
    shape = trimesh.Trimesh(vertices, faces)  # duplicate vertices merged: seams are not holes
    spread = np.linalg.svd(shape.vertices - shape.vertices.mean(0), compute_uv=False)  # along its 3 main axes
    if spread[-1] <= 1e-6 * spread[0] or (shape.is_watertight and abs(shape.volume) <= 1e-9 * spread[0] ** 3):
        raise ValueError(f"{path}: a flat mesh (its vertices lie in one plane, or it encloses no volume); "
                         "occupancy needs a solid")
    if not shape.is_watertight:
        warnings.warn(f"{path}: the mesh is open (not watertight); inside/outside is the generalized winding "
                      "number, which tolerates small holes, but labels near large openings are unreliable",
                      stacklevel=2)
    return np.asarray(shape.vertices, dtype=np.float64), np.asarray(shape.faces, dtype=np.int64)


def _load_stanford(name: str, folder: Path, resolution: int | None) -> tuple[np.ndarray, np.ndarray]:
    path = folder / "meshes" / f"{name}.obj"
    if not path.exists():
        raise FileNotFoundError(f"mesh:{name}: mesh file {path} does not exist; {FETCH_HINT}")
    return _read_file(path)


def _snowman(resolution: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A closed shape with some detail, built without a network: overlapping spheres,
    a torus scarf, capsule arms, a cone nose and cubic buttons facing -z (like the
    Armadillo) and a cylinder hat, merged into one
    surface by marching cubes of the winding number of their union (level 1/2)."""
    create, rotation, x_axis = trimesh.creation, trimesh.transformations.rotation_matrix, [1, 0, 0]
    parts = [
        create.icosphere(4, radius=0.50).apply_translation([0, -0.45, 0]),
        create.icosphere(4, radius=0.36).apply_translation([0, 0.25, 0]),
        create.icosphere(3, radius=0.24).apply_translation([0, 0.72, 0]),
        create.torus(0.30, 0.06).apply_transform(rotation(np.pi / 2, x_axis)).apply_translation([0, 0.52, 0]),
        create.capsule(1.3, 0.05).apply_transform(rotation(np.pi / 2, [0, 1, 0]) @ rotation(0.5, x_axis))
        .apply_translation([0, 0.3, 0]),
        create.cone(0.06, 0.25).apply_transform(rotation(np.pi, x_axis)).apply_translation([0, 0.72, -0.2]),
        create.cylinder(0.17, 0.28).apply_transform(rotation(np.pi / 2, x_axis)).apply_translation([0, 1.0, 0]),
        create.box([0.1, 0.1, 0.1]).apply_translation([0.1, 0.1, -0.33]),
        create.box([0.1, 0.1, 0.1]).apply_translation([-0.1, 0.1, -0.33]),
    ]
    union = trimesh.util.concatenate(parts)
    low, high = union.bounds
    pad = 0.05 * (high - low).max()
    axes = [np.linspace(low[d] - pad, high[d] + pad, resolution) for d in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    winding = np.clip(winding_number(union.vertices, union.faces, points), 0, 1).reshape((resolution,) * 3)
    spacing = tuple(axis[1] - axis[0] for axis in axes)
    vertices, faces, _, _ = marching_cubes(winding, 0.5, spacing=spacing)
    vertices = vertices + np.array([axis[0] for axis in axes])
    if trimesh.Trimesh(vertices, faces, process=False).volume < 0:  # orient outwards
        faces = faces[:, ::-1]
    return vertices, np.ascontiguousarray(faces, dtype=np.int64)


def _register_sources() -> None:
    for name, about in STANFORD_MESHES.items():
        path = f"meshes/{name}.obj"
        register(DataSource(f"mesh:{name}", "mesh", partial(_load_stanford, name), about, paper=name == "armadillo",
                            remotes=(REMOTES[path],), files=(path,)))
    register(DataSource(EMBEDDED_MESH, "mesh", lambda folder, resolution: _snowman(),
                        "a snowman built from trimesh primitives", revision="marching cubes on a 64³ grid"))
    register_kind("mesh", partial(user_source, kind="mesh", read=_read_file), PAPER_MESH, EMBEDDED_MESH)


_register_sources()
