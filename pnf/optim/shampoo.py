"""Shampoo as the paper's code runs it: Google Research's PyTorch Shampoo (Anil et al.
2020, "Scalable second order optimization"), through `pytorch_optimizer.ScalableShampoo`,
a maintained port of that same code.

The paper's settings of that code (its `ShampooHyperParams` defaults, lr 0.1): momentum
0.9 with Nesterov, statistics summed over all steps (β2 = 1), every statistic and
inverse 4th root recomputed at every step (`preconditioning_compute_steps = 1`), blocks
of 128, small dimensions merged, SGD grafting (the Shampoo direction with the SGD step
norm), diagonal ε 1e-6, matrix ε 1e-12, no weight decay.

`pytorch_optimizer` implements β2 = 1 (summed statistics) but its argument check only
admits β2 < 1, so `Shampoo` validates its own arguments and sets β2 = 1 on the
parameter groups. Its state holds Python preconditioner objects: as with any torch
optimizer, load a *copy* of a state_dict (what `torch.save`/`torch.load` gives). Their
classes are registered with `torch.serialization.add_safe_globals`, so a saved state loads
with `weights_only=True`: loading may build these objects and set their attributes, which
runs none of the file's code.
"""

import torch
from pytorch_optimizer import ScalableShampoo
from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting, SGDGraft
from pytorch_optimizer.optimizer.utils.partition import BlockPartitioner, PreConditionerType
from pytorch_optimizer.optimizer.utils.preconditioner import PreConditioner

from pnf.optim.registry import OptimizerSpec, check, register


class Shampoo(ScalableShampoo):
    """Shampoo with the paper code's settings; `lr` 0.1 and `momentum` 0.9 (Nesterov)."""

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, block_size: int = 128,
                 preconditioning_compute_steps: int = 1, diagonal_eps: float = 1e-6,
                 matrix_eps: float = 1e-12):
        check(("learning rate", lr, "must be >= 0"), ("momentum", momentum, "must lie in [0, 1)"))
        super().__init__(
            params, lr=lr, betas=(momentum, 0.0), start_preconditioning_step=1,
            preconditioning_compute_steps=preconditioning_compute_steps, statistics_compute_steps=1,
            block_size=block_size, graft_type=LayerWiseGrafting.SGD, nesterov=True,
            diagonal_eps=diagonal_eps, matrix_eps=matrix_eps,
        )
        self.defaults["betas"] = (momentum, 1.0)

    def add_param_group(self, param_group: dict) -> None:
        """Every group sums its statistics (β2 = 1), keeping its own momentum."""
        super().add_param_group({**param_group, "betas": (param_group.get("betas", self.defaults["betas"])[0], 1.0)})


torch.serialization.add_safe_globals([PreConditioner, PreConditionerType, BlockPartitioner, SGDGraft])
register("shampoo", OptimizerSpec(Shampoo, {"lr": 0.1}, label="Shampoo"))
