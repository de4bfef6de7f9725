"""The one call every report notebook starts with: `report = pnf.report.start(profile, task, ...)`.

It checks the notebook's parameters, points the loaders at the data folder, resolves the
task's settings at the profile and its data source, and returns a `Report` that runs the
report's configs (through `pnf.runs.executors.run_all`), records scorecard claims and says how
the report was made.
"""

import time
from dataclasses import dataclass, field, replace

import torch
from IPython.display import HTML, Markdown, display

import pnf
from pnf import paper
from pnf.data.sources import describe, is_paper, resolve, use_data_dir
from pnf.device import default_device
from pnf.device import describe as describe_device
from pnf.profiles import PROFILES, check_profile
from pnf.report import scorecard
from pnf.report.text import escaped, literal
from pnf.runs.cache import Result, git_commit
from pnf.runs.executors import run_all
from pnf.studies.curvature import CurvatureSettings
from pnf.studies.robustness import StudySettings, available
from pnf.tasks import get_task, make_task
from pnf.tasks.image import ImageSettings
from pnf.tasks.nerf import ITERATIONS_PER_EPOCH, NeRFSettings
from pnf.tasks.occupancy import OccupancySettings, sampling_settings
from pnf.tasks.sdf import EIKONAL_WEIGHT, SDFSettings
from pnf.tasks.sdf import sampling_settings as sdf_sampling


