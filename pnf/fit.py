"""`python -m pnf fit`: fit a field to your own image, mesh or scene from the shell.

    python -m pnf fit photo.jpg --field sine --optimizer esgd --epochs 50 --out results/
    python -m pnf fit bunny.obj --task occupancy --compare esgd,adam --out results/
    python -m pnf fit my_scene/ --task nerf --out results/

The input is a file or folder of your own (an image; an OBJ/PLY/OFF/STL mesh; a
Blender or LLFF scene folder, optionally named `blender:<folder>` or `llff:<folder>`) or a
registered source name (`skimage:astronaut`). An image is turned upright as its EXIF
orientation says; of an animation the first frame is fitted (with a warning), of an image
that is not square its centred square (fit says so). Each optimizer trains through
`pnf.runs.cache.compute` (the one training loop, bypassing the cache, since a file may change
under the same path) at the task's settings of `--profile`, changed by `--epochs`,
`--resolution` and `--batch-size`. Written into
`--out` once every run has finished, each file under a temporary name renamed into place:
- `reconstruction_<optimizer>.png`: the fitted image, or the first test view of a scene;
  `reconstruction_<optimizer>.ply` for a mesh: marching cubes of the field at 1/2, in
  the normalised cube [-1, 1]³ the field was fitted on;
- `curves.png`: the task's metric (PSNR in dB, or IoU) per epoch, one line per optimizer;
- `metrics.json`: per run its config, status, final and per-epoch metrics, seconds; and
  the files this fit wrote with their sha256 (`outputs`).
fit never writes over a file of yours: `--out` must be a new or empty folder, or one
holding only an earlier fit's outputs (as its metrics.json lists them, unchanged), which
are replaced; the input may not lie inside `--out`. An input or `--out` that cannot be
used stops the command before anything is trained or written.
"""

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image as PILImage
from PIL import ImageOps

from pnf.checks import ConfigError, check_int, check_name
from pnf.data.scenes import SCENE_FORMATS
from pnf.data.sources import DEFAULTS, PATH_KINDS, SOURCES
from pnf.device import default_device
from pnf.fields import ACTIVATIONS
from pnf.files import atomically
from pnf.metrics import reconstruct
from pnf.optim import OPTIMIZERS
from pnf.profiles import PROFILES
from pnf.runs.cache import Result, check_writable, compute, file_sha256
from pnf.tasks import TASKS, get_task, make_task

HELP = ("fit a field to your own image, mesh or scene; write its reconstruction, curves and metrics into a new "
        "folder, or one an earlier fit wrote")
SCENE_LAYOUTS = ("a scene folder, or blender:<folder> / llff:<folder> (Blender: transforms_train.json with its "
                 "views; LLFF: poses_bounds.npy and images/)")
METRIC_LABELS = {"psnr": "PSNR (dB)", "iou": "IoU"}
WRITER = "python -m pnf fit"  # metrics.json's `written_by`: how fit knows its own earlier outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `fit` subcommand's arguments."""
    parser.add_argument("input", help="an image file, a mesh file, a scene folder, or a registered source name")
    parser.add_argument("--task", default="image", choices=sorted(TASKS), help="default: image")
    parser.add_argument("--field", default="sine", help=f"one of {', '.join(ACTIVATIONS)} (default: sine)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--optimizer", default="esgd", help=f"one of {', '.join(OPTIMIZERS)} (default: esgd)")
    which.add_argument("--compare", metavar="A,B", help="train several optimizers and plot them together")
    parser.add_argument("--epochs", type=int, help="default: the profile's")
    parser.add_argument("--resolution", type=int, help="image side, occupancy grid side or view width (pixels)")
    parser.add_argument("--batch-size", type=int, help="pixels, points or rays a step (default: the profile's)")
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="default: quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results",
                        help="a new or empty folder, or one an earlier fit wrote, to write into (default: results)")


