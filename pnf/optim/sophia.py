"""SophiaH (Liu et al. 2023, "Sophia: a scalable stochastic second-order optimizer"),
driven by pnf's curvature protocol.

Per parameter tensor with gradient g, every `update_period` steps (the first included)
a Hutchinson estimate `ĥ = v ⊙ Hv` of diag H (v Rademacher) updates
`h <- β2 h + (1-β2) ĥ`; every step

    m <- β1 m + (1-β1) g,
    θ <- θ (1 - lr·weight_decay) - lr · clip(m / max(h, ε), -p, p),

so where the curvature is small or negative the step is sign-like with size lr·p.
This is `pytorch_optimizer.SophiaH`'s update (a test checks them against each other).
We drive it through `pnf.optim.hutchinson.CurvatureOptimizer` rather than wrap the
library's class, whose step draws its vectors from torch's global generator and reads
the Hessian graph from a backward it cannot ask for: here the optimizer asks the
closure for the graph (`closure(create_graph=True)`) only at curvature steps, draws the
vectors from its own seeded generator and saves that generator in `state_dict`, as ESGD
does. The vectors are Rademacher (the library's default is Gaussian; both are unbiased,
Rademacher with the smaller variance).

Preset: `pytorch_optimizer.SophiaH`'s defaults (version 4.1.0): lr 0.06, betas
(0.96, 0.99), p 0.01, update period 10, ε 1e-12, no weight decay.
"""

import torch

from pnf.optim.hutchinson import CurvatureOptimizer
from pnf.optim.registry import OptimizerSpec, check, register


class SophiaH(CurvatureOptimizer):
    """SophiaH with Hutchinson curvature every `update_period` steps; see the module docstring.

    Args:
        params: parameters or parameter groups.
        lr: learning rate; a step moves each coordinate by at most lr·p.
        betas: (β1, β2), averaging of gradients and of the curvature estimates.
        p: clipping bound of the preconditioned step `m / max(h, ε)`.
        eps: floor of the curvature in the denominator.
        weight_decay: decoupled weight decay.
        update_period: steps between curvature estimates (the first step has one).
        seed: seed of the optimizer's own generator of Rademacher vectors.
    """

    state_key = "sophia"
    counter_names = ("steps",)

    def __init__(self, params, lr: float = 0.06, betas: tuple[float, float] = (0.96, 0.99), p: float = 0.01,
                 eps: float = 1e-12, weight_decay: float = 0.0, update_period: int = 10, seed: int = 0):
        check(("learning rate", lr, "must be >= 0"), ("betas", betas, "a pair (β1, β2), each in [0, 1)"),
              ("p (clipping bound)", p, "must be > 0"), ("eps", eps, "must be > 0"),
              ("weight_decay", weight_decay, "must be >= 0"),
              ("update_period", update_period, "a positive integer"))
        defaults = dict(lr=lr, betas=betas, p=p, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, seed)
        self.update_period = int(update_period)
        self.steps = 0

    def should_create_graph(self) -> bool:
        """Whether the next step estimates the curvature (and needs the graph)."""
        return self.steps % self.update_period == 0

    def update(self, params, products, vectors) -> None:
        """The SophiaH update of `params` from their gradients and, at curvature steps,
        the products `Hv` with the Rademacher `vectors`."""
        self.steps += 1
        estimate_of = {p: v * hv for p, hv, v in zip(params, products, vectors)} if products is not None else {}
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum"], state["hessian_moment"] = torch.zeros_like(p), torch.zeros_like(p)
                state["momentum"].lerp_(p.grad, 1 - beta1)
                if p in estimate_of:
                    state["hessian_moment"].lerp_(estimate_of[p], 1 - beta2)
                step = (state["momentum"] / state["hessian_moment"].clamp(min=group["eps"])).clamp_(-group["p"], group["p"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(step, alpha=-group["lr"])


register("sophiah", OptimizerSpec(
    SophiaH, {"lr": 0.06, "betas": (0.96, 0.99), "p": 0.01, "update_period": 10}, label="SophiaH", seeded=True,
    source="pytorch-optimizer 4.1.0's SophiaH defaults (lr 0.06, betas (0.96, 0.99), p 0.01, period 10)",
))
