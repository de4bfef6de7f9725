"""Question 1d: how cheap can an exact curvature step be? Pearlmutter's R-operator
(Neural Computation 1994) written by hand for the paper's MLP and MSE loss, against
ESGD's curvature step (double backward), each per gradient step.

The R-operator gives the gradient g and Hv of the mini-batch loss in one forward sweep
carrying the tangent `R{·}` (the derivative along v) and one backward sweep of plain
tensor operations, no autograd graph. Per layer with pre-activations Z (K linear maps of
its input, K = 2 for the Gabor wavelet), h = φ(Z) elementwise:

    RZ = V h_in + W Rh_in + Vb           Rh = Σ_k φ_k RZ_k
    dZ_k = dh φ_k                         RdZ_k = Rdh φ_k + dh Σ_j φ_kj RZ_j
    g_W = dZᵀ h_in                        Hv_W = RdZᵀ h_in + dZᵀ Rh_in
    dh_in = dZ W                          Rdh_in = RdZ W + dZ V

with φ_k, φ_kj the first and second partial derivatives of φ. ESGD does not use it: it
needs the model's layers and the loss, where ESGD needs only the gradients' graph, so it
would replace the `loss.backward(create_graph=...)` interface of other people's loops.
It measures what that rewrite reaches.
"""

import torch
from torch import nn

from benchmarks.common import Size, Table, interleaved, matmul_ratio_and_share
from benchmarks.steps import field_steps
from pnf import fields
from pnf.fields import ACTIVATIONS


def sine(layer, z):
    """sin(ωz): value, [φ'], {(0, 0): φ''}."""
    u = z * layer.omega
    value = torch.sin(u)
    return value, [torch.cos(u).mul_(layer.omega)], {(0, 0): value * -layer.omega**2}


def bump(layer, z):
    """The Gaussian layer's closed forms (`pnf.fields.Bump`)."""
    value = layer.bump.value(z)
    slope = layer.bump.slope(z, value)
    return value, [slope], {(0, 0): layer.bump.curvature(z, value, slope)}


def relu(layer, z):
    """ReLU: φ' the mask, φ'' = 0."""
    return torch.relu(z), [z > 0], {}


def gabor(layer, z):
    """cos(ωa) e(b) with e the envelope bump, z = [a, b]."""
    a, b = z.chunk(2, dim=1)
    u = layer.omega * a
    wave, d_wave = torch.cos(u), torch.sin(u).mul_(-layer.omega)  # cos(ωa) and its derivative
    envelope = layer.window.value(b)
    slope = layer.window.slope(b, envelope)
    value = wave * envelope
    return value, [d_wave * envelope, wave * slope], {
        (0, 0): value * -layer.omega**2,
        (1, 1): wave * layer.window.curvature(b, envelope, slope),
        (0, 1): d_wave * slope,
    }


# Per layer kind: its linear maps (stacked into one Z) and φ with its derivatives.
RULES = {
    fields.SineLayer: (lambda layer: [layer.linear], sine),
    fields.GaussianLayer: (lambda layer: [layer.linear], bump),
    fields.ReLULayer: (lambda layer: [layer.linear], relu),
    fields.GaborLayer: (lambda layer: [layer.frequency, layer.envelope], gabor),
}

# The paper's MLP fields, whose layers RULES differentiates (not, e.g., the hash grid's encoding).
WRITTEN_BY_HAND = [name for name, activation in ACTIVATIONS.items() if activation.layer in RULES]


def stacked(tensors: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim)


def joined(columns: list[torch.Tensor]) -> torch.Tensor:
    """`[N, F]` blocks side by side, `[N, K·F]`."""
    return stacked(columns, dim=1)


def products_sum(pairs) -> torch.Tensor:
    """Σ a ⊙ b over the pairs whose b is not None (a lone b may be a boolean mask)."""
    pairs = [(a, b) for a, b in pairs if b is not None]
    total = pairs[0][0] * pairs[0][1]
    for a, b in pairs[1:]:
        total.addcmul_(a, b)
    return total


def curvature_along(k: int, seconds: dict, rzs: tuple) -> torch.Tensor | None:
    """Σ_j φ_kj RZ_j (None where φ has no second derivatives)."""
    terms = [(seconds[min(k, j), max(k, j)], rz) for j, rz in enumerate(rzs) if (min(k, j), max(k, j)) in seconds]
    return products_sum(terms) if terms else None


