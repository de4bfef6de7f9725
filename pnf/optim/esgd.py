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

The Hessian-vector product comes from a double backward through the closure, which
must accept `create_graph`::

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward(create_graph=create_graph)
        return loss

    optimizer.step(closure)

The optimizer asks for the graph only at curvature steps, so a training loop never
decides it and never needs to know which optimizer it runs.
"""

import math
import warnings

import torch


class ESGD(torch.optim.Optimizer):
    """Equilibrated SGD with momentum; see the module docstring for the update.

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

    def __init__(
        self,
        params,
        lr: float = 0.15,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-4,
        weight_decay: float = 0.0,
        update_d_every: int = 100,
        d_warmup: int = 50,
        bias_correction: str = "steps",
        seed: int = 0,
    ):
        if not lr >= 0.0:
            raise ValueError(f"invalid learning rate: {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas: {betas}; each must lie in [0, 1)")
        if not eps >= 0.0:
            raise ValueError(f"invalid eps: {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        if int(update_d_every) != update_d_every or update_d_every < 1:
            raise ValueError(f"invalid update_d_every: {update_d_every}; a positive integer")
        if int(d_warmup) != d_warmup or d_warmup < 1:
            raise ValueError(f"invalid d_warmup: {d_warmup}; a positive integer (the first step needs D)")
        if bias_correction not in ("steps", "refreshes"):
            raise ValueError(f"invalid bias_correction: {bias_correction!r}; 'steps' or 'refreshes'")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.update_d_every = int(update_d_every)
        self.d_warmup = int(d_warmup)
        self.bias_correction = bias_correction
        self.steps = 0  # steps taken, t
        self.refreshes = 0  # curvature refreshes, k with the consistent correction
        self.steps_since_refresh = 0
        device = self.param_groups[0]["params"][0].device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def curvature_due(self) -> bool:
        """Whether the next step refreshes the curvature estimate (and needs the graph)."""
        return self.steps < self.d_warmup or self.steps_since_refresh >= self.update_d_every

    def _params_with_grad(self) -> list[torch.Tensor]:
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError("ESGD does not support sparse gradients")
        return params

    def _rademacher_like(self, p: torch.Tensor) -> torch.Tensor:
        bits = torch.randint(0, 2, p.shape, generator=self.generator, device=p.device)
        return (2 * bits - 1).to(p.dtype)

    def _hessian_vector_products(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """`(Hv)` for one Rademacher v per tensor, by double backward through p.grad."""
        for p in params:
            if p.grad.grad_fn is None:
                raise RuntimeError(
                    "ESGD needs the gradient graph at curvature steps: its closure must call "
                    "loss.backward(create_graph=create_graph) with the create_graph it receives"
                )
        vectors = [self._rademacher_like(p) for p in params]
        grads = [p.grad for p in params]
        products = torch.autograd.grad(grads, params, grad_outputs=vectors)
        for p in params:  # break the grad <-> graph cycle
            p.grad = p.grad.detach()
        return list(products)

    @torch.no_grad()
    def step(self, closure=None):
        """One step. `closure(create_graph: bool)` recomputes the loss, calls
        `loss.backward(create_graph=create_graph)` and returns the loss."""
        if closure is None:
            raise RuntimeError(
                "ESGD.step needs a closure(create_graph=False) that zeroes the gradients, "
                "computes the loss, calls loss.backward(create_graph=create_graph) and "
                "returns the loss; see pnf.optim.esgd"
            )
        refresh = self.curvature_due()
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            loss = closure(create_graph=refresh)
            params = self._params_with_grad()
            products = self._hessian_vector_products(params) if refresh else None

        self.steps += 1
        if refresh:
            self.refreshes += 1
            self.steps_since_refresh = 0
        self.steps_since_refresh += 1
        k = self.steps if self.bias_correction == "steps" else self.refreshes

        product_of = dict(zip(params, products)) if refresh else {}
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            bias1 = 1 - beta1**self.steps
            bias2 = 1 - beta2**k
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_d"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avg, exp_avg_d = state["exp_avg"], state["exp_avg_d"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                if refresh:
                    hv = product_of[p]
                    exp_avg_d.mul_(beta2).addcmul_(hv, hv, value=1 - beta2)
                denominator = (exp_avg_d.sqrt() / math.sqrt(bias2)).add_(group["eps"])
                p.mul_(1 - group["weight_decay"] * group["lr"])
                p.addcdiv_(exp_avg, denominator, value=-group["lr"] / bias1)
        return loss

    def state_dict(self) -> dict:
        """torch's state plus the step counters and the Rademacher generator."""
        return {
            **super().state_dict(),
            "esgd": {
                "steps": self.steps,
                "refreshes": self.refreshes,
                "steps_since_refresh": self.steps_since_refresh,
                "generator": self.generator.get_state(),
            },
        }

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        counters = state_dict.pop("esgd")
        super().load_state_dict(state_dict)
        self.steps = counters["steps"]
        self.refreshes = counters["refreshes"]
        self.steps_since_refresh = counters["steps_since_refresh"]
        self.generator.set_state(counters["generator"])
