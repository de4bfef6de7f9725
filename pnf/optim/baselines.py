"""torch's own optimizers with the paper code's presets: Adam and SGD."""

import torch

from pnf.optim.registry import OptimizerSpec, register

register("adam", OptimizerSpec(torch.optim.Adam, {"lr": 1e-4, "weight_decay": 1e-8}, {"relu": {"lr": 1e-3}},
                               label="Adam"))
register("sgd", OptimizerSpec(torch.optim.SGD, {"lr": 1.0}, label="SGD"))
