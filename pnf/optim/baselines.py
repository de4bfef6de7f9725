"""torch's own optimizers with the paper code's presets: Adam and SGD."""

import torch

from pnf.optim.registry import OptimizerSpec, register

ADAM = register("adam", OptimizerSpec(torch.optim.Adam, {"lr": 1e-4, "weight_decay": 1e-8},
                                      {"relu": {"lr": 1e-3}}, label="Adam"))
register("sgd", OptimizerSpec(torch.optim.SGD, {"lr": 1.0}, label="SGD"))


def adam_rates(key: str = "lr") -> tuple[dict, dict]:
    """The paper's Adam learning rates as a preset `{key: lr}` and its per-activation
    changes `{activation: {key: lr}}`, for optimizers whose steps have Adam's scale."""
    per_activation = {activation: {key: options["lr"]} for activation, options in ADAM.per_activation.items()}
    return {key: ADAM.preset["lr"]}, per_activation
