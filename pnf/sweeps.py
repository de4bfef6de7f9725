"""The paper's grid, family by family: the configs each family's reports read.

A sweep computes these into the cache ahead of the reports (e.g. on a cluster), so the
notebooks only aggregate. Each family registers a function `profile -> [RunConfig]`
that builds exactly the configs its notebooks build.
"""

from typing import Callable

from pnf.profiles import Profile
from pnf.runs import RunConfig

SWEEPS: dict[str, Callable[[Profile], list[RunConfig]]] = {}


def register(family: str):
    def decorate(build):
        SWEEPS[family] = build
        return build

    return decorate


@register("image")
def image_grid(profile: Profile) -> list[RunConfig]:
    """Four fields × ESGD and Adam (image_convergence, fig1a_image), then × every
    registered optimizer at the comparison's epochs (image_optimizers)."""
    from dataclasses import replace

    from pnf.data.images import default_image_source
    from pnf.fields import ACTIVATIONS
    from pnf.optim import OPTIMIZERS
    from pnf.tasks.image import image_configs

    settings, source, fields = profile.image, default_image_source(), list(ACTIVATIONS)
    comparison = replace(settings, epochs=settings.optimizers_epochs,
                         snapshot_epoch=min(settings.snapshot_epoch, settings.optimizers_epochs))
    return (image_configs(settings, source, fields, ["adam", "esgd"])
            + image_configs(comparison, source, fields, list(OPTIMIZERS), settings.optimizers_options))


@register("occupancy")
def occupancy_grid(profile: Profile) -> list[RunConfig]:
    """Four fields × ESGD and Adam on the default mesh (fig1b_occupancy, occupancy_activations)."""
    from pnf.data.meshes import default_mesh_source
    from pnf.fields import ACTIVATIONS
    from pnf.tasks.occupancy import occupancy_configs

    return occupancy_configs(profile.occupancy, default_mesh_source(), list(ACTIVATIONS), ["adam", "esgd"])


@register("nerf")
def nerf_grid(profile: Profile) -> list[RunConfig]:
    """Gaussian and ReLU(PE) × ESGD and Adam on the default scene (fig1c_nerf)."""
    from pnf.data.scenes import default_scene_source
    from pnf.tasks.nerf import nerf_configs

    return nerf_configs(profile.nerf, default_scene_source(), ["gaussian", "relu"], ["adam", "esgd"])


def grid(profile: Profile, families: list[str] | None = None) -> list[RunConfig]:
    """Every config of `families` (default: all) at `profile`, without duplicates."""
    unknown = set(families or []) - set(SWEEPS)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; registered: {', '.join(SWEEPS)}")
    configs = [c for family in (families or SWEEPS) for c in SWEEPS[family](profile)]
    return list({config.key(): config for config in configs}.values())