def main(args: argparse.Namespace) -> int:
    """Fit, print one line per run, write the outputs. Returns 0 when every run finished,
    1 when one diverged; raises ConfigError when an argument, the input or `--out` is
    unusable (before training: nothing written), or when writing fails after it
    (`python -m pnf` prints it and exits with 2)."""
    configs = make_configs(args)
    metric = check_input(args, configs[0])
    out = Path(args.out)
    earlier = check_out(out, args.input)
    note = crop_note(args.input, args.task)
    if note:
        print(note)
    results = [compute(config) for config in configs]
    for result in results:
        outcome = (f"{metric} {result.final(metric):.4g} after {result.config.epochs} epochs" if result.status == "ok"
                   else f"diverged at step {result.diverged_step}")
        print(f"{result.config.optimizer}: {outcome} ({result.seconds:.1f} s)")
    try:
        written = write_outputs(results, args, metric, out)
    except OSError as error:
        raise ConfigError(f"--out {args.out!r}: writing the outputs failed after training ({error}); the final "
                          "metrics are printed above") from None
    for name in sorted(set(earlier) - set(written)):  # an earlier fit's output this one did not replace
        (out / name).unlink(missing_ok=True)
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return 0 if all(result.status == "ok" for result in results) else 1


def write_outputs(results: list[Result], args: argparse.Namespace, metric: str, out: Path) -> list[str]:
    """The reconstructions, curves.png and (last) metrics.json in `out`; their names."""
    out.mkdir(parents=True, exist_ok=True)
    reconstructions = [write_reconstruction(result, get_task(args.task).data_kind, out) for result in results]
    plot_curves(results, metric, f"{args.field} field on {Path(args.input).name}", out / "curves.png")
    outputs = [path.name for path in reconstructions if path] + ["curves.png"]
    write_metrics(results, reconstructions, args.input, metric, {name: file_sha256(out / name) for name in outputs},
                  out / "metrics.json")
    return outputs + ["metrics.json"]


def make_configs(args: argparse.Namespace) -> list:
    """One RunConfig per optimizer, at the task's settings of `args.profile` changed by
    the arguments; ConfigError naming any unusable argument."""
    check_name("--field", args.field, ACTIVATIONS)
    optimizers = args.compare.split(",") if args.compare else [args.optimizer]
    for name in optimizers:
        check_name("--compare" if args.compare else "--optimizer", name, OPTIMIZERS)
    if args.compare and (len(optimizers) < 2 or len(set(optimizers)) < len(optimizers)):
        raise ConfigError(f"--compare {args.compare!r}: give two or more different optimizers separated by "
                          "commas, e.g. esgd,adam")
    given = {option: getattr(args, option) for option in ("epochs", "resolution", "batch_size")}
    given = {option: check_int(f"--{option.replace('_', '-')}", value, 1)
             for option, value in given.items() if value is not None}
    task = get_task(args.task)
    settings = replace(task.settings_for(args.profile), snapshot_epoch=None, seeds=1, **given)
    return [replace(config, seed=args.seed) for config in task.configs(settings, args.input, [args.field], optimizers)]


def accepted(task_name: str) -> str:
    """What `--task task_name` takes as input, in words."""
    kind = get_task(task_name).data_kind
    suffixes = [suffix for suffix, path_kind in PATH_KINDS.items() if path_kind == kind]
    own = f"{kind} files ({', '.join(suffixes)})" if suffixes else SCENE_LAYOUTS
    example = f" or a registered {kind} name such as {DEFAULTS[kind][1]}" if kind in DEFAULTS else ""
    return f"--task {task_name} takes {own}{example}"


def input_path(name: str) -> Path | None:
    """The file or folder input `name` is (a `blender:` or `llff:` prefix dropped); None for
    a registered source."""
    form, colon, folder = name.partition(":")
    return None if name in SOURCES else Path(folder if colon and form in SCENE_FORMATS else name)


def check_input(args: argparse.Namespace, config) -> str:
    """Read the input the way the run will (building its task); return the task's
    headline metric's name, or raise ConfigError naming the input and what is accepted."""
    path = input_path(args.input)
    if path is not None and not path.exists():
        raise ConfigError(f"{args.input!r}: no such file or folder; {accepted(args.task)}")
    try:
        return make_task(config, default_device()).metric
    except (OSError, ValueError) as error:
        raise ConfigError(f"{error}; {accepted(args.task)}") from None


def crop_note(source: str, task: str) -> str | None:
    """For an image file that is not square, the line saying that the image task fits its
    centred square (`pnf.data.images` crops it; its EXIF orientation applied first)."""
    path = input_path(source)
    if path is None or get_task(task).data_kind != "image":
        return None
    with PILImage.open(path) as image:
        width, height = ImageOps.exif_transpose(image).size
    side = min(width, height)
    return None if width == height else f"{path} is {width}×{height} pixels: fitting its centred {side}×{side} square"


