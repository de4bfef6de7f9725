"""Images for 2D fitting, and the image sources of the registry (`pnf.data.sources`):
- `"div2k:<split>:<index>"` (index 0–15): Tancik et al.'s DIV2K subset, from
  `images/data_div2k.npz` (keys `train_data`/`test_data`, uint8 [16, 512, 512, 3]) or, for
  the test split, `images/div2k_subset/test_data/image_<index>.jpg`; the paper's lion
  (Fig. 1) is `div2k:test:14`;
- `"skimage:<name>"`: photographs embedded in scikit-image, no download needed;
- a path to the user's own image file, turned upright as its EXIF orientation says; of a
  file of several frames (an animation, a multi-page TIFF) the first, with a warning.

An image that is not square is centre-cropped to the square of its shorter side (never
squashed). Pixels are scaled by their type's true range (8- or 16-bit, greyscale or
colour), dividing by 255 or 65535 (`skimage.util.img_as_float32` multiplies by the
reciprocal, which differs in the last bit for half the 8-bit values); an alpha channel is
composited on white, with a warning (the NeRF scenes are treated alike).
"""

import warnings
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from PIL import ImageOps

from pnf.data.sources import (FETCH_HINT, REMOTES, DataSource, data_dir, register, register_kind, resolve,
                              user_source)

PAPER_IMAGE = "div2k:test:14"
EMBEDDED_IMAGE = "skimage:astronaut"
DIV2K_COUNT = 16
DIV2K_NPZ = "images/data_div2k.npz"
SKIMAGE_PHOTOS = {"astronaut": "512×512", "chelsea": "300×451", "coffee": "400×600", "rocket": "427×640",
                  "camera": "512×512, greyscale"}
IMAGE_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


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


def load_image(source: str, resolution: int | None = None, folder: Path | None = None) -> Image:
    """Load `source` (see the module docstring) as RGB in [0, 1], centre-cropped to a square
    and resized bilinearly to `resolution`² as the paper's code does (`None` keeps the
    cropped size)."""
    raw = centre_square(resolve(source, "image").load(data_dir(folder), resolution))
    if raw.ndim == 3 and raw.shape[-1] in (2, 4) and (raw[..., -1] < IMAGE_RANGES.get(raw.dtype, 1.0)).any():
        warnings.warn(f"{source}: the image has transparent pixels; they are composited on white", stacklevel=2)
    pixels = torch.from_numpy(to_rgb(raw, source))
    if resolution is not None and pixels.shape[:2] != (resolution, resolution):
        chw = pixels.permute(2, 0, 1)[None]
        chw = F.interpolate(chw, size=(resolution, resolution), mode="bilinear")
        pixels = chw[0].permute(1, 2, 0).contiguous()
    return Image(pixels=pixels, source=source)


def centre_square(pixels: np.ndarray) -> np.ndarray:
    """The centred square of `pixels` `[H, W, ...]` whose side is the shorter of H and W."""
    side = min(pixels.shape[:2])
    top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
    return pixels[top : top + side, left : left + side]


def to_rgb(raw: np.ndarray, name: str) -> np.ndarray:
    """Pixels `[H, W]` (grey) or `[..., C]` with C = 1 (grey), 2 (grey, alpha), 3 (RGB) or 4
    (RGBA), uint8, uint16 or float in [0, 1] -> float32 RGB `[..., 3]` in [0, 1], alpha
    composited on white."""
    raw = raw[..., None] if raw.ndim == 2 else raw
    if raw.ndim < 3 or raw.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{name}: expected an image of 1 to 4 channels, got an array of shape {raw.shape}")
    if raw.dtype in IMAGE_RANGES:
        pixels = raw.astype(np.float32) / IMAGE_RANGES[raw.dtype]
    elif raw.dtype.kind == "f" and np.isfinite(raw).all() and 0 <= raw.min() and raw.max() <= 1:
        pixels = raw.astype(np.float32)
    else:
        raise ValueError(f"{name}: pixels of type {raw.dtype} (range {raw.min()}..{raw.max()}); "
                         "expected uint8, uint16 or floats in [0, 1]")
    colour = pixels[..., :3] if raw.shape[-1] >= 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    if raw.shape[-1] in (2, 4):
        alpha = pixels[..., -1:]
        colour = colour * alpha + (1.0 - alpha)
    return np.ascontiguousarray(colour)


