"""Question 3: the field's forward + backward throughput as a fraction of the machine's
dense-matmul rate, both measured in this run, and where the rest of the step goes."""

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Size, Table, interleaved, matmul_time
from benchmarks.steps import field_and_batch
from pnf.fields import ACTIVATIONS


def matmul_flops(model: nn.Module, batch: int) -> int:
    """FLOPs of the linear maps of one forward + backward at `batch` rows: 2·B·in·out
    each forward, as much for the weight gradient, and as much again for the input
    gradient except in the first layer, whose input needs none."""
    first = set(model[0].modules())
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            passes = 2 if module in first else 3
            total += passes * 2 * batch * module.in_features * module.out_features
    return total


def matmul_rate(side: int, repeats: int, dev: torch.device) -> float:
    """FLOP/s of a square float32 `torch.mm` of `side`."""
    a, b = torch.randn(side, side, device=dev), torch.randn(side, side, device=dev)
    seconds = interleaved({"mm": lambda: torch.mm(a, b)}, repeats, dev)["mm"]
    return 2 * side**3 / seconds


def run(size: Size, dev: torch.device) -> list[Table]:
    peak = matmul_rate(size.mm_side, size.repeats, dev)
    table = Table(
        f"3. Field forward + backward vs dense matmul ({size.mm_side}² `torch.mm`: {peak / 1e9:.3g} GFLOP/s)",
        ["activation", "batch", "step ms", "matmul GFLOP", "step GFLOP/s", "step / mm rate",
         "matmuls alone / mm rate", "step time in matmuls"],
    )
    for activation in ACTIVATIONS:
        for batch in size.throughput_batches:
            model, x, y = field_and_batch(activation, size, dev, batch)

            def step():
                model.zero_grad(set_to_none=True)
                F.mse_loss(model(x), y).backward()

            seconds = interleaved({"step": step}, max(3, size.repeats // 3), dev)["step"]
            in_matmuls, profiled = matmul_time(step, dev)
            flops = matmul_flops(model, batch)
            table.rows.append([activation, batch, 1e3 * seconds, flops / 1e9, flops / seconds / 1e9,
                               flops / seconds / peak, flops / in_matmuls / peak, in_matmuls / profiled])
    table.notes += [
        "Only the linear maps' FLOPs are counted (activations, loss and optimizer are overhead). "
        "Target: ≥ 60% of the mm rate at the paper's batch.",
        "From one profiled session per row (`benchmarks.common.matmul_time`): `matmuls alone / mm rate` is the rate "
        "the step's products reach by themselves (small matrices run below the large mm's rate); `step time in "
        "matmuls` their share of the step, the rest being activations, loss, reductions and autograd.",
    ]
    return [table]
