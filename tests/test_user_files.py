"""Probes of `python -m pnf fit` with the user's own files: each feeds one input
and expects a clear error before training, or the correct result, and nothing of the
user's overwritten.

| probe | before | after |
|---|---|---|
| `fit photo.png --out R`, R holding the user's curves.png, metrics.json, ... | overwritten | refused before training, named |
| `fit P/reconstruction_esgd.png --out P` (an earlier fit's folder) | the input overwritten | refused: --out holds the input |
| fit again into an earlier fit's folder, with fewer optimizers | stale reconstructions left | replaced, stale ones removed |
| an earlier fit's output the user changed since | overwritten | refused, named |
| `--out` under a file | raw error after training | ConfigError naming --out, before |
| a `$` in the file name (`x$^$y.png`) | mathtext ValueError after training | fitted, plotted as text |
| `fit blender:<folder> --task nerf` | "no such file or folder" | fitted |
| an animated GIF | its first frame, no word | its first frame, with a warning naming the frame count |
| a photo with EXIF orientation 6 | fitted as stored (sideways) | fitted upright |
| a 2:1 image | squashed into a square | its centred square, and fit says so |
"""

import json

import numpy as np
import pytest
from PIL import Image
from scene_writers import write_blender

from pnf import fit
from pnf.__main__ import main
from pnf.data.scenes import load_scene
from pnf.metrics import psnr

TINY = ["--profile", "tiny", "--seed", "0", "--resolution", "8", "--batch-size", "64"]


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def save(pixels, path, **options):
    Image.fromarray(np.asarray(pixels, np.uint8)).save(path, **options)
    return path


@pytest.fixture
def photo(tmp_path):
    rows, cols = np.mgrid[0:16, 0:16] / 15.0
    return save(np.round(np.stack([rows, cols, 0.5 * rows * cols], axis=-1) * 255), tmp_path / "photo.png")


def fit_(*args) -> int:
    return main(["fit", *map(str, args), *TINY])


def no_training(*args, **kwargs):
    raise AssertionError("trained")


def contents(folder) -> dict:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def written(folder, optimizer="esgd") -> np.ndarray:
    return np.asarray(Image.open(folder / f"reconstruction_{optimizer}.png"), dtype=np.float32) / 255


def final_psnr(folder) -> float:
    return json.loads((folder / "metrics.json").read_text())["runs"][0]["final"]["psnr"]


# --- the user's files are never written over ---------------------------------------------

def test_an_out_folder_holding_the_users_files_is_refused_before_training(photo, tmp_path, capsys, monkeypatch):
    out = tmp_path / "R"
    out.mkdir()
    for name in ("curves.png", "metrics.json", "reconstruction_esgd.png"):
        (out / name).write_text(f"the user's {name}")
    before = contents(out)
    monkeypatch.setattr(fit, "compute", no_training)
    assert fit_(photo, "--out", out, "--epochs", "2") == 2
    assert ("--out '" + str(out) + "' holds 3 file(s) or folder(s) fit did not write (curves.png, metrics.json, "
            "reconstruction_esgd.png); fit never writes over them: give a new or empty folder, or one an earlier "
            "fit wrote") in capsys.readouterr().err
    assert contents(out) == before


def test_an_out_folder_holding_the_input_is_refused(photo, tmp_path, capsys):
    out = tmp_path / "P"
    assert fit_(photo, "--out", out, "--epochs", "2") == 0
    before = contents(out)
    assert fit_(out / "reconstruction_esgd.png", "--out", out, "--epochs", "2") == 2
    assert f"--out '{out}' holds the input {out / 'reconstruction_esgd.png'}, which fit could overwrite" in \
        capsys.readouterr().err
    assert contents(out) == before


def test_fitting_again_into_an_earlier_fits_folder_replaces_its_outputs(photo, tmp_path):
    out = tmp_path / "R"
    assert fit_(photo, "--out", out, "--compare", "esgd,adam", "--epochs", "1") == 0
    assert sorted(contents(out)) == ["curves.png", "metrics.json", "reconstruction_adam.png", "reconstruction_esgd.png"]
    first = contents(out)
    assert fit_(photo, "--out", out, "--optimizer", "esgd", "--epochs", "3") == 0
    again = contents(out)
    assert sorted(again) == ["curves.png", "metrics.json", "reconstruction_esgd.png"]  # adam's is gone, no temp file
    assert again["reconstruction_esgd.png"] != first["reconstruction_esgd.png"]
    record = json.loads(again["metrics.json"])
    assert record["written_by"] == "python -m pnf fit" and sorted(record["outputs"]) == ["curves.png",
                                                                                        "reconstruction_esgd.png"]
    assert [run["config"]["epochs"] for run in record["runs"]] == [3]


