"""Image data and metrics."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pnf.data import default_source
from pnf.data.images import EMBEDDED_IMAGE, PAPER_IMAGE, load_image, pixel_grid
from pnf.metrics import psnr

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_psnr_of_known_pairs():
    target = np.zeros((4, 4, 3))
    assert psnr(target + 0.1, target) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(target + 0.01, target) == pytest.approx(40.0)
    noisy = target.copy()
    noisy[0, 0, 0] = 1.0  # MSE = 1/48
    assert psnr(noisy, target) == pytest.approx(10 * np.log10(48))
    assert psnr(target, target) == float("inf")


def test_pixel_grid_corners_and_order():
    grid = pixel_grid(3, 5)
    assert grid.shape == (15, 2)
    torch.testing.assert_close(grid[0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(grid[4], torch.tensor([-1.0, 1.0]))  # row-major: column varies fastest
    torch.testing.assert_close(grid[-1], torch.tensor([1.0, 1.0]))


@pytest.fixture
def tiny_div2k(tmp_path):
    """A data folder with a 2-image DIV2K-style npz of 8x8 uint8 images."""
    rng = np.random.default_rng(0)
    test = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    train = rng.integers(0, 256, size=(1, 8, 8, 3), dtype=np.uint8)
    (tmp_path / "images").mkdir()
    np.savez(tmp_path / "images" / "data_div2k.npz", test_data=test, train_data=train)
    return tmp_path, test


def test_loads_div2k_npz_divided_by_255(tiny_div2k):
    folder, test = tiny_div2k
    image = load_image("div2k:test:1", folder=folder)
    np.testing.assert_allclose(image.pixels.numpy(), test[1] / 255.0, rtol=1e-6)
    assert image.coords.shape == (64, 2) and image.colors.shape == (64, 3)
    torch.testing.assert_close(image.colors[9], image.pixels[1, 1])


def test_resizes_bilinearly(tiny_div2k):
    folder, test = tiny_div2k
    image = load_image("div2k:test:0", resolution=4, folder=folder)
    assert image.pixels.shape == (4, 4, 3)
    # a factor-2 bilinear downsample (align_corners=False) averages 2x2 blocks
    np.testing.assert_allclose(image.pixels[0, 0].numpy(), test[0, :2, :2].mean((0, 1)) / 255.0, rtol=1e-5)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="image_014.jpg.*make data"):
        load_image(PAPER_IMAGE, folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        load_image(str(tmp_path / "nothing.png"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image(str(broken))
    with pytest.raises(FileNotFoundError, match="no registered image has that name .*div2k:test:0…15"):
        load_image("div2k:val:3", folder=tmp_path)


def test_falls_back_to_embedded_image_when_data_is_absent(tmp_path):
    assert default_source("image", tmp_path) == EMBEDDED_IMAGE
    image = load_image(EMBEDDED_IMAGE, resolution=32)
    assert image.pixels.shape == (32, 32, 3) and 0 <= image.pixels.min() and image.pixels.max() <= 1


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not present")
def test_the_paper_lion_loads_at_256():
    assert default_source("image", SHARED) == PAPER_IMAGE
    image = load_image(PAPER_IMAGE, resolution=256, folder=SHARED)
    assert image.pixels.shape == (256, 256, 3)
    assert 0.2 < float(image.pixels.mean()) < 0.8
