"""Question 1c: the activations' closed-form derivatives (`pnf.fields.activate`) against
autograd differentiating the same formulas operation by operation, per gradient step
and per curvature step (gradient + one Hessian-vector product by double backward)."""

import contextlib

import torch

from benchmarks.common import Size, Table, interleaved, matmul_ratio_and_share
from benchmarks.steps import field_steps
from pnf import fields
from pnf.fields import ACTIVATIONS


def autograd_chain(z: torch.Tensor, bump: fields.Bump) -> torch.Tensor:
    """`bump(z)` written as the fields wrote it before `activate`: plain torch operations,
    differentiated by autograd (the reference for the closed forms)."""
    if isinstance(bump, fields.Gaussian):
        return torch.exp(torch.clamp(-0.5 * (z / bump.sigma) ** 2, min=fields.EXP_FLOOR))
    if isinstance(bump, fields.Envelope):
        return torch.exp(torch.clamp(-((bump.scale * z) ** 2), min=fields.EXP_FLOOR))
    raise TypeError(f"no autograd formula for {bump!r}")


@contextlib.contextmanager
def differentiated_by(name: str):
    """Within: the fields' activations differentiated by "closed forms" (the package)
    or by "autograd" (`autograd_chain`)."""
    packaged = fields.activate
    if name == "autograd":
        fields.activate = autograd_chain
    try:
        yield
    finally:
        fields.activate = packaged


def in_variant(name: str, run):
    def timed():
        with differentiated_by(name):
            return run()

    return timed


def run(size: Size, dev: torch.device) -> list[Table]:
    names = ("autograd", "closed forms")
    table = Table(
        f"1c. Activation derivatives: autograd's chain vs closed forms (batch {size.batch_size})",
        ["activation"] + [f"{kind} {name} ms" for name in names for kind in ("grad", "curvature")]
        + [f"curvature/grad {name}" for name in names]
        + ["matmuls: curvature/grad", "grad step time in matmuls", "floor", "max |ΔHv| / max |Hv|"],
    )
    for activation in ACTIVATIONS:
        _, _, _, _, gradient, curvature = field_steps(activation, size, dev)

        steps = {(kind, name): in_variant(name, step) for name in names
                 for kind, step in (("grad", gradient), ("curvature", curvature))}
        t = interleaved(steps, size.repeats, dev)
        matmul_ratio, gradient_share = matmul_ratio_and_share(curvature, gradient, dev)
        reference, closed = in_variant("autograd", curvature)(), curvature()
        error = max(float((a - b).abs().max()) for a, b in zip(closed, reference))
        scale = max(float(a.abs().max()) for a in reference)
        table.rows.append([activation] + [1e3 * t[key] for key in steps]
                          + [t["curvature", name] / t["grad", name] for name in names]
                          + [matmul_ratio, gradient_share, matmul_ratio * gradient_share, error / scale])
    table.notes += [
        "A curvature step is `loss.backward(create_graph=True)` then one Hessian-vector product "
        "(`pnf.optim.hutchinson.hessian_vector_products`); a gradient step is `loss.backward()`. Target ≤ 2.2×.",
        "Closed forms: `pnf.fields.activate` (f, f' and f'' written once, double backward a few products per layer) "
        "for the Gaussian bumps (Gaussian layer, Gabor envelope); autograd: the same formulas as plain torch "
        "operations (`benchmarks.activations.autograd_chain`). sin, cos and ReLU are plain torch in both.",
        "Matrix products, by the profiler (`benchmarks.common.matmul_time`, closed forms): an exact Hv by double "
        "backward runs about three times the gradient step's products (`matmuls: curvature/grad`). `floor` = that "
        "ratio × the gradient step's time share in products: the curvature/grad ratio if everything but the "
        "products cost nothing — no rewrite of the activations can go below it.",
    ]
    return [table]
