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

# What a hyperparameter must be, as the error says it -> the test of a value.
RULES = {
    "must be >= 0": lambda value: value >= 0.0,
    "must be > 0": lambda value: value > 0.0,
    "must lie in [0, 1)": lambda value: 0.0 <= value < 1.0,
    "a pair (β1, β2), each in [0, 1)": lambda value: (
        isinstance(value, (tuple, list)) and len(value) == 2 and all(0.0 <= beta < 1.0 for beta in value)),
    "a positive integer": lambda value: int(value) == value and value >= 1,
    "a non-negative integer": lambda value: isinstance(value, int) and value >= 0,
    "an integer in [1, 100)": lambda value: int(value) == value and 1 <= value < 100,
}


def register(name: str, spec: OptimizerSpec) -> OptimizerSpec:
    """Register `spec` under `name` (one call in the optimizer's own module)."""
    OPTIMIZERS[name] = spec
    return spec


def check(*settings: tuple) -> None:
    """Raise a ValueError naming the first of `settings`, each `(name, value, rule)`, whose
    value breaks its rule: a key of `RULES` or a tuple of the accepted values."""
    for name, value, rule in settings:
        accepted = " or ".join(map(repr, rule)) if isinstance(rule, tuple) else rule
        if not (value in rule if isinstance(rule, tuple) else RULES[rule](value)):
            raise ValueError(f"invalid {name}: {value!r}; {accepted}")


def own_state(optimizer: torch.optim.Optimizer, state_dict: dict) -> tuple[dict, object]:
    """torch's part of `state_dict` and the entry `optimizer.state_key` that a pnf optimizer
    adds to it; a ValueError naming both optimizers when a state saved by another lacks it."""
    if optimizer.state_key not in state_dict:
        name = type(optimizer).__name__
        raise ValueError(f"{name}.load_state_dict: this state was saved by {saved_by(state_dict)}, not by {name} "
                         f"(it has no {optimizer.state_key!r} entry); load a state that {name} saved")
    rest = dict(state_dict)
    return rest, rest.pop(optimizer.state_key)


def saved_by(state_dict: dict) -> str:
    """The optimizer that saved `state_dict`: the first registered one whose own entry it
    holds (ESGD for its variants too), else what its per-parameter state holds."""
    owners = {}
    for spec in OPTIMIZERS.values():
        owners.setdefault(getattr(spec.cls, "state_key", None), spec.cls.__name__)
    found = [owners[key] for key in state_dict if key in owners]
    if found:
        return found[0]
    entries = sorted({entry for state in state_dict.get("state", {}).values() for entry in state})
    return f"another optimizer (per-parameter state: {', '.join(entries) or 'none'})"


def evaluate(closure) -> torch.Tensor | None:
    """The loss that `closure()` returns, computed with gradients enabled; None without a closure."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


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
