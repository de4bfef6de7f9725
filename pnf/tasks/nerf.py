"""NeRF: rays `[N, 6]` -> RGB `[N, 3]` through a volume-rendered radiance field; MSE loss.

The paper trains a Gaussian-activated NeRF without positional encoding for 200,000
iterations (its code for this task is not released). Our choices, where it is silent:
- an *epoch* is `ITERATIONS_PER_EPOCH` = 100 iterations, each on `batch_size` rays
  drawn without replacement from all training pixels (paper: 2,000 epochs);
- the field is `pnf.fields.make_field` on normalised positions `[M, 3] -> [M, 4]`
  (density, RGB); the `paper` settings hold the field a third-party
  reimplementation describes: 8 layers × 256, skip after layer 4, Gaussian σ = 0.1,
  no encoding.
  ReLU(PE) uses NeRF's 10 position frequencies (its skip re-joins the raw position,
  where NeRF re-joins the encoding). The color does not depend on the view
  direction: the scenes here are (near) Lambertian, and how a view head would take
  directions without an encoding in a Gaussian field is not stated;
- one coarse stratified pass of `samples` points a ray (no hierarchical sampling);
- the optimizers' paper presets are those of the image task, unchanged.
Metrics over the held-out views: PSNR (mean over views), MSE, and `error`, the mean
of the per-pixel absolute error map (|prediction − truth| averaged over RGB), which is
what Fig. 1h/i show.
"""

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from pnf.checks import check_int, check_memory
from pnf.data.scenes import load_scene
from pnf.metrics import absolute_error_map, psnr
from pnf.tasks.records import Settings, Task, in_chunks, register
from pnf.tasks.volume_rendering import RadianceField, Renderer

ITERATIONS_PER_EPOCH = 100
EVAL_CHUNK = 8192  # rays per forward pass when rendering test views
JITTER_SEED_OFFSET = 7919  # the renderer's jitter stream is seeded with run seed + this
DEFAULT_SAMPLES = 64  # points a ray when `task_options` do not set `samples` (the paper settings')
SAMPLE_BYTES = 64  # a step's memory a ray sample (its point, depth, density, color, weights), before the field's

FIELD_PRESETS = {"gaussian": {"sigma": 0.1}, "relu": {"frequencies": 10}}


class NeRFFitting:
    """Fit a radiance field to the training views of a scene; evaluate on held-out views."""

    metric = "psnr"
    loss = staticmethod(F.mse_loss)

    def __init__(self, scene, rays_per_epoch: int, seed: int, device: torch.device, samples: int):
        self.scene, self.device = scene, device
        self.rays_per_epoch, self.seed, self.samples = rays_per_epoch, seed, samples
        train = list(scene.train_views)
        self.train_rays = scene.rays(train).reshape(-1, 6).to(device)
        if rays_per_epoch > len(self.train_rays):
            raise ValueError(f"{scene.source}: an epoch needs {rays_per_epoch} rays, the training views have "
                             f"{len(self.train_rays)}; use a smaller batch or larger views")
        self.train_colors = scene.images[train].reshape(-1, 3).to(device)
        self.test_rays = scene.rays(scene.test_views).to(device)  # [T, H, W, 6]
        self.test_images = scene.images[list(scene.test_views)].to(device)  # [T, H, W, 3]

    def make_model(self, activation: str, **field_options) -> Renderer:
        """A `Renderer` of a `RadianceField` with `samples` a ray; `field_options` (its
        width, depth and skips, from the settings) change the activation's NeRF preset."""
        options = {**FIELD_PRESETS.get(activation, {}), **field_options}
        generator = torch.Generator(device=self.device).manual_seed(self.seed + JITTER_SEED_OFFSET)
        scene = self.scene
        return Renderer(RadianceField(activation, **options), scene.near, scene.far, self.samples,
                        scene.background, scene.scale, generator).to(self.device)

    def epoch_data(self, epoch: int, generator: torch.Generator):
        """`rays_per_epoch` training rays `[R, 6]` and their colors `[R, 3]`, without replacement."""
        order = torch.randperm(len(self.train_rays), generator=generator, device=generator.device)
        chosen = order[: self.rays_per_epoch].to(self.device)
        return self.train_rays[chosen], self.train_colors[chosen]

    def render(self, model: Renderer) -> torch.Tensor:
        """The test views `[T, H, W, 3]`, rendered deterministically (bin middles)."""
        model.eval()
        colors = in_chunks(model, self.test_rays.reshape(-1, 6), EVAL_CHUNK)
        model.train()
        return colors.reshape(self.test_images.shape)

    def evaluate(self, model: Renderer) -> tuple[dict[str, float], np.ndarray]:
        """Test-view MSE, PSNR (dB, mean over views) and mean absolute error, and the
        first test view `[H, W, 3]` clipped to [0, 1] (metrics are of clipped images)."""
        views = self.render(model).clamp(0, 1).cpu().numpy()
        truth = self.test_images.cpu().numpy()
        metrics = {
            "mse": float(np.mean((views - truth) ** 2)),
            "psnr": float(np.mean([psnr(view, target) for view, target in zip(views, truth)])),
            "error": float(np.mean([absolute_error_map(v, t).mean() for v, t in zip(views, truth)])),
        }
        return metrics, views[0]

    def target(self) -> np.ndarray:
        return self.test_images[0].cpu().numpy()


