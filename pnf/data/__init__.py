"""Data: images, meshes and scenes by name from one registry (`pnf.data.sources`), with
loaders that fall back to embedded data when the real files are absent."""

from pnf.data import images, meshes, scenes  # noqa: F401  (each registers its sources)
from pnf.data.sources import FETCH_HINT, data_dir, default_source, describe, is_paper, use_data_dir  # noqa: F401