def positive_or_none(name: str, value) -> int | None:
    """`value` if it is a positive int or None, else a ValueError naming the parameter."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise ValueError(f"notebook parameter {name} = {value!r}: use a positive integer, or None for the profile's")


def start(profile: str, task: str = "image", data_dir=None, epochs: int | None = None, seeds: int | None = None,
          source: str | None = None, variant: str | None = None, sections: dict | None = None) -> "Report":
    """The report of `task` at `profile`: data read from `data_dir` (default `PNF_DATA`,
    else data/), `source` (default: the paper's data when present, else the embedded
    stand-in), the profile's settings with `epochs` and `seeds` overridden when given.
    `variant` names a method of the settings giving those of this report (the image
    task's `comparison`); `sections` replaces the task's profile sections (an analysis's)."""
    epochs, seeds = positive_or_none("epochs", epochs), positive_or_none("seeds", seeds)
    record = get_task(task)
    use_data_dir(data_dir)
    profile_settings = (sections or record.settings)[check_profile(profile)]
    settings = getattr(profile_settings, variant)() if variant else profile_settings
    if epochs or seeds:  # a snapshot is kept at the profile's epoch, or at the last one when that is earlier
        epochs = epochs or settings.epochs
        snapshot = min(profile_settings.snapshot_epoch, epochs) if profile_settings.snapshot_epoch else None
        settings = replace(settings, epochs=epochs, seeds=seeds or settings.seeds, snapshot_epoch=snapshot)
    source = resolve(source or record.default_source(), record.data_kind).name
    return Report(profile, record, settings, source)


@dataclass
class Report:
    """A report's profile, task record, settings and data source."""

    profile: str
    task: object
    settings: object
    source: str
    started: float = field(default_factory=time.time)
    fittings: dict = field(default_factory=dict, repr=False)

    def run(self, activations, optimizers, optimizer_options: dict | None = None) -> list[Result]:
        """Every activation × optimizer × seed at the report's settings (cached runs load)."""
        return run_all(self.task.configs(self.settings, self.source, list(activations), list(optimizers),
                                         optimizer_options))

    def paper_scale_at(self, epoch: int, paper_epoch: int) -> bool:
        """Whether a measurement at `epoch` is the paper's at `paper_epoch`: the same epoch at
        the task's paper resolution and batch (a reduced profile may only stop earlier)."""
        paper_settings = self.task.settings["paper"]
        return epoch == paper_epoch and (self.settings.resolution, self.settings.batch_size) == (
            paper_settings.resolution, paper_settings.batch_size)

    def fitting(self, result: Result):
        """The task object of `result`'s config (its target, scene, ...), built once."""
        key = result.config.key()
        if key not in self.fittings:
            self.fittings[key] = make_task(result.config, default_device())
        return self.fittings[key]

    def record(self, claim: str, measured: dict, diverged=(), paper_scale: bool | None = None,
               paper_setting: bool = True, epoch: int | None = None) -> dict:
        """Record a scorecard claim measured here at `epoch` (default: the settings' last,
        if they have epochs) (`pnf.report.scorecard.record`); `paper_setting` False when
        the report changed a setting the paper fixes. The data counts as the paper's when it
        is the paper's own, unmodified."""
        reached = epoch if epoch is not None else getattr(self.settings, "epochs", None)
        display(HTML(f'<a id="claim-{escaped(claim)}"></a>'))  # where the index's row links to
        return scorecard.record(claim, measured, self.profile, is_paper(self.source) and paper_setting, self.source,
                                list(diverged), paper_scale, reached)

    def how_we_ran(self, results: list[Result] = ()) -> Markdown:
        """The provenance block: what is reproduced, profile, setting, data, hardware, time, code."""
        provenance = results[0].provenance if results else {
            "device": describe_device(default_device()), "torch_version": torch.__version__, "git_commit": git_commit()}
        took = (time.time() - self.started) / 60
        timing = (f"training time of these runs {sum(r.seconds for r in results) / 60:.1f} min; this report took "
                  f"{took:.1f} min to build (cached runs only load)" if results else f"this report took {took:.1f} min")
        return Markdown(
            f"**Reproducing:** {paper.CITATION}.\n\n"
            f"- **Profile:** `{self.profile}` ({PROFILES[self.profile]})\n"
            f"- **Setting:** {SETUPS[type(self.settings)](self, results)}\n"
            f"- **Data:** {literal(self.source)} — {describe(self.source)}\n"
            f"- **Hardware:** {provenance.get('device', 'n/a')} (torch {provenance.get('torch_version', '?')}); {timing}\n"
            f"- **Code:** pnf {pnf.__version__}, commit {literal(provenance.get('git_commit', 'unknown'))}, "
            f"results version {pnf.RESULTS_VERSION}\n")


def image_setup(report: Report, results) -> str:
    s = report.settings
    return (f"{s.resolution}×{s.resolution} pixels, batch {s.batch_size}, {s.epochs} epochs "
            f"({s.resolution ** 2 // s.batch_size} steps each), {s.seeds} seed(s); curves show the mean and, with "
            "several seeds, the min–max band")


def occupancy_setup(report: Report, results) -> str:
    s, sampling = report.settings, sampling_settings(results[0].config)
    return (f"each epoch draws {s.batch_size:,} labelled points (one step) from a pool of {sampling['pool_size']:,}: "
            f"{sampling['uniform_fraction']:.0%} uniform in [-1, 1]³, the rest near the surface (σ = "
            f"{sampling['surface_sigma']}), labelled by the generalized winding number > 1/2; {s.epochs:,} epochs, "
            f"{s.seeds} seed(s). **IoU** of {{sigmoid(field) ≥ 0.5}} against the mesh's own occupancy on a "
            f"{s.resolution}³ grid over [-1, 1]³; **Chamfer**: marching cubes at 0.5, symmetric mean nearest-point "
            "distance, in units where the mesh spans [-0.9, 0.9] along its longest side")


def sdf_setup(report: Report, results) -> str:
    s, sampling = report.settings, sdf_sampling(results[0].config)
    return (f"each epoch draws {s.batch_size:,} points (one step) from a pool of {sampling['pool_size']:,}: "
            f"{sampling['uniform_fraction']:.0%} uniform in [-1, 1]³, the rest near the surface (σ = "
            f"{sampling['surface_sigma']}), supervised by the true signed distance (libigl, signed by the winding "
            f"number) with an Eikonal term of weight {EIKONAL_WEIGHT}; field of {s.hidden_layers + 1} layers × "
            f"{s.hidden_features}; {s.epochs:,} epochs, {s.seeds} seed(s). **IoU** of the sign on a {s.resolution}³ "
            "grid; **Chamfer** and **normal consistency** of the zero level set (marching cubes) against the mesh")


def nerf_setup(report: Report, results) -> str:
    s, scene = report.settings, report.fitting(results[0]).scene
    height, width = scene.images.shape[1:3]
    return (f"{len(scene.train_views)} training and {len(scene.test_views)} held-out views of {width}×{height} "
            f"pixels; {s.epochs * ITERATIONS_PER_EPOCH:,} iterations ({s.epochs} epoch(s) of {ITERATIONS_PER_EPOCH}) "
            f"of {s.batch_size} random rays with {s.samples} stratified samples each; field of {s.hidden_layers + 1} "
            f"layers × {s.hidden_features}, skip after layers {tuple(s.skips) or 'none'}; {s.seeds} seed(s)")


def curvature_setup(report: Report, results) -> str:
    s = report.settings
    return (f"fields of {s.hidden_layers} hidden layer(s) × {s.hidden_features} units, central {s.patch}×{s.patch} "
            f"patch of the image at {s.resolution}², {s.train_steps} Adam steps of {s.batch_size} pixels "
            "(paper presets)")


def study_setup(report: Report, results) -> str:
    s, image = report.settings, report.task.settings_for(report.profile)
    images = available(s.images)
    return (f"{len(images)} images ({', '.join(literal(name) for name in images)}) × {s.seeds} seed(s) × four fields × "
            f"{', '.join(s.optimizers)}, {s.epochs} epochs each at {image.resolution}×{image.resolution} pixels, batch "
            f"{image.batch_size}, the paper's hyperparameters; DIV2K test images count when their files are present "
            "(`make data`); scikit-image's photographs are centre-cropped to the square of their shorter side")


SETUPS = {ImageSettings: image_setup, OccupancySettings: occupancy_setup, NeRFSettings: nerf_setup,
          SDFSettings: sdf_setup,
          CurvatureSettings: curvature_setup, StudySettings: study_setup}