def test_an_earlier_output_the_user_changed_is_refused(photo, tmp_path, capsys, monkeypatch):
    out = tmp_path / "R"
    assert fit_(photo, "--out", out, "--epochs", "1") == 0
    (out / "curves.png").write_bytes(b"the user's edit")
    monkeypatch.setattr(fit, "compute", no_training)
    assert fit_(photo, "--out", out, "--epochs", "1") == 2
    assert "holds 1 file(s) or folder(s) fit did not write (curves.png)" in capsys.readouterr().err
    assert (out / "curves.png").read_bytes() == b"the user's edit"


def test_an_out_folder_that_cannot_be_written_is_refused_before_training(photo, tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(fit, "compute", no_training)
    assert fit_(photo, "--out", "notes.txt/results", "--epochs", "1") == 2
    assert ("--out='notes.txt/results' is not writable (Not a directory): make it writable, or set --out to a "
            "folder you can write") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photo.png"]


# --- inputs ----------------------------------------------------------------------------------

def test_a_dollar_in_the_file_name_is_plotted_as_text(photo, tmp_path):
    name = photo.rename(tmp_path / "x$^$y.png")
    assert fit_(name, "--out", "R", "--epochs", "1") == 0
    assert sorted(contents(tmp_path / "R")) == ["curves.png", "metrics.json", "reconstruction_esgd.png"]


def test_a_scene_named_in_the_blender_form_is_fitted(tmp_path, capsys):
    write_blender(load_scene("embedded", 8), tmp_path / "scene")
    assert main(["fit", "blender:scene", "--task", "nerf", "--field", "relu", "--optimizer", "adam", "--epochs", "1",
                 "--out", "R", "--profile", "tiny"]) == 0
    assert json.loads((tmp_path / "R" / "metrics.json").read_text())["input"] == "blender:scene"
    assert main(["fit", "blender:elsewhere", "--task", "nerf", "--out", "R2", "--profile", "tiny"]) == 2
    error = capsys.readouterr().err
    assert "'blender:elsewhere': no such file or folder" in error and "blender:<folder>" in error
    assert not (tmp_path / "R2").exists()


def test_an_animation_is_fitted_on_its_first_frame_with_a_warning(tmp_path):
    red, blue = np.full((16, 16, 3), (200, 30, 30)), np.full((16, 16, 3), (30, 30, 200))
    frames = [Image.fromarray(np.uint8(pixels)) for pixels in (red, blue)]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="clip.gif: the file holds 2 frames .*only the first is used"):
        assert fit_("clip.gif", "--out", "R", "--epochs", "2") == 0
    reconstruction = written(tmp_path / "R")
    reported, first = final_psnr(tmp_path / "R"), np.asarray(frames[0].convert("RGB"), np.float32)[:8, :8] / 255
    assert psnr(reconstruction, first) == pytest.approx(reported, abs=0.3)
    assert abs(psnr(reconstruction, np.asarray(frames[1].convert("RGB"), np.float32)[:8, :8] / 255) - reported) > 1


def test_a_photo_with_an_exif_orientation_is_fitted_upright(tmp_path):
    upright = np.zeros((16, 16, 3), np.uint8)
    upright[:8] = 255  # white above black
    stored = np.rot90(upright, k=1)  # EXIF 6: turn 90° clockwise to show it: white on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    save(stored, tmp_path / "phone.png", exif=exif)
    assert fit_("phone.png", "--out", "R", "--optimizer", "adam", "--epochs", "40") == 0
    reconstruction, reported = written(tmp_path / "R", "adam"), final_psnr(tmp_path / "R")
    small = upright[::2, ::2].astype(np.float32) / 255
    assert psnr(reconstruction, small) == pytest.approx(reported, abs=1.0)
    assert psnr(reconstruction, small) > psnr(reconstruction, np.rot90(small, k=1)) + 3


def test_a_wide_image_is_fitted_on_its_centred_square_and_fit_says_so(tmp_path, capsys):
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = (40, 160, 90)  # the centred square; white at the sides
    wide[:, :10] = wide[:, 30:] = 255
    save(wide, tmp_path / "wide.png")
    assert fit_("wide.png", "--out", "R", "--epochs", "2") == 0
    assert "wide.png is 40×20 pixels: fitting its centred 20×20 square" in capsys.readouterr().out
    square = np.full((8, 8, 3), (40, 160, 90), np.float32) / 255
    assert psnr(written(tmp_path / "R"), square) == pytest.approx(final_psnr(tmp_path / "R"), abs=0.3)
