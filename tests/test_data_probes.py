"""Probes of the data layer: each feeds one bad or unusual input and expects a
clear error, a warning, or the correct result, and leaves nothing behind (tmp_path only).

| probe | before | after |
|---|---|---|
| another file at the lion's / Armadillo's path | called the paper's | warning; "a modified copy" |
| 16-bit greyscale PNG | saturated to white | scaled by 65535 |
| 16-bit RGB, 8-bit greyscale PNG | correct | correct (tested) |
| RGBA PNG with transparent pixels | alpha dropped silently | composited on white, with a warning |
| mesh with a NaN vertex | NaN dropped silently, IoU 0 | refused, naming the count |
| flat mesh (axis-aligned or tilted plane) | trained to IoU 0 | refused: "flat" |
| open mesh | no word | loaded, with a warning "open" |
| PNF_DATA_MIRROR that does not exist | never reported | reported, nothing fetched |
| fetch over a modified copy / from a bad mirror | kept it / rejected | replaced / rejected, nothing left |
| a mesh name where an image is expected | a path error | "is of kind 'mesh', not 'image'" |
| garbage Lego / DIV2K npz, object arrays | numpy's advice to unpickle, no file named | the file, what was expected |
| truncated / keyless transforms_train.json | raw JSONDecodeError / KeyError | the file, what was expected |
| garbage poses_bounds.npy, bounds ≤ 0 | numpy's advice to unpickle / near ≥ far | the file, what was expected |
| closed mesh ×1e12 / ×1e-12 | 7 vertices left / "flat" | the same mesh as ×1 |
| every vertex at one point | "flat" | "all its vertices are the same point" |
| animated (multi-frame) image | first frame, no word | first frame, with a warning |
| EXIF orientation | ignored | applied |
| 2:1 image | squashed to a square | centre-cropped |
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import trimesh
from PIL import Image as PILImage

from pnf.data import describe, is_paper
from pnf.data import fetch as fetch_module
from pnf.data.images import PAPER_IMAGE, load_image, to_rgb
from pnf.data.meshes import PAPER_MESH, load_mesh
from pnf.data.scenes import load_scene
from pnf.data.sources import SOURCES, sha256

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LION = "images/div2k_subset/test_data/image_014.jpg"


def write_png16(pixels: np.ndarray, path: Path) -> None:
    """A 16-bit PNG of uint16 `pixels` `[H, W, C]` (C = 1 grey, 3 RGB), which Pillow cannot write."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, {1: 0, 3: 2}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_another_file_at_the_lions_path_is_called_a_modified_copy(tmp_path):
    (tmp_path / LION).parent.mkdir(parents=True)
    PILImage.new("RGB", (8, 8), "white").save(tmp_path / LION)
    with pytest.warns(UserWarning, match="image_014.jpg differ from the recorded sha256"):
        text = describe(PAPER_IMAGE, tmp_path)
    assert text.startswith("**a modified copy** of the paper's lion") and "not the paper's" in text
    assert not is_paper(PAPER_IMAGE, tmp_path)


@pytest.mark.skipif(not (SHARED / LION).exists(), reason="shared data not present")
def test_the_real_lion_is_the_papers(tmp_path):
    assert is_paper(PAPER_IMAGE, SHARED)
    assert describe(PAPER_IMAGE, SHARED).startswith("the paper's lion")
    assert not is_paper(PAPER_IMAGE, tmp_path)  # absent: not the paper's either


def test_another_mesh_at_the_armadillos_path_is_called_a_modified_copy(tmp_path):
    (tmp_path / "meshes").mkdir()
    trimesh.creation.box().export(tmp_path / "meshes" / "armadillo.obj")
    with pytest.warns(UserWarning, match="armadillo.obj differ from the recorded sha256"):
        assert describe(PAPER_MESH, tmp_path).startswith("**a modified copy** of the paper's Armadillo")
    assert not is_paper(PAPER_MESH, tmp_path)


def test_16_bit_greyscale_png_is_scaled_by_its_range(tmp_path):
    grey = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)
    write_png16(grey[..., None], tmp_path / "grey16.png")
    pixels = load_image(str(tmp_path / "grey16.png")).pixels.numpy()
    np.testing.assert_allclose(pixels, np.repeat(grey[..., None] / 65535.0, 3, axis=-1), rtol=1e-6)


