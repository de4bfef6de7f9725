"""Optimizers by name, each with the paper's preset beside it.

Every optimizer is a `torch.optim.Optimizer`; the training loop drives all of them the
same way, `optimizer.step(closure)` with a `closure(create_graph=False)`. Those that
need curvature ask the closure for the graph themselves (see `pnf.optim.esgd`).
"""

from dataclasses import dataclass, field

import torch

from pnf.optim.esgd import ESGD


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer: its class, the paper's hyperparameters, and the
    per-activation changes to them (the paper uses other rates for ReLU(PE))."""

    cls: type
    preset: dict
    per_activation: dict = field(default_factory=dict)
    label: str = ""
    seeded: bool = False  # takes a `seed` for its own random generator

    def hyperparameters(self, activation: str | None = None) -> dict:
        return {**self.preset, **self.per_activation.get(activation, {})}


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adam": OptimizerSpec(
        torch.optim.Adam,
        {"lr": 1e-4, "weight_decay": 1e-8},
        {"relu": {"lr": 1e-3}},
        label="Adam",
    ),
    "esgd": OptimizerSpec(
        ESGD,
        {"lr": 0.15, "betas": (0.9, 0.999), "eps": 1e-4, "update_d_every": 100, "d_warmup": 50},
        {"relu": {"lr": 0.1}},
        label="ESGD",
        seeded=True,
    ),
}


def make_optimizer(
    name: str, params, activation: str | None = None, seed: int = 0, **overrides
) -> torch.optim.Optimizer:
    """Optimizer `name` over `params` with the paper's preset for `activation`,
    changed by `overrides`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; registered: {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    kwargs = {**spec.hyperparameters(activation), **overrides}
    if spec.seeded:
        kwargs["seed"] = seed
    return spec.cls(params, **kwargs)


__all__ = ["ESGD", "OPTIMIZERS", "OptimizerSpec", "make_optimizer"]
