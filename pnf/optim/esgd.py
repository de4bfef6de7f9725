"""ESGD: Equilibrated SGD (Dauphin, de Vries, Bengio 2015) as the paper's code runs it.

Per parameter tensor with mini-batch gradient g:
- at curvature steps (every step of the first `d_warmup`, then every `update_d_every`
  steps) draw a Rademacher v and update `D <- β2 D + (1-β2) (Hv)²`; since
  `E[(Hv)²] = diag(H²)`, `sqrt(D)` estimates the equilibration preconditioner;
- `m <- β1 m + (1-β1) g`;
- `θ <- θ - lr (m / (1-β1^t)) / (sqrt(D / (1-β2^k)) + ε)`.

`k` is where the paper's code has a quirk: it counts *every* step (`k = t`), although D
is refreshed only at curvature steps, so after the warm-up the bias-corrected D shrinks
and the effective learning rate grows (about 2x by t = 25,600). That is the default
(`bias_correction="steps"`), since the paper's numbers come from it; the consistent
correction counts refreshes (`bias_correction="refreshes"`).

The Hessian-vector product comes from a double backward through the gradients, so at
curvature steps the backward pass must keep its graph. ESGD is driven as the paper's
code drives it, by PyTorch's argument-less closure, or by a closure that takes
`create_graph` (all three give the same trajectory; see `pnf.optim.hutchinson`)::

    loss.backward(create_graph=optimizer.should_create_graph())
    optimizer.step()

The optimizer asks for the graph only at curvature steps, so a training loop never
decides it and never needs to know which optimizer it runs.
"""

import math

import torch

from pnf.optim.hutchinson import CurvatureOptimizer
from pnf.optim.registry import OptimizerSpec, check, register


class ESGD(CurvatureOptimizer):
    """Equilibrated SGD with momentum; see the module docstring for the update.
    The Rademacher vectors, the closure protocol and the generator in `state_dict`
    come from `pnf.optim.hutchinson.CurvatureOptimizer`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (paper: 0.15; 0.1 for ReLU(PE)).
        betas: (β1, β2), averaging of gradients and of `(Hv)²`.
        eps: damping added to the preconditioner (paper: 1e-4).
        weight_decay: decoupled weight decay, as in the paper's code (default 0).
        update_d_every: steps between curvature refreshes after the warm-up (paper: 100).
        d_warmup: the first steps, each of which refreshes the curvature (paper: 50).
        bias_correction: "steps" (the paper's code) or "refreshes" (consistent).
        seed: seed of the optimizer's own generator of Rademacher vectors.
    """

    state_key = "esgd"
    counter_names = ("steps", "refreshes", "steps_since_refresh")

    def __init__(self, params, lr: float = 0.15, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-4,
                 weight_decay: float = 0.0, update_d_every: int = 100, d_warmup: int = 50,
                 bias_correction: str = "steps", seed: int = 0):
        check(("learning rate", lr, "must be >= 0"), ("betas", betas, "a pair (β1, β2), each in [0, 1)"),
              ("eps", eps, "must be >= 0"), ("weight_decay", weight_decay, "must be >= 0"),
              ("update_d_every", update_d_every, "a positive integer"),
              ("d_warmup", d_warmup, "a positive integer"),
              ("bias_correction", bias_correction, ("steps", "refreshes")))
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, seed)
        self.update_d_every = int(update_d_every)
        self.d_warmup = int(d_warmup)
        self.bias_correction = bias_correction
        self.steps = 0  # steps taken, t
        self.refreshes = 0  # curvature refreshes, k with the consistent correction
        self.steps_since_refresh = 0

    def should_create_graph(self) -> bool:
        """Whether the next step refreshes the curvature estimate (and needs the graph)."""
        return self.steps < self.d_warmup or self.steps_since_refresh >= self.update_d_every

    def learning_rate(self, group: dict) -> float:
        """The learning rate of `group` at the step being taken (`self.steps` counts it)."""
        return group["lr"]

    def accumulate_curvature(self, averages: list, products: list, vectors: list, beta2: float) -> None:
        """`D <- β2 D + (1-β2) (Hv)²` in place for each tensor (the equilibration estimate)."""
        torch._foreach_mul_(averages, beta2)
        torch._foreach_addcmul_(averages, products, products, value=1 - beta2)

    def averages(self, params: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The running averages m and D of `params`, zeros before their first step."""
        for p in params:
            if not self.state[p]:
                self.state[p].update(exp_avg=torch.zeros_like(p), exp_avg_d=torch.zeros_like(p))
        return [self.state[p]["exp_avg"] for p in params], [self.state[p]["exp_avg_d"] for p in params]

    def update(self, params, products, vectors) -> None:
        """The ESGD update of `params` from their gradients and, at curvature steps,
        the products `Hv` with the Rademacher `vectors`; one `torch._foreach_*` op per
        param group and operation."""
        refresh = products is not None
        self.steps += 1
        self.refreshes += int(refresh)
        self.steps_since_refresh = 1 if refresh else self.steps_since_refresh + 1
        k = self.steps if self.bias_correction == "steps" else self.refreshes

        product_of = dict(zip(params, zip(products, vectors))) if refresh else {}
        for group in self.param_groups:
            group_params = [p for p in group["params"] if p.grad is not None]
            if not group_params:
                continue
            beta1, beta2 = group["betas"]
            bias1 = 1 - beta1**self.steps
            bias2 = 1 - beta2**k
            exp_avgs, exp_avg_ds = self.averages(group_params)
            torch._foreach_mul_(exp_avgs, beta1)
            torch._foreach_add_(exp_avgs, [p.grad for p in group_params], alpha=1 - beta1)
            if refresh:
                self.accumulate_curvature(exp_avg_ds, [product_of[p][0] for p in group_params],
                                          [product_of[p][1] for p in group_params], beta2)
            denominators = torch._foreach_sqrt(exp_avg_ds)
            torch._foreach_div_(denominators, math.sqrt(bias2))
            torch._foreach_add_(denominators, group["eps"])
            lr = self.learning_rate(group)
            if group["weight_decay"] != 0:  # multiplying by 1 changes nothing
                torch._foreach_mul_(group_params, 1 - group["weight_decay"] * lr)
            torch._foreach_addcdiv_(group_params, exp_avgs, denominators, value=-lr / bias1)


PRESET = {"lr": 0.15, "betas": (0.9, 0.999), "eps": 1e-4, "update_d_every": 100, "d_warmup": 50}
register("esgd", OptimizerSpec(ESGD, PRESET, {"relu": {"lr": 0.1}}, label="ESGD", seeded=True))