def test_16_bit_rgb_png_keeps_its_range(tmp_path):
    colour = np.array([[[65535, 0, 32768], [1000, 20000, 40000]], [[0, 65535, 1], [7, 8, 9]]], dtype=np.uint16)
    write_png16(colour, tmp_path / "rgb16.png")
    pixels = load_image(str(tmp_path / "rgb16.png")).pixels.numpy()
    np.testing.assert_allclose(pixels, colour / 65535.0, atol=1 / 255)  # Pillow reads it as 8 bits


def test_8_bit_greyscale_png_becomes_three_equal_channels(tmp_path):
    grey = np.array([[0, 51], [204, 255]], dtype=np.uint8)
    PILImage.fromarray(grey).save(tmp_path / "grey.png")
    pixels = load_image(str(tmp_path / "grey.png")).pixels.numpy()
    np.testing.assert_allclose(pixels, np.repeat(grey[..., None] / 255.0, 3, axis=-1), rtol=1e-6)


def test_transparent_pixels_are_composited_on_white_with_a_warning(tmp_path):
    rgba = np.array([[[255, 0, 0, 255], [0, 0, 255, 51]]] * 2, dtype=np.uint8)  # opaque red; blue at alpha 0.2
    PILImage.fromarray(rgba).save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="composited on white"):
        pixels = load_image(str(tmp_path / "rgba.png")).pixels.numpy()
    np.testing.assert_allclose(pixels, [[[1, 0, 0], [0.8, 0.8, 1.0]]] * 2, atol=1e-6)


def test_out_of_range_pixels_are_refused():
    with pytest.raises(ValueError, match="float64 .*expected uint8, uint16 or floats in \\[0, 1\\]"):
        to_rgb(np.full((2, 2, 3), 2.0), "bright")
    with pytest.raises(ValueError, match="int32"):
        to_rgb(np.zeros((2, 2, 3), dtype=np.int32), "ints")


def test_a_non_square_photograph_is_centre_cropped():
    full = skimage.data.chelsea()  # 300 × 451
    pixels = load_image("skimage:chelsea").pixels.numpy()
    assert pixels.shape == (300, 300, 3)
    np.testing.assert_allclose(pixels, full[:, 75:375] / 255.0, rtol=1e-6)
    assert "centre-cropped" in describe("skimage:chelsea")


def _write_obj(path: Path, vertices, faces) -> str:
    lines = [f"v {x} {y} {z}" for x, y, z in vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_mesh_with_a_nan_vertex_is_refused(tmp_path):
    tetrahedron = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, float("nan"))]
    path = _write_obj(tmp_path / "nan.obj", tetrahedron, [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)])
    with pytest.raises(ValueError, match="nan.obj: 1 of 4 vertices are not finite"):
        load_mesh(path)


@pytest.mark.parametrize("tilt", [0.0, 0.3])
def test_a_flat_mesh_is_refused(tmp_path, tilt):
    square = [(0, 0, 0), (1, 0, tilt), (0, 1, 0), (1, 1, tilt)]  # a plane, axis-aligned or tilted
    path = _write_obj(tmp_path / "flat.obj", square, [(0, 1, 2), (1, 3, 2)])
    with pytest.raises(ValueError, match="flat.obj: a flat mesh"):
        load_mesh(path)


def test_an_open_mesh_loads_with_a_warning(tmp_path):
    sphere = trimesh.creation.icosphere(3)
    cap = sphere.triangles_center[:, 2] > 0.9
    path = _write_obj(tmp_path / "open.obj", sphere.vertices, sphere.faces[~cap])
    with pytest.warns(UserWarning, match="open.obj: the mesh is open"):
        mesh = load_mesh(path)
    assert len(mesh.faces) == (~cap).sum()


def test_a_mesh_name_is_not_an_image():
    with pytest.raises(ValueError, match="'mesh:armadillo' is of kind 'mesh', not 'image'; image sources: div2k:test:0…15"):
        load_image("mesh:armadillo")


