"""Question 3: the field's forward + backward throughput as a fraction of the machine's
dense-matmul rate, both measured in this run, and where the rest of the step goes."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Size, Table, interleaved, matmul_time
from benchmarks.steps import field_and_batch
from pnf import estimate
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.profiles import PROFILES


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
    rates = reader_table(size, dev)
    reference = (size.batch_size, size.hidden_features) == (estimate.REFERENCE_POINTS, estimate.REFERENCE_WIDTH)
    return [table, rates] + ([profile_times(dev, rates)] if reference else [])


def reader_table(size: Size, dev: torch.device) -> Table:
    """Steps and pixels per second of every field × registered optimizer (not those meant
    for the whole image as one batch) at the size's image batch, as `pnf.estimate` prices them,
    on the CPU and on `dev` if it is a GPU."""
    table = Table(f"3b. Throughput for a reader ({size.resolution}², batch {size.batch_size})",
                  ["device", "activation", "optimizer", "steps/s", "pixels/s", "epoch s", "step / Adam's"])
    for device in [torch.device("cpu")] + ([dev] if dev.type == "cuda" else []):
        for activation in ACTIVATIONS:
            seconds = {name: estimate.step_seconds(activation, name, {}, size.batch_size, size.hidden_features,
                                                   device=device)
                       for name, spec in OPTIMIZERS.items() if not spec.full_batch}
            for name, step in seconds.items():
                epoch = math.ceil(size.resolution**2 / size.batch_size) * step
                table.rows.append([device.type, activation, name, 1 / step, size.batch_size / step, epoch,
                                   step / seconds["adam"]])
    table.notes += [
        f"Paper presets, `pnf.train.optimizer_step`; the mean of 5 steps after {estimate.WARMUP_STEPS} untimed "
        "ones on 16 points (past ESGD's curvature warm-up), one optimizer after another, not interleaved. "
        "GPU rows come where `make bench` runs on a GPU (`PNF_DEVICE` unset or `cuda`).",
    ]
    return table


def profile_times(dev: torch.device, rates: Table) -> Table:
    """Expected training time of a cold `make figures` per profile, from `rates` measured at
    the reference step (the image MLP at batch 512; other tasks' steps scaled by their work)."""
    price = {(row[1], row[2]): 1 / row[3] for row in rates.rows if row[0] == dev.type}
    for config in (config for profile in PROFILES for config in estimate.configs(profile)):
        if (config.activation, config.optimizer) not in price:  # full-batch optimizers are not in table 3b
            price[config.activation, config.optimizer] = estimate.step_seconds(
                config.activation, config.optimizer, config.optimizer_options, device=dev)
    table = Table(f"3c. Expected training time of a cold `make figures`, runs one after another, on {dev.type}",
                  ["profile", "runs", "reference steps (M)", "hours"])
    for profile in PROFILES:
        configs = estimate.configs(profile)
        steps = sum(estimate.reference_steps(config) for config in configs)
        seconds = sum(estimate.reference_steps(c) * price[c.activation, c.optimizer] for c in configs)
        table.rows.append([profile, len(configs), steps / 1e6, seconds / 3600])
    table.notes += [
        "A reference step is the image MLP's at batch 512; other tasks' steps count by their points × width² × "
        "hidden layers (`pnf.estimate`; small fields run below that rate). Training only, "
        "at this table's threads; `EXECUTOR=pool` runs a process a core side by side. `python -m pnf.estimate "
        "PROFILE` prints the same for the runs not yet cached (`make figures` prints it first).",
    ]
    return table
