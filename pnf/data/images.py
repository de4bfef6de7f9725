"""Images for 2D fitting, from three kinds of source behind one function.

A source is a string:
- `"div2k:<split>:<index>"`: Tancik et al.'s DIV2K subset, from `images/data_div2k.npz`
  (keys `train_data`/`test_data`, uint8 [16, 512, 512, 3]) or, failing that, from
  `images/div2k_subset/<split>_data/image_<index>.jpg` in the data folder. The paper's
  lion (Fig. 1) is `div2k:test:14`.
- `"skimage:<name>"`: an image embedded in scikit-image (e.g. `skimage:astronaut`),
  which needs no download.
- a path to a PNG/JPEG file.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

from pnf.data import FETCH_HINT, data_dir

PAPER_IMAGE = "div2k:test:14"
EMBEDDED_IMAGE = "skimage:astronaut"


@dataclass
class Image:
    """An RGB image as a field's training data.

    pixels: [H, W, 3] float32 in [0, 1]; coords: [H*W, 2] in [-1, 1], (row, column)
    order as in the paper's code; colors: [H*W, 3], row-major like coords.
    """

    pixels: torch.Tensor
    source: str

    @property
    def coords(self) -> torch.Tensor:
        return pixel_grid(*self.pixels.shape[:2])

    @property
    def colors(self) -> torch.Tensor:
        return self.pixels.reshape(-1, 3)


def pixel_grid(height: int, width: int) -> torch.Tensor:
    """Normalised pixel centres `[H*W, 2]`: row i -> 2i/(H-1) - 1, column j likewise."""
    rows = torch.linspace(-1.0, 1.0, height)
    cols = torch.linspace(-1.0, 1.0, width)
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)


def default_image_source(folder: Path | None = None) -> str:
    """The paper's lion when it is in the data folder, else the embedded astronaut."""
    folder = Path(folder) if folder else data_dir()
    return PAPER_IMAGE if _div2k_location(folder, "test", 14) else EMBEDDED_IMAGE


def load_image(source: str, resolution: int | None = None, folder: Path | None = None) -> Image:
    """Load `source` (see the module docstring) as RGB in [0, 1], resized bilinearly to
    `resolution`² as the paper's code does (`None` keeps the original size)."""
    folder = Path(folder) if folder else data_dir()
    if source.startswith("div2k:"):
        raw = _load_div2k(source, folder)
    elif source.startswith("skimage:"):
        raw = _load_skimage(source.split(":", 1)[1])
    else:
        raw = _load_file(Path(source))
    pixels = torch.from_numpy(_to_rgb(raw, source))
    if resolution is not None and pixels.shape[:2] != (resolution, resolution):
        chw = pixels.permute(2, 0, 1)[None]
        chw = F.interpolate(chw, size=(resolution, resolution), mode="bilinear")
        pixels = chw[0].permute(1, 2, 0).contiguous()
    return Image(pixels=pixels, source=source)


def _to_rgb(raw: np.ndarray, source: str) -> np.ndarray:
    """uint8 or float image -> float32 [H, W, 3] in [0, 1]."""
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=-1)
    if raw.ndim != 3 or raw.shape[-1] not in (3, 4):
        raise ValueError(f"{source}: expected an RGB image, got an array of shape {raw.shape}")
    raw = raw[..., :3]
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / 255.0
    return np.clip(raw.astype(np.float32), 0.0, 1.0)


def _div2k_location(folder: Path, split: str, index: int) -> Path | None:
    npz = folder / "images" / "data_div2k.npz"
    if npz.exists():
        return npz
    jpg = folder / "images" / "div2k_subset" / f"{split}_data" / f"image_{index:03d}.jpg"
    return jpg if jpg.exists() else None


def _load_div2k(source: str, folder: Path) -> np.ndarray:
    try:
        _, split, index = source.split(":")
        index = int(index)
    except ValueError:
        raise ValueError(f"bad DIV2K source {source!r}; expected 'div2k:<train|test>:<index>'") from None
    if split not in ("train", "test"):
        raise ValueError(f"bad DIV2K split {split!r} in {source!r}; 'train' or 'test'")
    location = _div2k_location(folder, split, index)
    if location is None:
        raise FileNotFoundError(
            f"{source}: neither {folder / 'images' / 'data_div2k.npz'} nor "
            f"{folder / 'images' / 'div2k_subset' / f'{split}_data' / f'image_{index:03d}.jpg'} "
            f"exists; {FETCH_HINT}"
        )
    if location.suffix == ".npz":
        return _npz_image(location, split, index)
    return _load_file(location)


def _npz_image(path: Path, split: str, index: int) -> np.ndarray:
    try:
        with np.load(path) as archive:
            images = archive[f"{split}_data"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: not a readable DIV2K npz with key '{split}_data' ({error}); {FETCH_HINT}") from None
    if not 0 <= index < len(images):
        raise IndexError(f"{path}: '{split}_data' has {len(images)} images, no index {index}")
    return images[index]


def _load_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(f"image file {path} does not exist; {FETCH_HINT}")
    try:
        with PILImage.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error}); {FETCH_HINT}") from None


def _load_skimage(name: str) -> np.ndarray:
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError(f"scikit-image has no embedded image {name!r}")
    return loader()


def describe_source(source: str) -> str:
    """One line for a report: what the image is, and whether it is the paper's."""
    if source == PAPER_IMAGE:
        return ("the paper's lion (Tancik et al.'s DIV2K subset, `test_data[14]`); from the JPEG copy "
                "it differs slightly from the npz, so absolute PSNRs may differ a little from the paper's")
    if source.startswith("skimage:"):
        return (f"**embedded default data** (scikit-image's `{source.split(':', 1)[1]}`): the paper's image "
                f"was not found in the data folder ({FETCH_HINT}); numbers are not comparable to the paper's "
                "in absolute terms, only the orderings are")
    return f"user-supplied image `{source}`"
