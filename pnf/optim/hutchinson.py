"""Hutchinson curvature shared by the diagonal curvature optimizers (ESGD, AdaHessian).

For a Rademacher vector v (entries ±1) and the Hessian H of the mini-batch loss,

- `E[v ⊙ Hv] = diag H` (Hutchinson's Jacobi estimate; `|v ⊙ Hv| = |Hv|`),
- `E[(Hv)²] = diag(H²)` (the equilibration estimate, Dauphin et al. 2015).

`CurvatureOptimizer` is the base of optimizers that need `Hv`: it owns the seeded
generator of the vectors (saved in `state_dict`), the closure protocol and its error
messages. A subclass says when the curvature is due (`curvature_due`) and what to do
with the gradients and products (`update`). The closure must accept `create_graph`::

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward(create_graph=create_graph)
        return loss

    optimizer.step(closure)
"""

import warnings

import torch


def rademacher_like(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A tensor of p's shape and dtype with independent entries ±1, drawn from `generator`."""
    bits = torch.randint(0, 2, p.shape, generator=generator, device=p.device)
    return (2 * bits - 1).to(p.dtype)


def hessian_vector_products(params: list[torch.Tensor], vectors: list[torch.Tensor], name: str) -> list[torch.Tensor]:
    """`Hv` per tensor by double backward through `p.grad` (which must carry its graph).

    `vectors[i]` has the shape of `params[i]`; the products have the same shapes. The
    gradients are detached afterwards, breaking the grad <-> graph cycle.
    """
    for p in params:
        if p.grad.grad_fn is None:
            raise RuntimeError(
                f"{name} needs the gradient graph at curvature steps: its closure must call "
                "loss.backward(create_graph=create_graph) with the create_graph it receives"
            )
    products = torch.autograd.grad([p.grad for p in params], params, grad_outputs=vectors)
    for p in params:
        p.grad = p.grad.detach()
    return list(products)


class CurvatureOptimizer(torch.optim.Optimizer):
    """Base of optimizers that use Hessian-vector products with Rademacher vectors.

    Subclasses implement `curvature_due() -> bool` and
    `update(params, products, vectors)` (products and vectors are None when no
    curvature was computed this step), and may extend `counters()` /
    `load_counters()` with their own step counters. `state_key` names the entry of
    `state_dict` that holds the counters and the generator.
    """

    state_key = "curvature"

    def __init__(self, params, defaults: dict, seed: int):
        super().__init__(params, defaults)
        device = self.param_groups[0]["params"][0].device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def curvature_due(self) -> bool:
        raise NotImplementedError

    def update(self, params, products, vectors) -> None:
        raise NotImplementedError

    def _params_with_grad(self) -> list[torch.Tensor]:
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        return params

    @torch.no_grad()
    def step(self, closure=None):
        """One step. `closure(create_graph: bool)` recomputes the loss, calls
        `loss.backward(create_graph=create_graph)` and returns the loss."""
        name = type(self).__name__
        if closure is None:
            raise RuntimeError(
                f"{name}.step needs a closure(create_graph=False) that zeroes the gradients, "
                "computes the loss, calls loss.backward(create_graph=create_graph) and "
                "returns the loss; see pnf.optim.hutchinson"
            )
        refresh = self.curvature_due()
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            loss = closure(create_graph=refresh)
            params = self._params_with_grad()
            vectors = [rademacher_like(p, self.generator) for p in params] if refresh else None
            products = hessian_vector_products(params, vectors, name) if refresh else None
        self.update(params, products, vectors)
        return loss

    def counters(self) -> dict:
        """The subclass's step counters, saved with the generator."""
        return {}

    def load_counters(self, counters: dict) -> None:
        pass

    def state_dict(self) -> dict:
        """torch's state plus the step counters and the Rademacher generator."""
        return {**super().state_dict(), self.state_key: {**self.counters(), "generator": self.generator.get_state()}}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        counters = dict(state_dict.pop(self.state_key))
        super().load_state_dict(state_dict)
        self.generator.set_state(counters.pop("generator"))
        self.load_counters(counters)
