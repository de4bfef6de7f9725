"""Full-batch L-BFGS (Liu & Nocedal 1989), `torch.optim.LBFGS`.

One `step(closure)` runs up to `max_iter` quasi-Newton iterations, each a strong-Wolfe
line search along the direction from the last `history_size` curvature pairs, and so
calls the closure several times (up to `max_eval`, 1.25 `max_iter` by default) without
arguments; pnf's `closure(create_graph=False)` serves it as it is. The paper calls the
method unsuitable for stochastic training: its line search assumes one fixed loss, so
it is registered `full_batch` and a run should make the batch the whole image.

Preset: torch's defaults (lr 1, max_iter 20, history_size 100) with the strong-Wolfe
line search, the usual full-batch setting for neural networks (without a line search,
torch's unit step overshoots on ill-conditioned losses).
"""

import torch

from pnf.optim.registry import OptimizerSpec, check, evaluate, register


class LBFGS(torch.optim.LBFGS):
    """`torch.optim.LBFGS` with its arguments checked when built (torch checks some only at the first step).

    Args:
        params: parameters (one group: L-BFGS keeps one flat history).
        lr: scale of the first trial step of each line search.
        max_iter: quasi-Newton iterations per `step`.
        history_size: curvature pairs kept.
        line_search_fn: "strong_wolfe" or None (fixed steps of lr).
    """

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, history_size: int = 100,
                 line_search_fn: str | None = "strong_wolfe"):
        check(("learning rate", lr, "must be >= 0"), ("max_iter", max_iter, "a positive integer"),
              ("history_size", history_size, "a positive integer"),
              ("line_search_fn", line_search_fn, ("strong_wolfe", None)))
        super().__init__(params, lr=lr, max_iter=int(max_iter), history_size=int(history_size),
                         line_search_fn=line_search_fn)

    @torch.no_grad()
    def step(self, closure):
        """Up to `max_iter` iterations on the loss that `closure()` recomputes; returns the
        first loss. At lr 0 (e.g. set by a scheduler) only evaluates the closure, since
        torch's line search divides by the step."""
        if self.param_groups[0]["lr"] == 0.0:
            return evaluate(closure)
        return super().step(closure)


register("lbfgs", OptimizerSpec(
    LBFGS, {"lr": 1.0, "max_iter": 20, "history_size": 100, "line_search_fn": "strong_wolfe"},
    label="L-BFGS (full batch)", full_batch=True,
    source="torch.optim.LBFGS defaults (lr 1, max_iter 20, history 100) with the strong-Wolfe line search",
))
