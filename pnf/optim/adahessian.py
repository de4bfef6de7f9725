"""AdaHessian (Yao et al. 2021) as the paper's code runs it, in two variants.

The paper's AdaHessian is ESGD's update with the curvature refreshed at *every* step
(`update_d_every = 1`): momentum `m` of the gradient, a running average `D` of a
Hutchinson statistic, and `θ <- θ - lr (m / (1-β1^t)) / (sqrt(D / (1-β2^t)) + ε)`.
The two variants differ only in the statistic averaged into D:

- `curvature="equilibration"` (the paper's `Adahessian`): `(v ⊙ Hv)² = (Hv)²` for a
  Rademacher v, so `E = diag(H²)` and `sqrt(D)` is the equilibration preconditioner;
- `curvature="jacobi"` (the paper's `Adahessian_J`): `|v ⊙ Hv| = |Hv|`, a Hutchinson
  estimate of `|diag H|` (exact in expectation where diag H dominates the row). As in
  the paper's code, D averages it *linearly* and the step still takes `sqrt(D)`.

We write this ourselves rather than wrap `pytorch_optimizer.AdaHessian`: that one
averages `(v ⊙ Hv)²` only (no Jacobi variant) and draws its own vectors, while ours
shares the Hutchinson machinery, the closure protocol and the seeded generator with
ESGD (`pnf.optim.hutchinson`). The paper code's weight decay (0 in its runs) is taken
decoupled, as in ESGD.
"""

import torch

from pnf.optim.esgd import ESGD
from pnf.optim.registry import OptimizerSpec, check, register


class AdaHessian(ESGD):
    """ESGD refreshing the curvature every step, with statistic `curvature`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (paper: 0.15; 0.1 for ReLU(PE)).
        betas: (β1, β2), averaging of gradients and of the curvature statistic.
        eps: damping added to the preconditioner (paper: 1e-4).
        weight_decay: decoupled weight decay (paper: 0).
        curvature: "equilibration" (`(Hv)²`) or "jacobi" (`|v ⊙ Hv|`).
        seed: seed of the optimizer's own generator of Rademacher vectors.
    """

    state_key = "adahessian"

    def __init__(self, params, lr: float = 0.15, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-4,
                 weight_decay: float = 0.0, curvature: str = "equilibration", seed: int = 0):
        check(("curvature", curvature, ("equilibration", "jacobi")))
        super().__init__(params, lr, betas, eps, weight_decay, update_d_every=1, d_warmup=1, seed=seed)
        self.curvature = curvature

    def accumulate_curvature(self, averages: list, products: list, vectors: list, beta2: float) -> None:
        """`D <- β2 D + (1-β2) s` in place for each tensor, s = `(Hv)²` or `|v ⊙ Hv|`."""
        if self.curvature == "equilibration":
            super().accumulate_curvature(averages, products, vectors, beta2)
        else:
            statistics = torch._foreach_mul(vectors, products)
            torch._foreach_abs_(statistics)
            torch._foreach_mul_(averages, beta2)
            torch._foreach_add_(averages, statistics, alpha=1 - beta2)


PRESET = {"lr": 0.15, "betas": (0.9, 0.999), "eps": 1e-4}
register("adahessian", OptimizerSpec(AdaHessian, {**PRESET, "curvature": "equilibration"}, {"relu": {"lr": 0.1}},
                                     label="AdaHessian", seeded=True))
register("adahessian_j", OptimizerSpec(AdaHessian, {**PRESET, "curvature": "jacobi"}, {"relu": {"lr": 0.1}},
                                       label="AdaHessian (Jacobi)", seeded=True))
