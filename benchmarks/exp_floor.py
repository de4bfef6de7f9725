"""Question 4: `exp` of large negative arguments (Gaussian, Gabor) on CPU: the
unclamped exponent against `pnf.fields`' clamp at EXP_FLOOR and against flushing
denormals, per step, with the largest change of outputs and gradients."""

import contextlib
import copy
import math

import torch
import torch.nn.functional as F

from benchmarks.common import Size, Table, interleaved
from benchmarks.steps import field_and_batch, stepper
from pnf import fields
from pnf.optim import make_optimizer

ACTIVATIONS = ("gaussian", "wavelet")


@contextlib.contextmanager
def variant(name: str):
    """Run the fields' exponential as `name`: "unclamped", "clamped" (the package) or
    "flush denormals" (unclamped with `torch.set_flush_denormal(True)`)."""
    packaged = fields.EXP_FLOOR
    if name != "clamped":
        fields.EXP_FLOOR = -math.inf
    flush = name == "flush denormals" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        fields.EXP_FLOOR = packaged
        if flush:
            torch.set_flush_denormal(False)


def in_variant(name: str, run):
    def timed():
        with variant(name):
            run()

    return timed


def outputs_and_gradients(model, x, y, name: str) -> list[torch.Tensor]:
    with variant(name):
        model.zero_grad(set_to_none=True)
        prediction = model(x)
        F.mse_loss(prediction, y).backward()
    return [prediction.detach()] + [p.grad.clone() for p in model.parameters()]


def run(size: Size, dev: torch.device) -> list[Table]:
    names = ("unclamped", "clamped", "flush denormals")
    table = Table(
        f"4. exp of large negative arguments: Adam step (batch {size.batch_size})",
        ["activation"] + [f"{name} ms" for name in names]
        + ["unclamped / clamped", "flush / clamped", "max |Δ output|", "max |Δ grad| / max |grad|"],
    )
    for activation in ACTIVATIONS:
        model, x, y = field_and_batch(activation, size, dev)
        models = {name: copy.deepcopy(model) for name in names}
        steps = {name: in_variant(name, stepper(models[name], make_optimizer("adam", models[name].parameters(),
                                                                            activation, lr=0.0), x, y))
                 for name in names}
        t = interleaved(steps, size.repeats, dev)
        clamped = outputs_and_gradients(model, x, y, "clamped")
        unclamped = outputs_and_gradients(model, x, y, "unclamped")
        output_change = float((clamped[0] - unclamped[0]).abs().max())
        gradient_change = max(float((a - b).abs().max()) for a, b in zip(clamped[1:], unclamped[1:]))
        gradient_scale = max(float(a.abs().max()) for a in clamped[1:])
        table.rows.append([activation] + [1e3 * t[name] for name in names]
                          + [t["unclamped"] / t["clamped"], t["flush denormals"] / t["clamped"],
                             output_change, gradient_change / gradient_scale])
    table.notes.append(f"The clamp floors the exponent at EXP_FLOOR = {fields.EXP_FLOOR} (`pnf/fields.py`); "
                       "lr = 0 keeps the weights, so the arguments of exp, fixed across repeats.")
    return [table]
