"""The optimizer registry: each optimizer module registers itself with its preset.

Every optimizer is a `torch.optim.Optimizer`; the training loop drives all of them the
same way, `optimizer.step(closure)` with a `closure(create_graph=False)`. Those that
need curvature ask the closure for the graph themselves (see `pnf.optim.esgd`).
"""

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer: its class (or factory), its preset hyperparameters with
    where they come from, and per-activation changes (the paper uses other rates for
    ReLU(PE))."""

    cls: type
    preset: dict
    per_activation: dict = field(default_factory=dict)
    label: str = ""
    source: str = "the paper's code"  # where the preset comes from
    seeded: bool = False  # takes a `seed` for its own random generator
    needs_model: bool = False  # takes the `model` (e.g. to hook its layers)
    full_batch: bool = False  # meant for the whole data set as one batch (e.g. L-BFGS)

    def hyperparameters(self, activation: str | None = None) -> dict:
        return {**self.preset, **self.per_activation.get(activation, {})}


OPTIMIZERS: dict[str, OptimizerSpec] = {}


def register(name: str, spec: OptimizerSpec) -> OptimizerSpec:
    """Register `spec` under `name` (one call in the optimizer's own module)."""
    OPTIMIZERS[name] = spec
    return spec


def make_optimizer(
    name: str, params, activation: str | None = None, seed: int = 0, model=None, **overrides
) -> torch.optim.Optimizer:
    """Optimizer `name` over `params` with its preset for `activation`, changed by
    `overrides`. `model` (the module owning `params`) is passed to the optimizers that
    declare `needs_model`."""
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