def check_out(out: Path, source: str) -> list[str]:
    """The names of an earlier fit's outputs in `out`, which this fit may replace; ConfigError
    if `out` is a file, is not writable, holds anything else (a file of yours, or one
    changed since fit wrote it), or holds the input."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder (it is created if missing)")
    path = input_path(source)
    if path is not None and path.resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"--out {str(out)!r} holds the input {source}, which fit could overwrite: give another "
                          "--out folder")
    earlier = earlier_outputs(out)
    others = sorted(item.name for item in out.iterdir() if item.name not in earlier) if out.is_dir() else []
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise ConfigError(f"--out {str(out)!r} holds {len(others)} file(s) or folder(s) fit did not write ({shown}); "
                          "fit never writes over them: give a new or empty folder, or one an earlier fit wrote")
    check_writable(out, "--out")
    return earlier


def earlier_outputs(out: Path) -> list[str]:
    """The files in `out` an earlier fit wrote and nobody changed since: its metrics.json
    (marked `written_by`) and the outputs it lists whose sha256 still matches."""
    try:
        record = json.loads((out / "metrics.json").read_text())
        listed = dict(record["outputs"]) if record["written_by"] == WRITER else {}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    names = [name for name, digest in listed.items() if isinstance(name, str) and "/" not in name
             and (out / name).is_file() and file_sha256(out / name) == digest]
    return names + ["metrics.json"]


def write_reconstruction(result: Result, kind: str, out: Path) -> Path | None:
    """The run's final reconstruction as a file in `out`: a PNG of an image or view
    `[H, W, 3]` in [0, 1], a PLY mesh of an occupancy grid `[R, R, R]`; None when the
    run diverged or its field has no surface yet."""
    if result.status != "ok":
        return None
    array = result.snapshots[result.config.epochs]
    path = out / f"reconstruction_{result.config.optimizer}.{'ply' if kind == 'mesh' else 'png'}"
    if kind != "mesh":
        with atomically(path) as staging:
            PILImage.fromarray(np.round(array * 255).astype(np.uint8)).save(staging, format="PNG")
        return path
    try:
        mesh = reconstruct(array)
    except ValueError:  # the probability never crosses 1/2
        return None
    with atomically(path) as staging:
        mesh.export(staging, file_type="ply")
    return path


def plot_curves(results: list[Result], metric: str, title: str, path: Path) -> None:
    """`metric` per evaluated epoch of every run, one line per optimizer, saved as a PNG;
    `title` is plain text (a `$` in a file name is not read as mathtext)."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    ax = figure.subplots()
    for result in results:
        epochs, values = result.metric(metric)
        label = OPTIMIZERS[result.config.optimizer].label or result.config.optimizer
        if result.status != "ok":
            label += f" (diverged at step {result.diverged_step})"
        ax.plot(epochs, values, marker="." if len(epochs) < 30 else None, label=label)
    ax.set(xlabel="epoch", ylabel=METRIC_LABELS.get(metric, metric))
    ax.set_title(title, parse_math=False)
    ax.grid(alpha=0.3)
    ax.legend()
    with atomically(path) as staging:
        figure.savefig(staging, dpi=120, format="png")


def write_metrics(results: list[Result], reconstructions: list, source: str, metric: str, outputs: dict,
                  path: Path) -> None:
    """metrics.json: the input, the headline metric, the other files written with their
    sha256 (`outputs`) and, per run, its config, status, training seconds, final metrics
    and per-epoch history."""
    runs = [
        {
            "optimizer": result.config.optimizer,
            "status": result.status,
            "diverged_step": result.diverged_step,
            "seconds": result.seconds,
            "final": ({name: result.final(name) for name in result.history["metrics"]}
                      if result.status == "ok" else {}),
            "eval_epoch": result.history["eval_epoch"],
            "metrics": result.history["metrics"],
            "train_loss": result.history["train_loss"],
            "reconstruction": reconstruction.name if reconstruction else None,
            "config": asdict(result.config),
        }
        for result, reconstruction in zip(results, reconstructions)
    ]
    record = {"written_by": WRITER, "input": source, "metric": metric, "outputs": outputs, "runs": runs}
    with atomically(path) as staging:
        staging.write_text(json.dumps(record, indent=1))
