"""Question 4: tiny numbers in Gaussian and Gabor fields on CPU, per Adam step: the
unclamped exponent against `pnf.fields`' clamp at EXP_FLOOR, and the clamp with
denormals kept against the package's step, which also flushes them
(`pnf.device.denormals_flushed`), with the largest change of outputs and gradients."""

import contextlib
import copy
import math

import torch
import torch.nn.functional as F

from benchmarks.common import Size, Table, interleaved
from benchmarks.steps import field_and_batch, stepper
import pnf.train
from pnf import fields
from pnf.device import denormals_flushed
from pnf.optim import make_optimizer

ACTIVATIONS = ("gaussian", "wavelet")


@contextlib.contextmanager
def variant(name: str):
    """Run the fields' exponential and the step as `name`: "unclamped" (no clamp, denormals
    kept), "clamped" (denormals kept) or "clamped, flushed" (the package)."""
    packaged = fields.EXP_FLOOR, pnf.train.denormals_flushed
    if name == "unclamped":
        fields.EXP_FLOOR = -math.inf
    if name != "clamped, flushed":
        pnf.train.denormals_flushed = contextlib.nullcontext
    try:
        yield
    finally:
        fields.EXP_FLOOR, pnf.train.denormals_flushed = packaged


def in_variant(name: str, run):
    def timed():
        with variant(name):
            run()

    return timed


def outputs_and_gradients(model, x, y, name: str) -> list[torch.Tensor]:
    with variant(name), (denormals_flushed() if name == "clamped, flushed" else contextlib.nullcontext()):
        model.zero_grad(set_to_none=True)
        prediction = model(x)
        F.mse_loss(prediction, y).backward()
    return [prediction.detach()] + [p.grad.clone() for p in model.parameters()]


def run(size: Size, dev: torch.device) -> list[Table]:
    names = ("unclamped", "clamped", "clamped, flushed")
    table = Table(
        f"4. exp of large negative arguments: Adam step (batch {size.batch_size})",
        ["activation"] + [f"{name} ms" for name in names]
        + ["unclamped / clamped", "clamped / flushed", "clamp: largest Δ output", "clamp: largest Δ grad / largest grad",
           "flush: largest Δ grad"],
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
        flushed = outputs_and_gradients(model, x, y, "clamped, flushed")
        flush_change = max(float((a - b).abs().max()) for a, b in zip(clamped, flushed))
        table.rows.append([activation] + [1e3 * t[name] for name in names]
                          + [t["unclamped"] / t["clamped"], t["clamped"] / t["clamped, flushed"],
                             output_change, gradient_change / gradient_scale, flush_change])
    table.notes.append(f"The clamp floors the exponent at EXP_FLOOR = {fields.EXP_FLOOR} (`pnf/fields.py`); "
                       "lr = 0 keeps the weights, so the arguments of exp, fixed across repeats. Flushing sets float32 "
                       "values below 1.2e-38 to zero inside each step (`pnf.device.denormals_flushed`); the "
                       "backward products grad·f'(z) reach that range.")
    return [table]
