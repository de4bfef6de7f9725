"""Optimizers by name, each with the paper's preset beside it.

Every optimizer is a `torch.optim.Optimizer`; the training loop drives all of them the
same way, `optimizer.step(closure)` with a `closure(create_graph=False)`. Those that
need curvature ask the closure for the graph themselves (see `pnf.optim.esgd`).
"""

from dataclasses import dataclass, field

import torch

from pnf.optim.adahessian import AdaHessian
from pnf.optim.esgd import ESGD
from pnf.optim.kfac import KFACAdam
from pnf.optim.shampoo import Shampoo


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer: its class, the paper's hyperparameters, and the
    per-activation changes to them (the paper uses other rates for ReLU(PE))."""

    cls: type
    preset: dict
    per_activation: dict = field(default_factory=dict)
    label: str = ""
    seeded: bool = False  # takes a `seed` for its own random generator
    needs_model: bool = False  # takes the `model` (e.g. to hook its layers)

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
    "sgd": OptimizerSpec(torch.optim.SGD, {"lr": 1.0}, label="SGD"),
    "adahessian": OptimizerSpec(
        AdaHessian,
        {"lr": 0.15, "betas": (0.9, 0.999), "eps": 1e-4, "curvature": "equilibration"},
        {"relu": {"lr": 0.1}},
        label="AdaHessian",
        seeded=True,
    ),
    "adahessian_j": OptimizerSpec(
        AdaHessian,
        {"lr": 0.15, "betas": (0.9, 0.999), "eps": 1e-4, "curvature": "jacobi"},
        {"relu": {"lr": 0.1}},
        label="AdaHessian (Jacobi)",
        seeded=True,
    ),
    "kfac_adam": OptimizerSpec(
        KFACAdam,
        {"lr": 1e-4, "damping": 0.1, "update_freq": 100},
        {"relu": {"lr": 1e-3}},
        label="K-FAC + Adam",
        needs_model=True,
    ),
    "shampoo": OptimizerSpec(Shampoo, {"lr": 0.1}, label="Shampoo"),
}


def make_optimizer(
    name: str, params, activation: str | None = None, seed: int = 0, model=None, **overrides
) -> torch.optim.Optimizer:
    """Optimizer `name` over `params` with the paper's preset for `activation`,
    changed by `overrides`. `model` (the module owning `params`) is passed to the
    optimizers that declare `needs_model`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; registered: {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    kwargs = {**spec.hyperparameters(activation), **overrides}
    if spec.seeded:
        kwargs["seed"] = seed
    if spec.needs_model:
        if model is None:
            raise ValueError(f"optimizer {name!r} needs the model: make_optimizer(..., model=model)")
        kwargs["model"] = model
    return spec.cls(params, **kwargs)


__all__ = ["ESGD", "OPTIMIZERS", "AdaHessian", "KFACAdam", "OptimizerSpec", "Shampoo", "make_optimizer"]
