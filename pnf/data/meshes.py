"""Meshes for 3D binary occupancy, and their inside/outside labels.

A source is a string:
- `"mesh:<name>"`: `meshes/<name>.obj` in the data folder (the paper's Armadillo is
  `mesh:armadillo`; `make data` fetches it, with the Bunny and the Dragon);
- `"embedded:snowman"`: a shape built here from trimesh primitives, which needs no
  download (a stand-in when the real meshes are absent);
- a path to an OBJ, PLY or OFF file.

Every mesh is normalised the same way: its bounding box is centred at the origin and
scaled so that its longest side spans [-0.9, 0.9]; fields are fitted on the cube
[-1, 1]³ (the paper's code evaluates on that cube), which leaves a margin of empty
space around the shape. Inside/outside is the generalized winding number (Jacobson et
al. 2013, through libigl) above 1/2, which stays correct for meshes with small holes
or self-overlapping parts, where ray parity tests fail.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import igl
import numpy as np
import trimesh
from skimage.measure import marching_cubes

from pnf.data import FETCH_HINT, data_dir

PAPER_MESH = "mesh:armadillo"
EMBEDDED_MESH = "embedded:snowman"
HALF_EXTENT = 0.9  # the normalised mesh's longest side spans [-HALF_EXTENT, HALF_EXTENT]


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
    return igl.fast_winding_number(
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
        np.ascontiguousarray(points, dtype=np.float64),
    )


def inside(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """Whether each of `points` `[N, 3]` lies inside `mesh`: bool `[N]`. The winding
    number's magnitude is used, so a mesh with inward-facing triangles works too."""
    return np.abs(winding_number(mesh.vertices, mesh.faces, points)) > 0.5


def cube_grid(resolution: int) -> np.ndarray:
    """Points of a regular `resolution`³ grid spanning [-1, 1]³, `[R³, 3]`, in
    (x, y, z) 'ij' order: point (i, j, k) is row `(i·R + j)·R + k`."""
    axis = np.linspace(-1.0, 1.0, resolution)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def default_mesh_source(folder: Path | None = None) -> str:
    """The paper's Armadillo when it is in the data folder, else the embedded shape."""
    folder = Path(folder) if folder else data_dir()
    return PAPER_MESH if (folder / "meshes" / "armadillo.obj").exists() else EMBEDDED_MESH


def load_mesh(source: str, folder: Path | None = None) -> Mesh:
    """Load `source` (see the module docstring), normalised into [-0.9, 0.9]³."""
    folder = Path(folder) if folder else data_dir()
    return _load_cached(source, folder)


@lru_cache(maxsize=8)
def _load_cached(source: str, folder: Path) -> Mesh:
    if source.startswith("mesh:"):
        path = folder / "meshes" / f"{source.split(':', 1)[1]}.obj"
        if not path.exists():
            raise FileNotFoundError(f"{source}: mesh file {path} does not exist; {FETCH_HINT}")
        vertices, faces = _read_file(path)
    elif source.startswith("embedded:"):
        vertices, faces = _embedded(source.split(":", 1)[1])
    else:
        vertices, faces = _read_file(Path(source))
    return Mesh(normalise(vertices), faces, source)


def _read_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices `[V, 3]` and triangle faces `[F, 3]` of an OBJ/PLY/OFF file."""
    if not path.exists():
        raise FileNotFoundError(f"mesh file {path} does not exist; {FETCH_HINT}")
    try:
        loaded = trimesh.load(path, force="mesh")
    except Exception as error:  # trimesh raises many kinds on unreadable input
        raise ValueError(f"{path}: not a readable mesh ({type(error).__name__}: {error})") from None
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(faces) == 0:
        raise ValueError(f"{path}: not a triangle mesh (no faces found)")
    return np.asarray(loaded.vertices, dtype=np.float64), faces


def _embedded(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name != "snowman":
        raise ValueError(f"no embedded mesh {name!r}; 'snowman' is the one there is")
    return _snowman()


def _snowman(resolution: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A closed shape with some detail, built without a network: overlapping spheres,
    a torus scarf, capsule arms, a cone nose and cubic buttons facing -z (like the
    Armadillo) and a cylinder hat, merged into one
    surface by marching cubes of the winding number of their union (level 1/2)."""
    parts = [
        trimesh.creation.icosphere(4, radius=0.50).apply_translation([0, -0.45, 0]),
        trimesh.creation.icosphere(4, radius=0.36).apply_translation([0, 0.25, 0]),
        trimesh.creation.icosphere(3, radius=0.24).apply_translation([0, 0.72, 0]),
        trimesh.creation.torus(0.30, 0.06).apply_transform(_rotation_x(np.pi / 2)).apply_translation([0, 0.52, 0]),
        trimesh.creation.capsule(1.3, 0.05).apply_transform(_rotation_y(np.pi / 2) @ _rotation_x(0.5))
        .apply_translation([0, 0.3, 0]),
        trimesh.creation.cone(0.06, 0.25).apply_transform(_rotation_x(np.pi)).apply_translation([0, 0.72, -0.2]),
        trimesh.creation.cylinder(0.17, 0.28).apply_transform(_rotation_x(np.pi / 2)).apply_translation([0, 1.0, 0]),
        trimesh.creation.box([0.1, 0.1, 0.1]).apply_translation([0.1, 0.1, -0.33]),
        trimesh.creation.box([0.1, 0.1, 0.1]).apply_translation([-0.1, 0.1, -0.33]),
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


def _rotation_x(angle: float) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, [1, 0, 0])


def _rotation_y(angle: float) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, [0, 1, 0])


def describe_source(source: str) -> str:
    """One line for a report: what the mesh is, and whether it is the paper's."""
    if source == PAPER_MESH:
        return ("the paper's Armadillo (Stanford 3D Scanning Repository, a 50k-vertex watertight decimation; "
                "the paper may have used another resolution of the scan)")
    if source.startswith("mesh:"):
        return f"the Stanford mesh `{source.split(':', 1)[1]}` from the data folder"
    if source.startswith("embedded:"):
        return ("**embedded default shape** (a snowman built from trimesh primitives): the paper's Armadillo was "
                f"not found in the data folder ({FETCH_HINT}); numbers are not comparable to the paper's in "
                "absolute terms, only the orderings are")
    return f"user-supplied mesh `{source}`"
