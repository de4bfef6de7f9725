"""Profiles: the paper's scale, and the reduced scales derived from it in one place.

`paper` is the paper's setting (`../shared/paper.md`). `quick` keeps the paper's image
resolution and batch (a smaller image changes how many steps an epoch has, which was
measured to make ESGD erratic) and cuts epochs: about 20 show every ordering. `tiny`
only checks that the notebooks run (tests).
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ImageProfile:
    """2D image fitting: `resolution`² pixels, `batch_size` pixels a step."""

    resolution: int = 256
    batch_size: int = 512
    epochs: int = 200
    eval_every: int = 1  # epochs between whole-image evaluations
    seeds: int = 1
    snapshot_epoch: int = 10  # Fig. 1d/e show the wavelet fits at epoch 10


@dataclass(frozen=True)
class Profile:
    name: str
    image: ImageProfile


PAPER = Profile("paper", image=ImageProfile(eval_every=5))
QUICK = replace(PAPER, name="quick", image=replace(PAPER.image, epochs=20, eval_every=1))
TINY = replace(PAPER, name="tiny", image=replace(PAPER.image, resolution=24, batch_size=96, epochs=2, snapshot_epoch=1))

PROFILES = {profile.name: profile for profile in (PAPER, QUICK, TINY)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; one of {', '.join(PROFILES)}")
    return PROFILES[name]