def build(config, device) -> NeRFFitting:
    """`config.data` is a scene source (`pnf.data.scenes`), `resolution` the views' width
    in pixels, `batch_size` rays an iteration; `task_options` set `samples` a ray (default
    `DEFAULT_SAMPLES`). Refuses a step larger than this machine's memory before loading."""
    samples = check_int("nerf option samples", config.task_options.get("samples", DEFAULT_SAMPLES), 1)
    check_memory(f"nerf option samples = {samples:,} with batch_size {config.batch_size:,}",
                 samples * config.batch_size * SAMPLE_BYTES)
    scene = load_scene(config.data, config.resolution)
    return NeRFFitting(scene, ITERATIONS_PER_EPOCH * config.batch_size, config.seed, device, samples)


@dataclass(frozen=True)
class NeRFSettings(Settings):
    """Views `resolution` pixels wide, `batch_size` rays an iteration, `epochs` of 100
    iterations, `samples` stratified points a ray, a field of `hidden_layers` + 1 layers of
    `hidden_features` with the input re-joined after the layers in `skips`."""

    samples: int = 64
    hidden_features: int = 256
    hidden_layers: int = 7
    skips: tuple = (4,)

    def run_options(self) -> dict:
        return {"field_options": {"hidden_features": self.hidden_features, "hidden_layers": self.hidden_layers,
                                  "skips": tuple(self.skips)},
                "task_options": {"samples": self.samples}}


PAPER = NeRFSettings(resolution=200, batch_size=1024, epochs=2000, eval_every=100)  # 200,000 iterations
SETTINGS = {
    "paper": PAPER,
    # 32-pixel views, 32 samples a ray, 128 rays, a 64-wide field of 4 layers without skip,
    # 1,000 iterations (about a minute a run on one CPU core).
    "quick": replace(PAPER, resolution=32, batch_size=128, epochs=10, samples=32, hidden_features=64,
                     hidden_layers=3, skips=(), eval_every=10),
    # 20,000 iterations on 64-pixel views, 128 rays of 32 samples, a 128-wide field of 5 layers
    "cpu": replace(PAPER, resolution=64, batch_size=128, epochs=200, samples=32, hidden_features=128,
                   hidden_layers=4, skips=(), eval_every=20),
    "tiny": replace(PAPER, resolution=12, batch_size=32, epochs=1, samples=8, hidden_features=16,
                    hidden_layers=1, skips=(), eval_every=1),
}


def grid(task: Task, settings: NeRFSettings, source: str) -> list:
    """Gaussian and ReLU(PE) × ESGD and Adam (nerf_fig1c)."""
    return task.configs(settings, source, ["gaussian", "relu"], ["adam", "esgd"])


def cost(config) -> tuple[int, int, int]:
    """(steps an epoch, ray samples a step, points an evaluation): the test renders are not counted."""
    return ITERATIONS_PER_EPOCH, config.batch_size * config.task_options.get("samples", DEFAULT_SAMPLES), 0


NERF = register(Task("nerf", build, SETTINGS, "scene", grid, cost, FIELD_PRESETS, curve_metric="psnr",
                     task_options=("samples",)))