def test_a_missing_mirror_is_reported_and_nothing_fetched(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PNF_DATA_MIRROR", str(tmp_path / "no-such-mirror"))
    assert fetch_module.main([str(tmp_path / "data")]) == 1
    assert f"PNF_DATA_MIRROR={tmp_path / 'no-such-mirror'}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_fetch_replaces_a_modified_copy_and_rejects_a_bad_mirror(tmp_path):
    remote = SOURCES[PAPER_MESH].remotes[0]
    good, bad, data = tmp_path / "good", tmp_path / "bad", tmp_path / "data"
    for folder in (good, bad, data):
        (folder / "meshes").mkdir(parents=True)
    (bad / remote.path).write_text("v 0 0 0\n")
    (data / remote.path).write_text("a modified copy\n")
    with pytest.raises(ValueError, match="differs from the recorded"):
        fetch_module.fetch(remote, data, bad)
    assert (data / remote.path).read_text() == "a modified copy\n"  # untouched
    if not (SHARED / remote.path).exists():
        pytest.skip("shared data not present")
    assert "replacing a modified copy" in fetch_module.fetch(remote, data, SHARED)
    assert sha256(data / remote.path) == remote.sha256
    assert sorted(p.name for p in (data / "meshes").iterdir()) == ["armadillo.obj"]  # no partial file left


def _assert_no_pickle_advice(error) -> None:
    assert "pickle" not in str(error.value).lower()


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04 truncated zip"])
def test_a_garbage_lego_npz_is_named_with_what_was_expected(tmp_path, content):
    (tmp_path / "nerf" / "lego").mkdir(parents=True)
    (tmp_path / "nerf" / "lego" / "lego_train_100.npz").write_bytes(content)
    with pytest.raises(ValueError, match=r"lego_train_100.npz: not an npz archive; expected images_rgba uint8 "
                                         r"\[V, R, R, 4\], poses \[V, 4, 4\]") as error:
        load_scene("lego", 64, folder=tmp_path)
    _assert_no_pickle_advice(error)


def test_a_lego_npz_of_objects_or_wrong_shapes_is_refused_without_unpickling(tmp_path):
    folder = tmp_path / "nerf" / "lego"
    folder.mkdir(parents=True)
    arrays = {"poses": np.zeros((2, 4, 4)), "focal": 1.0, "near": 2.0, "far": 6.0}
    np.savez(folder / "lego_train_100.npz", images_rgba=np.array([{"payload": 1}], dtype=object), **arrays)
    with pytest.raises(ValueError, match="lego_train_100.npz: its arrays are truncated, corrupt or objects") as error:
        load_scene("lego", 64, folder=tmp_path)
    _assert_no_pickle_advice(error)
    np.savez(folder / "lego_train_100.npz", images_rgba=np.zeros((3, 8, 8, 4), np.uint8), **arrays)
    with pytest.raises(ValueError, match=r"images_rgba \(3, 8, 8, 4\), poses \(2, 4, 4\)"):
        load_scene("lego", 64, folder=tmp_path)
    np.savez(folder / "lego_train_100.npz", poses=arrays["poses"])
    with pytest.raises(ValueError, match="no array images_rgba, focal, near, far \\(it has poses\\)"):
        load_scene("lego", 64, folder=tmp_path)


def test_a_garbage_div2k_npz_is_named_without_pickle_advice(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "data_div2k.npz").write_bytes(b"garbage")
    expected = "data_div2k.npz: not an npz archive; expected Tancik et al.'s DIV2K npz"
    with pytest.raises(ValueError, match=expected) as error:
        load_image("div2k:test:3", folder=tmp_path)
    _assert_no_pickle_advice(error)
    np.savez(tmp_path / "images" / "data_div2k.npz", test_data=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"test_data has shape \(2, 4, 4, 3\), no image 3"):
        load_image("div2k:test:3", folder=tmp_path)


def _blender_folder(tmp_path) -> Path:
    (tmp_path / "train").mkdir()
    PILImage.new("RGB", (4, 4), "white").save(tmp_path / "train" / "r_0.png")
    meta = {"camera_angle_x": 0.69, "frames": [{"file_path": "./train/r_0", "transform_matrix": np.eye(4).tolist()}]}
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    return tmp_path


def test_a_truncated_or_keyless_transforms_json_is_named_with_what_was_expected(tmp_path):
    folder = _blender_folder(tmp_path)
    assert load_scene(str(folder)).images.shape == (1, 4, 4, 3)  # the intact scene loads
    split = folder / "transforms_train.json"
    text = split.read_text()
    split.write_text(text[: len(text) // 2])
    expected = "expected a JSON object with camera_angle_x"
    with pytest.raises(ValueError, match=f"transforms_train.json: unreadable \\(JSONDecodeError: .*\\); {expected}"):
        load_scene(str(folder))
    split.write_text(json.dumps({"camera_angle_x": 0.69}))
    with pytest.raises(ValueError, match=f"transforms_train.json: unreadable \\(no 'frames'\\); {expected}"):
        load_scene(str(folder))
    split.write_text(json.dumps({"camera_angle_x": 0.69, "frames": [{"file_path": "x", "transform_matrix": [1, 2]}]}))
    with pytest.raises(ValueError, match=r"transforms_train.json: camera_angle_x 0.69, 1 frames, transform_matrix "
                                         r"shapes \[\(2,\)\]"):
        load_scene(str(folder))


def test_garbage_poses_bounds_or_bounds_below_zero_are_named(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "poses_bounds.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="poses_bounds.npy: not a readable .npy array; expected LLFF's") as error:
        load_scene(f"llff:{tmp_path}")
    _assert_no_pickle_advice(error)
    np.save(tmp_path / "poses_bounds.npy", np.zeros((2, 15)))
    with pytest.raises(ValueError, match=r"poses_bounds.npy: holds \(2, 15\); expected LLFF's .* \[V, 17\]"):
        load_scene(f"llff:{tmp_path}")
    table = np.zeros((2, 17))
    table[:, 15:] = (-1.0, 0.0)
    np.save(tmp_path / "poses_bounds.npy", table)
    with pytest.raises(ValueError, match="poses_bounds.npy: has non-finite entries or bounds ≤ 0"):
        load_scene(f"llff:{tmp_path}")


@pytest.mark.parametrize("scale", [1e12, 1e-12])
def test_a_closed_mesh_at_any_scale_loads_as_the_same_shape(tmp_path, scale):
    sphere = trimesh.creation.icosphere(2)
    unit = load_mesh(_write_obj(tmp_path / "unit.obj", sphere.vertices, sphere.faces))
    scaled = load_mesh(_write_obj(tmp_path / "scaled.obj", sphere.vertices * scale, sphere.faces))
    assert len(scaled.vertices) == len(unit.vertices) == 162 and np.array_equal(scaled.faces, unit.faces)
    np.testing.assert_allclose(scaled.vertices, unit.vertices, atol=1e-12)


def test_a_mesh_of_one_point_is_refused_with_the_reason(tmp_path):
    path = _write_obj(tmp_path / "point.obj", [(1, 2, 3)] * 4, [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)])
    with pytest.raises(ValueError, match="point.obj: all its vertices are the same point; occupancy needs a solid"):
        load_mesh(path)


def test_a_multi_frame_image_uses_its_first_frame_with_a_warning(tmp_path):
    frames = [PILImage.new("RGB", (4, 4), colour) for colour in ("red", "lime", "blue")]
    frames[0].save(tmp_path / "animated.png", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="animated.png: the file holds 3 frames .*only the first is used"):
        pixels = load_image(str(tmp_path / "animated.png")).pixels.numpy()
    np.testing.assert_array_equal(pixels, np.broadcast_to([1.0, 0.0, 0.0], (4, 4, 3)))


def test_exif_orientation_is_applied(tmp_path):
    stored = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10  # 2 rows, 3 columns
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    PILImage.fromarray(stored).save(tmp_path / "rotated.png", exif=exif)
    pixels = load_image(str(tmp_path / "rotated.png")).pixels.numpy()  # 3 × 2 upright, cropped to 2 × 2
    upright = np.rot90(stored, k=-1)
    np.testing.assert_array_equal(pixels, upright[:2] / np.float32(255))


def test_a_two_to_one_image_is_centre_cropped_not_squashed(tmp_path):
    wide = np.random.default_rng(0).integers(0, 256, size=(8, 16, 3), dtype=np.uint8)
    PILImage.fromarray(wide).save(tmp_path / "wide.png")
    pixels = load_image(str(tmp_path / "wide.png")).pixels.numpy()
    np.testing.assert_array_equal(pixels, wide[:, 4:12] / np.float32(255))
    halved = load_image(str(tmp_path / "wide.png"), resolution=4).pixels.numpy()
    np.testing.assert_allclose(halved[0, 0], wide[:2, 4:6].mean((0, 1)) / 255.0, rtol=1e-5)  # 2×2 blocks of the crop


def test_a_lego_npz_whose_near_is_beyond_its_far_is_refused(tmp_path):
    folder = tmp_path / "nerf" / "lego"
    folder.mkdir(parents=True)
    np.savez(folder / "lego_train_100.npz", images_rgba=np.full((2, 4, 4, 4), 255, np.uint8),
             poses=np.tile(np.eye(4), (2, 1, 1)), focal=5.0, near=6.0, far=2.0)
    with pytest.raises(ValueError, match="scene 'lego': its depths run from near 6.0 to far 2.0; a scene needs "
                                         "0 < near < far"):
        load_scene("lego", 100, folder=tmp_path)
