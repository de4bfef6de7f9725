"""`python -m pnf fit` on files of one's own, through the CLI entry point in-process."""

import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from scene_writers import write_blender

from pnf.__main__ import main
from pnf.data.images import load_image
from pnf.data.scenes import load_scene
from pnf.metrics import psnr

TINY = ["--profile", "tiny", "--seed", "0"]
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two line colours


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def photo(tmp_path):
    """A smooth 20×20 colour image (a gradient with a bright disc) as a PNG."""
    rows, cols = np.mgrid[0:20, 0:20] / 19.0
    disc = ((rows - 0.5) ** 2 + (cols - 0.4) ** 2 < 0.1).astype(float)
    pixels = np.stack([rows, cols, 0.5 * disc + 0.3], axis=-1)
    path = tmp_path / "photo.png"
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)
    return path


def colours_in(path) -> set:
    return set(map(tuple, np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).tolist()))


def test_fit_an_image_writes_its_reconstruction_curves_and_metrics(photo, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["fit", str(photo), "--field", "sine", "--optimizer", "esgd", "--epochs", "2", "--resolution", "8",
                 "--batch-size", "16", "--out", str(out), *TINY])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "metrics.json", "reconstruction_esgd.png"]
    record = json.loads((out / "metrics.json").read_text())
    (run,) = record["runs"]
    assert record["input"] == str(photo) and record["metric"] == "psnr"
    assert run["status"] == "ok" and run["seconds"] > 0
    assert run["config"]["resolution"] == 8 and run["config"]["batch_size"] == 16 and run["config"]["epochs"] == 2
    assert run["eval_epoch"][0] == 0 and run["eval_epoch"][-1] == 2 and len(run["train_loss"]) == 2
    assert len(run["metrics"]["psnr"]) == len(run["eval_epoch"])
    assert run["final"]["psnr"] == run["metrics"]["psnr"][-1]
    # the PNG is the fitted image: its PSNR against the resized photo is the reported one (8-bit rounding aside)
    written = np.asarray(Image.open(out / "reconstruction_esgd.png"), dtype=np.float32) / 255
    assert written.shape == (8, 8, 3)
    assert psnr(written, load_image(str(photo), 8).pixels.numpy()) == pytest.approx(run["final"]["psnr"], abs=0.3)
    assert BLUE in colours_in(out / "curves.png") and ORANGE not in colours_in(out / "curves.png")
    assert "esgd: psnr" in capsys.readouterr().out


def test_compare_trains_both_optimizers_into_one_plot(photo, tmp_path):
    out = tmp_path / "results"
    code = main(["fit", str(photo), "--compare", "esgd,adam", "--epochs", "2", "--resolution", "8",
                 "--batch-size", "32", "--out", str(out), *TINY])
    assert code == 0
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    assert [run["optimizer"] for run in runs] == ["esgd", "adam"]
    assert runs[0]["train_loss"] != runs[1]["train_loss"]
    assert (out / "reconstruction_esgd.png").exists() and (out / "reconstruction_adam.png").exists()
    assert {BLUE, ORANGE} <= colours_in(out / "curves.png")  # two curves


def test_fit_a_mesh_writes_a_marching_cubes_mesh_and_iou(tmp_path):
    trimesh.creation.icosphere(subdivisions=2, radius=1.0).export(tmp_path / "ball.obj")
    out = tmp_path / "results"
    code = main(["fit", "ball.obj", "--task", "occupancy", "--field", "relu", "--optimizer", "adam", "--epochs", "30",
                 "--resolution", "12", "--out", str(out), *TINY])
    assert code == 0
    run = json.loads((out / "metrics.json").read_text())["runs"][0]
    assert run["reconstruction"] == "reconstruction_adam.ply"
    assert run["final"]["iou"] > 0.5  # a ball is easy; the field starts near IoU 0
    mesh = trimesh.load(out / "reconstruction_adam.ply")
    step = 2 / (12 - 1)  # marching cubes closes the surface one grid step outside the cube at most
    assert len(mesh.faces) > 0 and np.abs(mesh.vertices).max() <= 1 + step and mesh.extents.min() > 1.0


def test_fit_a_scene_folder_writes_a_rendered_test_view_and_psnr(tmp_path):
    scene = load_scene("embedded", 12)
    write_blender(scene, tmp_path / "scene")
    out = tmp_path / "results"
    code = main(["fit", "scene", "--task", "nerf", "--field", "relu", "--optimizer", "adam", "--epochs", "1",
                 "--out", str(out), *TINY])
    assert code == 0
    run = json.loads((out / "metrics.json").read_text())["runs"][0]
    view = np.asarray(Image.open(out / "reconstruction_adam.png"))
    assert view.shape == tuple(scene.images.shape[1:]) and np.isfinite(run["final"]["psnr"])


def write_text(tmp_path, name):
    (tmp_path / name).write_text("not an image")
    return name


BAD = {  # arguments -> what the error must say
    "missing file": (["missing.jpg"], ["'missing.jpg'", "no such file", ".png", "skimage:astronaut"]),
    "not an image": (["notes.png"], ["notes.png", "not a readable image", "--task image takes image files"]),
    "image given as a mesh": (["notes.png", "--task", "occupancy"], ["notes.png", "not a readable mesh", ".obj"]),
    "unknown field": (["notes.png", "--field", "tanh"], ["--field 'tanh'", "gaussian, sine, wavelet, relu"]),
    "unknown optimizer": (["notes.png", "--optimizer", "adamw"], ["--optimizer 'adamw'", "esgd", "adam"]),
    "unknown in compare": (["notes.png", "--compare", "esgd,nadam"], ["unknown --compare 'nadam'", "esgd"]),
    "compare one": (["notes.png", "--compare", "esgd"], ["--compare 'esgd'", "two or more"]),
    "zero epochs": (["notes.png", "--epochs", "0"], ["--epochs must be an integer ≥ 1, not 0"]),
    "negative batch": (["notes.png", "--batch-size", "-4"], ["--batch-size must be an integer ≥ 1, not -4"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_refused_clearly_and_nothing_is_written(case, tmp_path, capsys):
    write_text(tmp_path, "notes.png")
    arguments, phrases = BAD[case]
    code = main(["fit", *arguments, "--out", "results", *TINY])
    error = capsys.readouterr().err
    assert code == 2
    assert all(phrase in error for phrase in phrases), error
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_out_must_be_a_folder(photo, tmp_path, capsys):
    (tmp_path / "results").write_text("a file")
    assert main(["fit", str(photo), "--out", "results", *TINY]) == 2
    assert "--out 'results' is a file" in capsys.readouterr().err
    assert (tmp_path / "results").read_text() == "a file"


def test_an_unknown_task_is_refused_by_the_parser(photo, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", str(photo), "--task", "audio", "--out", "results"])
    assert "invalid choice: 'audio'" in capsys.readouterr().err and not (tmp_path / "results").exists()
