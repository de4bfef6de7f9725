"""Profiles: the paper's scale, and the reduced scales derived from it in one place.

`paper` is the paper's setting (`../shared/paper.md`). `quick` keeps the paper's image
resolution and batch (a smaller image changes how many steps an epoch has, which was
measured to make ESGD erratic) and cuts epochs: about 20 show every ordering. `tiny`
only checks that the notebooks run (tests). The comparison of all seven optimizers on
four fields (28 runs, Shampoo and AdaHessian several times Adam's cost) runs only 4
epochs at `quick`.
For 3D occupancy, `quick` cuts the batch from 50,000 points to 5,000, the epochs
from 5,000 to 120 and the IoU grid from 128³ to 40³ (an ESGD warm-up step with its
curvature product costs about half a second on one CPU core at 5,000 points); its
snapshot is at epoch 24, the same fifth of the run as the paper's epoch 1,000 of 5,000.
For NeRF (an epoch is 100 iterations, `pnf.tasks.nerf`), `quick` renders 32-pixel
views with 32 samples a ray, batches of 128 rays and a 64-wide field of 4 layers
without skip, for 1,000 iterations instead of 200,000 (about a minute a run on
one CPU core); `paper` is the reimplementation's 8 × 256 field at 200-pixel views.
"""

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ImageProfile:
    """2D image fitting: `resolution`² pixels, `batch_size` pixels a step."""

    resolution: int = 256
    batch_size: int = 512
    epochs: int = 200
    eval_every: int = 1  # epochs between whole-image evaluations
    seeds: int = 1
    snapshot_epoch: int = 10  # Fig. 1d/e show the wavelet fits at epoch 10
    optimizers_epochs: int = 200  # the 7 optimizers × 4 fields comparison (image_optimizers)
    # changes to optimizer presets in that comparison, for cost only, stated in its report
    optimizers_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OccupancyProfile:
    """3D binary occupancy: `batch_size` points a step (one step an epoch), IoU on a
    `resolution`³ grid, labelled training points drawn from a pool of `pool_size`."""

    resolution: int = 128
    batch_size: int = 50000
    epochs: int = 5000
    eval_every: int = 50
    pool_size: int = 5_000_000
    seeds: int = 1
    snapshot_epoch: int = 1000  # Fig. 1f/g show the sine reconstructions at epoch 1,000


@dataclass(frozen=True)
class NeRFProfile:
    """NeRF: views `resolution` pixels wide, `batch_size` rays an iteration, `epochs` of
    100 iterations, `samples` stratified points a ray, a field of `hidden_layers` + 1
    layers of `hidden_features` with the input re-joined after the layers in `skips`."""

    resolution: int = 200
    batch_size: int = 1024
    epochs: int = 2000  # 200,000 iterations
    samples: int = 64
    hidden_features: int = 256
    hidden_layers: int = 7
    skips: tuple = (4,)
    eval_every: int = 100
    seeds: int = 1


@dataclass(frozen=True)
class SlurmProfile:
    """Resources of one run as a SLURM job (`EXECUTOR=slurm`, see `pnf.executors`)."""

    partition: str = "gpu"
    gpus: int = 1
    cpus: int = 4
    time_min: int = 24 * 60
    parallel_jobs: int = 64  # array jobs at once


@dataclass(frozen=True)
class CurvatureProfile:
    """Exact-curvature analysis (`pnf.curvature`): a field of `hidden_layers` ×
    `hidden_features` (about a thousand parameters at quick, so its whole Hessian can be
    formed) on the central `patch`² pixels of the image at `resolution`², trained by
    Adam for `train_steps` steps of `batch_size` pixels. The paper gives no setting for
    this analysis; its `paper` values are only larger."""

    resolution: int = 256
    patch: int = 32
    hidden_features: int = 32
    hidden_layers: int = 2
    batch_size: int = 256
    train_steps: int = 1000


@dataclass(frozen=True)
class Profile:
    name: str
    image: ImageProfile
    occupancy: OccupancyProfile = OccupancyProfile()
    nerf: NeRFProfile = NeRFProfile()
    slurm: SlurmProfile = SlurmProfile()
    curvature: CurvatureProfile = CurvatureProfile()


PAPER = Profile("paper", image=ImageProfile(eval_every=5))

# The reduced profiles: every change from the paper's settings, in one place.
SHAMPOO_EVERY_10 = {"shampoo": {"preconditioning_compute_steps": 10}}  # its inverse roots cost ~15 Adam steps
QUICK = replace(
    PAPER,
    name="quick",
    image=replace(PAPER.image, epochs=20, eval_every=1, optimizers_epochs=4, optimizers_options=SHAMPOO_EVERY_10),
    occupancy=replace(PAPER.occupancy, resolution=40, batch_size=5000, epochs=120, eval_every=12,
                      pool_size=500_000, snapshot_epoch=24),
    nerf=replace(PAPER.nerf, resolution=32, batch_size=128, epochs=10, samples=32, hidden_features=64,
                 hidden_layers=3, skips=(), eval_every=10),
    curvature=replace(PAPER.curvature, patch=24, hidden_features=16, train_steps=200),
)
TINY = replace(
    PAPER,
    name="tiny",
    image=replace(PAPER.image, resolution=24, batch_size=96, epochs=2, snapshot_epoch=1, optimizers_epochs=2,
                  optimizers_options=SHAMPOO_EVERY_10),
    occupancy=replace(PAPER.occupancy, resolution=12, batch_size=256, epochs=2, eval_every=1, pool_size=4096,
                      snapshot_epoch=1),
    nerf=replace(PAPER.nerf, resolution=12, batch_size=32, epochs=1, samples=8, hidden_features=16,
                 hidden_layers=1, skips=(), eval_every=1),
    curvature=replace(PAPER.curvature, resolution=24, patch=8, hidden_features=6, hidden_layers=1, batch_size=32,
                      train_steps=10),
)

PROFILES = {profile.name: profile for profile in (PAPER, QUICK, TINY)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; one of {', '.join(PROFILES)}")
    return PROFILES[name]