def read_image_file(path: Path, upright: bool = False) -> np.ndarray:
    """Pixels of a PNG/JPEG/... file: uint8 `[H, W, 3]` (RGB) or `[H, W, 4]` (with alpha),
    or uint16 `[H, W]` for a 16-bit greyscale image; of a file of several frames, the first
    (with a warning). `upright`: turned as its EXIF orientation says (photographs; scene
    views are read as stored, as NeRF's loaders read them)."""
    if not path.exists():
        raise FileNotFoundError(f"image file {path} does not exist; {FETCH_HINT}")
    try:
        with PILImage.open(path) as image:
            if getattr(image, "n_frames", 1) > 1:
                warnings.warn(f"{path}: the file holds {image.n_frames} frames (an animation or a multi-page "
                              "image); only the first is used", stacklevel=2)
            if upright:
                image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I"):  # 16-bit greyscale, which Pillow may widen to 32 bits ("I")
                pixels = np.asarray(image)
                if pixels.min() < 0 or pixels.max() > 65535:
                    raise ValueError(f"{path}: integer pixels in {pixels.min()}..{pixels.max()}; expected 8 or 16 bits")
                return pixels.astype(np.uint16)
            alpha = "A" in image.mode or "transparency" in image.info
            return np.asarray(image.convert("RGBA" if alpha else "RGB"))
    except (OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error}); {FETCH_HINT}") from None


def read_npz(path: Path, keys: tuple[str, ...], expected: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of the npz file at `path`, read without unpickling anything; a
    ValueError naming the file and what was `expected` when it is not an npz of those arrays."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        archive = None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an npz archive; expected {expected}")
    with archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(f"{path}: no array {', '.join(missing)} (it has {', '.join(archive.files) or 'none'}); "
                             f"expected {expected}")
        try:
            return {key: archive[key] for key in keys}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            raise ValueError(f"{path}: its arrays are truncated, corrupt or objects; expected {expected}") from None


def _load_div2k(split: str, index: int, folder: Path, resolution: int | None) -> np.ndarray:
    if (folder / DIV2K_NPZ).exists():
        expected = (f"Tancik et al.'s DIV2K npz, uint8 arrays [{DIV2K_COUNT}, 512, 512, 3] under train_data and "
                    f"test_data; {FETCH_HINT}")
        images = read_npz(folder / DIV2K_NPZ, (f"{split}_data",), expected)[f"{split}_data"]
        if images.ndim != 4 or not index < len(images):
            raise ValueError(f"{folder / DIV2K_NPZ}: {split}_data has shape {images.shape}, no image {index}; "
                             f"expected {expected}")
        return images[index]
    jpeg = folder / _div2k_jpeg(split, index)
    if not jpeg.exists():
        raise FileNotFoundError(f"div2k:{split}:{index}: neither {folder / DIV2K_NPZ} nor {jpeg} exists; {FETCH_HINT}")
    return read_image_file(jpeg)


def _div2k_jpeg(split: str, index: int) -> str:
    return f"images/div2k_subset/{split}_data/image_{index:03d}.jpg"


def _load_skimage(name: str, folder: Path, resolution: int | None) -> np.ndarray:
    return getattr(skimage.data, name)()


def _register_sources() -> None:
    for index in range(DIV2K_COUNT):
        jpeg = _div2k_jpeg("test", index)
        register(DataSource(
            f"div2k:test:{index}", "image", partial(_load_div2k, "test", index),
            "the paper's lion (Tancik et al.'s DIV2K subset, `test_data[14]`); from the JPEG copy it differs "
            "slightly from the npz, so absolute PSNRs may differ a little from the paper's" if index == 14 else
            f"DIV2K test image {index} (Tancik et al.'s subset, `test_data[{index}]`, 512×512)",
            paper=index == 14, files=(DIV2K_NPZ, jpeg),
            remotes=(REMOTES[jpeg],)))
        register(DataSource(f"div2k:train:{index}", "image", partial(_load_div2k, "train", index),
                            f"DIV2K training image {index} (Tancik et al.'s subset, `train_data[{index}]`)",
                            files=(DIV2K_NPZ,)))
    for name, size in SKIMAGE_PHOTOS.items():
        register(DataSource(f"skimage:{name}", "image", partial(_load_skimage, name),
                            f"scikit-image's embedded photograph `{name}` ({size}), centre-cropped to the square "
                            "of its shorter side"))
    register_kind("image", partial(user_source, kind="image", read=partial(read_image_file, upright=True)),
                  PAPER_IMAGE, EMBEDDED_IMAGE)


_register_sources()
