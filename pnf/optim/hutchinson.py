"""Hutchinson curvature shared by the diagonal curvature optimizers (ESGD, AdaHessian).

For a Rademacher vector v (entries ±1) and the Hessian H of the mini-batch loss,

- `E[v ⊙ Hv] = diag H` (Hutchinson's Jacobi estimate; `|v ⊙ Hv| = |Hv|`),
- `E[(Hv)²] = diag(H²)` (the equilibration estimate, Dauphin et al. 2015).

`CurvatureOptimizer` is the base of optimizers that need `Hv`: it owns the seeded
generator of the vectors (saved in `state_dict`), the ways to drive it and their error
messages. A subclass says when the curvature is due (`should_create_graph`) and what to do
with the gradients and products (`update`). At a curvature step the backward pass must
keep its graph; `optimizer.should_create_graph()` says whether the next step is one.
Three ways to drive it give the same trajectory:

    # (a) backward, then step (the paper's code)
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward(create_graph=optimizer.should_create_graph())
    optimizer.step()

    # (b) PyTorch's closure without arguments
    def closure():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward(create_graph=optimizer.should_create_graph())
        return loss
    optimizer.step(closure)

    # (c) a closure that takes create_graph (pnf.train's loop, for every optimizer)
    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward(create_graph=create_graph)
        return loss
    optimizer.step(closure)
"""

import inspect
import warnings

import torch

from pnf.optim.registry import own_state

# What to write so that the backward keeps its graph, per way of driving the optimizer.
GRAPH_FIX = {
    "no closure": "call loss.backward(create_graph=optimizer.should_create_graph()) before optimizer.step()",
    "closure()": "the closure must call loss.backward(create_graph=optimizer.should_create_graph())",
    "closure(create_graph)": "the closure must call loss.backward(create_graph=create_graph) "
                             "with the create_graph it receives",
}


LOW_PRECISION = (torch.float16, torch.bfloat16)  # parameter dtypes refused (see CurvatureOptimizer.add_param_group)


def rademacher_like(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A tensor of p's shape and dtype with independent entries ±1, drawn from `generator`."""
    bits = torch.randint(0, 2, p.shape, generator=generator, device=p.device)
    return (2 * bits - 1).to(p.dtype)


def hessian_vector_products(params: list[torch.Tensor], vectors: list[torch.Tensor], name: str) -> list[torch.Tensor]:
    """`Hv` per tensor by double backward through `p.grad` (which must carry its graph).

    `vectors[i]` has the shape of `params[i]`; the products have the same shapes. The
    gradients are detached afterwards, breaking the grad <-> graph cycle.
    """
    if any(p.grad.grad_fn is None for p in params):
        raise RuntimeError(f"{name} needs the gradient graph: compute the gradients with loss.backward(create_graph=True)")
    products = torch.autograd.grad([p.grad for p in params], params, grad_outputs=vectors)
    for p in params:
        p.grad = p.grad.detach()
    return list(products)


def takes_create_graph(closure) -> bool:
    """Whether `closure` accepts a `create_graph` keyword (by name or through `**kwargs`)."""
    return any(
        (p.name == "create_graph" and p.kind != p.POSITIONAL_ONLY) or p.kind == p.VAR_KEYWORD
        for p in inspect.signature(closure).parameters.values()
    )


class CurvatureOptimizer(torch.optim.Optimizer):
    """Base of optimizers that use Hessian-vector products with Rademacher vectors.

    Subclasses implement `should_create_graph() -> bool` and
    `update(params, products, vectors)` (products and vectors are None when no
    curvature was computed this step), and name their step counters (attributes) in
    `counter_names`. `state_key` names the entry of `state_dict` that holds the
    counters and the generator.
    """

    state_key = "curvature"
    counter_names: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict, seed: int):
        super().__init__(params, defaults)
        self.generator = torch.Generator(device=self.param_groups[0]["params"][0].device).manual_seed(seed)

    def add_param_group(self, param_group: dict) -> None:
        """torch's, refusing 16-bit parameters: their curvature average would underflow."""
        super().add_param_group(param_group)
        low = sorted({str(p.dtype).removeprefix("torch.") for p in self.param_groups[-1]["params"]
                      if p.dtype in LOW_PRECISION})
        if low:
            self.param_groups.pop()
            raise ValueError(f"{type(self).__name__}: parameters of dtype {', '.join(low)} are not supported; use "
                             "float32 or float64 parameters (model.float(); torch.autocast for 16-bit compute): "
                             "in 16 bits the curvature average underflows to 0 and the steps blow up to lr / eps")

    def update(self, params, products, vectors) -> None:
        raise NotImplementedError

    def should_create_graph(self) -> bool:
        """Whether the next step computes curvature, so that its backward must be
        `loss.backward(create_graph=True)`. Asking does not change the optimizer."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):
        """One step from the gradients in `p.grad` (no closure) or from a closure that
        recomputes the loss and its gradients and returns the loss: `closure()` (which
        asks `should_create_graph()`) or `closure(create_graph: bool)`."""
        refresh, name = self.should_create_graph(), type(self).__name__
        if closure is None:
            style, evaluate = "no closure", lambda: None
        elif takes_create_graph(closure):
            style, evaluate = "closure(create_graph)", lambda: closure(create_graph=refresh)
        else:
            style, evaluate = "closure()", closure
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            loss = evaluate()
            params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
            if not params:
                raise RuntimeError(f"{name}.step found no gradients; fix: {GRAPH_FIX[style]}")
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError(f"{name} does not support sparse gradients")
            if refresh and any(p.grad.grad_fn is None for p in params):
                raise RuntimeError(f"{name} computes curvature at this step and needs the gradient graph; "
                                   f"fix: {GRAPH_FIX[style]}")
            vectors = [rademacher_like(p, self.generator) for p in params] if refresh else None
            products = hessian_vector_products(params, vectors, name) if refresh else None
        self.update(params, products, vectors)
        return loss

    def state_dict(self) -> dict:
        """torch's state plus the step counters and the Rademacher generator."""
        counters = {name: getattr(self, name) for name in self.counter_names}
        return {**super().state_dict(), self.state_key: {**counters, "generator": self.generator.get_state()}}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict, counters = own_state(self, state_dict)
        super().load_state_dict(state_dict)
        self.generator.set_state(counters["generator"])
        for name in self.counter_names:
            setattr(self, name, counters[name])