def gradient_and_hv(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, vectors: list[torch.Tensor]):
    """(g, Hv) of `mean((model(x) - y)²)` for a field of `pnf.fields.make_field` without
    skips: lists in `model.parameters()` order; `vectors` in the same order."""
    *hidden, output = model
    direction = dict(zip(model.parameters(), vectors))
    maps = [RULES[type(layer)][0](layer) for layer in hidden] + [[output]]
    weights = [(stacked([m.weight for m in ms]), stacked([m.bias for m in ms]),
                stacked([direction[m.weight] for m in ms]), stacked([direction[m.bias] for m in ms])) for ms in maps]
    h = getattr(hidden[0], "encoding", nn.Identity())(x)
    tangent, saved = None, []
    for i, (W, b, V, Vb) in enumerate(weights):
        z = torch.addmm(b, h, W.t())
        rz = torch.addmm(Vb, h, V.t())
        if tangent is not None:
            rz.addmm_(tangent, W.t())
        saved.append((h, tangent, rz))
        if i == len(hidden):
            break
        h, firsts, seconds = RULES[type(hidden[i])][1](hidden[i], z)
        rzs = rz.chunk(len(firsts), dim=1)
        tangent = products_sum(zip(firsts, rzs))
        saved[-1] += (firsts, seconds, rzs)
    dz, rdz = (z - y).mul_(2 / z.numel()), rz.mul_(2 / z.numel())  # the MSE's derivatives
    gradient, products = [], []
    for i in range(len(weights) - 1, -1, -1):
        h_in, tangent_in = saved[i][:2]
        product = rdz.t() @ h_in
        if tangent_in is not None:
            product.addmm_(dz.t(), tangent_in)
        count = len(maps[i])
        gradient = [t for pair in zip((dz.t() @ h_in).chunk(count), dz.sum(0).chunk(count)) for t in pair] + gradient
        products = [t for pair in zip(product.chunk(count), rdz.sum(0).chunk(count)) for t in pair] + products
        if i == 0:
            break
        W, _, V, _ = weights[i]
        dh, rdh = dz @ W, torch.addmm(rdz @ W, dz, V)
        firsts, seconds, rzs = saved[i - 1][3:]
        dz = joined([dh * first for first in firsts])
        rdz = joined([products_sum([(rdh, first), (dh, curvature_along(k, seconds, rzs))])
                      for k, first in enumerate(firsts)])
    return gradient, products


def relative_error(values: list[torch.Tensor], references: list[torch.Tensor]) -> float:
    """The largest `max |Δ| / max |reference|` over the tensors."""
    return max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(values, references))


def run(size: Size, dev: torch.device) -> list[Table]:
    table = Table(
        f"1d. Curvature step by a hand-written R-operator / gradient step (batch {size.batch_size})",
        ["activation", "grad ms", "double backward ms", "R-op ms", "R-op compiled ms", "double backward/grad",
         "R-op/grad", "R-op compiled/grad", "matmuls: R-op/grad", "floor", "Hv error R-op", "gradient error R-op",
         "Hv error compiled"],
    )
    compiled = torch.compile(gradient_and_hv, dynamic=False)
    for activation in WRITTEN_BY_HAND:
        model, x, y, vectors, gradient, double_backward = field_steps(activation, size, dev)

        def by_hand(step=gradient_and_hv):
            with torch.no_grad():
                return step(model, x, y, vectors)

        reference = double_backward()
        reference_gradient = [p.grad.clone() for p in model.parameters()]
        gradient_by_hand, products = by_hand()
        variants = {"grad": gradient, "double": double_backward, "rop": by_hand}
        if activation not in WRITTEN_BY_HAND[:size.compiled_fields]:
            compiled_error = "not compiled at this size"
        else:
            try:
                compiled_error = relative_error(by_hand(compiled)[1], reference)
                variants["compiled"] = lambda: by_hand(compiled)
            except Exception as error:  # torch.compile needs a C++ compiler on CPU
                compiled_error = f"failed: {type(error).__name__}"
        t = interleaved(variants, size.repeats, dev)
        matmul_ratio, gradient_share = matmul_ratio_and_share(by_hand, gradient, dev)
        table.rows.append([activation] + [1e3 * t[name] for name in ("grad", "double", "rop")]
                          + [1e3 * t["compiled"] if "compiled" in t else compiled_error]
                          + [t[name] / t["grad"] if name in t else compiled_error
                             for name in ("double", "rop", "compiled")]
                          + [matmul_ratio, matmul_ratio * gradient_share,
                             relative_error(products, reference),
                             relative_error(gradient_by_hand, reference_gradient), compiled_error])
    table.notes += [
        "Gradient step and double backward as in 1c (the package's paths); R-op: "
        "`benchmarks.r_operator.gradient_and_hv` (gradient and Hv, no autograd), eager and under "
        "`torch.compile` (timed after its compilation; it needs a C++ compiler on CPU). Target of the curvature step ≤ 2.2× a gradient step.",
        "Errors: the largest max |Δ| / max |reference| over the parameter tensors, against double backward's Hv "
        "and autograd's gradient. `matmuls`: the R-op's matrix products / the gradient step's (about three for any "
        "exact Hv: a tangent forward and a second backward beside the first); `floor` = that × the gradient step's "
        "time share in products, the ratio if all else cost nothing (as in 1c).",
    ]
    return [table]
