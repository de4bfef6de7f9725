"""Question 1: ESGD against Adam per step, amortised over its curvature schedule, and
one Hessian-vector product by double backward against `torch.func` forward-over-reverse.

Every optimizer here runs with lr = 0: its arithmetic is the same as at the paper's
rate, and the weights (so the activations' arguments) stay fixed across repeats.
"""

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp

from benchmarks.common import Size, Table, interleaved
from pnf.fields import ACTIVATIONS, make_field
from pnf.optim import OPTIMIZERS, make_optimizer
from pnf.optim.hutchinson import hessian_vector_products, rademacher_like
from pnf.train import optimizer_step


def field_and_batch(activation: str, size: Size, dev: torch.device, batch_size: int | None = None):
    """The paper's 2D field (2 -> hidden × 4 -> 3) and a batch `[B, 2]`, `[B, 3]`."""
    torch.manual_seed(0)
    model = make_field(activation, 2, 3, hidden_features=size.hidden_features).to(dev)
    batch = batch_size or size.batch_size
    x = torch.rand(batch, 2, device=dev) * 2 - 1
    y = torch.rand(batch, 3, device=dev)
    return model, x, y


def stepper(model, optimizer, x, y):
    """One `optimizer.step(closure)` exactly as `pnf.train` drives it."""
    return lambda: optimizer_step(model, optimizer, F.mse_loss, x, y)


def refreshes(steps: int, warmup: int, every: int) -> int:
    """Curvature refreshes in `steps` ESGD steps (the rule of `ESGD.curvature_due`)."""
    count, since = 0, 0
    for step in range(steps):
        if step < warmup or since >= every:
            count, since = count + 1, 0
        since += 1
    return count


def esgd_vs_adam(size: Size, dev: torch.device) -> Table:
    """Per-step seconds of Adam, ESGD without and with a curvature refresh, and ESGD's
    amortised cost over an epoch, the paper's run and the steady state."""
    preset = OPTIMIZERS["esgd"].preset
    warmup, every = preset["d_warmup"], preset["update_d_every"]
    epoch_steps = -(-size.resolution**2 // size.batch_size)
    table = Table(
        f"1a. ESGD / Adam per step (batch {size.batch_size}, refresh every {every} after {warmup} warm-up steps)",
        ["activation", "Adam ms", "ESGD plain ms", "ESGD refresh ms", "plain/Adam",
         f"epoch 1 ({epoch_steps} steps)/Adam", f"{size.run_steps} steps/Adam", "steady state/Adam"],
    )
    for activation in ACTIVATIONS:
        model, x, y = field_and_batch(activation, size, dev)
        models = {name: copy.deepcopy(model) for name in ("adam", "plain", "refresh")}
        optimizers = {
            "adam": make_optimizer("adam", models["adam"].parameters(), activation, lr=0.0),
            "plain": make_optimizer("esgd", models["plain"].parameters(), activation, lr=0.0,
                                    d_warmup=1, update_d_every=10**9),
            "refresh": make_optimizer("esgd", models["refresh"].parameters(), activation, lr=0.0,
                                      d_warmup=10**9),
        }
        t = interleaved({name: stepper(models[name], opt, x, y) for name, opt in optimizers.items()},
                        size.repeats, dev)

        def amortised(steps: int) -> float:
            n = refreshes(steps, warmup, every)
            return (n * t["refresh"] + (steps - n) * t["plain"]) / (steps * t["adam"])

        steady = ((every - 1) * t["plain"] + t["refresh"]) / (every * t["adam"])
        table.rows.append([activation, 1e3 * t["adam"], 1e3 * t["plain"], 1e3 * t["refresh"],
                           t["plain"] / t["adam"], amortised(epoch_steps), amortised(size.run_steps), steady])
    table.notes += [
        "Amortised ratios combine the measured per-step times with the refresh count of "
        "`ESGD.curvature_due` (every step of the warm-up, then one in every 100). Target: steady state ≤ 1.05×.",
        f"{size.run_steps} steps = the paper's 200 epochs at 256², batch 512.",
    ]
    return table


def squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The MSE loss written out: `F.mse_loss` fails under `jvp` of `grad` in torch 2.13
    ("ZeroTensors are immutable"), so all three variants of 1b use this one."""
    return ((prediction - target) ** 2).mean()


def gradient_and_curvature_steps(model, x: torch.Tensor, y: torch.Tensor, params: list, vectors: list):
    """Two closures on the batch (x, y): a plain gradient step, and ESGD's curvature step (a
    gradient with its graph, then the products `Hv` with `vectors` by double backward)."""

    def gradient():
        model.zero_grad(set_to_none=True)
        squared_error(model(x), y).backward()

    def curvature():
        model.zero_grad(set_to_none=True)
        squared_error(model(x), y).backward(create_graph=True)
        return hessian_vector_products(params, vectors, "bench")

    return gradient, curvature


def field_steps(activation: str, size: Size, dev: torch.device):
    """`field_and_batch`, one seeded Rademacher vector per parameter, and the two closures
    of `gradient_and_curvature_steps`: (model, x, y, vectors, gradient, curvature)."""
    model, x, y = field_and_batch(activation, size, dev)
    params = list(model.parameters())
    generator = torch.Generator(device=dev).manual_seed(0)
    vectors = [rademacher_like(p, generator) for p in params]
    return model, x, y, vectors, *gradient_and_curvature_steps(model, x, y, params, vectors)


def hvp_methods(size: Size, dev: torch.device) -> Table:
    """Seconds of a gradient + Hv by double backward (ESGD's path) and by `torch.func`
    forward-over-reverse, each relative to a plain gradient step."""
    table = Table(
        f"1b. One Hessian-vector product step / gradient step (batch {size.batch_size})",
        ["activation", "grad ms", "double backward ms", "fwd-over-rev ms",
         "double backward/grad", "fwd-over-rev/grad", "faster", "max |ΔHv| / max |Hv|"],
    )
    for activation in ACTIVATIONS:
        model, x, y, vectors, gradient, double_backward = field_steps(activation, size, dev)
        names = [name for name, _ in model.named_parameters()]

        def loss_of(weights):
            return squared_error(functional_call(model, weights, (x,)), y)

        detached = {name: p.detach() for name, p in model.named_parameters()}
        tangents = dict(zip(names, vectors))

        def forward_over_reverse():
            _, products = jvp(grad(loss_of), (detached,), (tangents,))
            return [products[name] for name in names]

        t = interleaved({"grad": gradient, "double": double_backward, "forward": forward_over_reverse},
                        size.repeats, dev)
        reference = double_backward()
        error = max(float((a - b).abs().max()) for a, b in zip(reference, forward_over_reverse()))
        scale = max(float(a.abs().max()) for a in reference)
        faster = "double backward" if t["double"] <= t["forward"] else "forward-over-reverse"
        table.rows.append([activation, 1e3 * t["grad"], 1e3 * t["double"], 1e3 * t["forward"],
                           t["double"] / t["grad"], t["forward"] / t["grad"], faster, error / scale])
    table.notes += [
        "Both variants return the gradient and Hv for one Rademacher v; target ≤ 2.2× a gradient step (see 1c).",
        "Double backward is `loss.backward(create_graph=True)` then `pnf.optim.hutchinson.hessian_vector_products` "
        "(ESGD's path); forward-over-reverse is `torch.func.jvp(torch.func.grad(loss), ...)` with `functional_call`.",
    ]
    return table


def run(size: Size, dev: torch.device) -> list[Table]:
    return [esgd_vs_adam(size, dev), hvp_methods(size, dev)]
