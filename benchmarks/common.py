"""What every benchmark shares: sizes, interleaved timing, tables, the machine."""

import datetime
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from pnf.device import default_device


@dataclass(frozen=True)
class Size:
    """How large the benchmarks run. The `full` size is the paper's 2D image setting."""

    name: str
    resolution: int  # image side: an epoch is resolution² pixels
    batch_size: int
    hidden_features: int
    repeats: int  # timed calls per variant (medians are taken)
    run_steps: int  # a long run over which ESGD's curvature refreshes are amortised
    throughput_batches: tuple[int, ...]
    mm_side: int  # side of the square matrices of the reference `torch.mm`
    epochs: int  # epochs per optimizer in the cost comparison (the first is warm-up)
    fresh_process: bool = True  # one process per cost measurement (else reused: memory is then cumulative)
    compiled_fields: int | None = None  # table 1d compiles the first this many fields (None: all; ~15 s each)


SIZES = {
    "full": Size("full", 256, 512, 256, 21, 25600, (512, 4096, 65536), 4096, 3),
    "reduced": Size("reduced", 128, 512, 256, 9, 25600, (512, 4096, 16384), 2048, 2),
    "tiny": Size("tiny", 32, 128, 32, 3, 25600, (128, 256, 1024), 256, 2, fresh_process=False, compiled_fields=1),
}


@dataclass
class Table:
    """A result table: `rows` of values under `columns`, with notes below it."""

    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + [f"- {note}" for note in self.notes]) + "\n"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each variant, timed A, B, C, A, B, C, ... so that a
    change of the machine's load hits every variant alike."""
    for _ in range(warmup):
        for run in variants.values():
            run()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            synchronize(device)
            started = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


MATMULS = ("aten::mm", "aten::addmm", "aten::addmm_")


def matmul_time(run: Callable[[], object], device: torch.device, calls: int = 3) -> tuple[float, float]:
    """(seconds in torch's matrix products, seconds in all) per call of `run`, both under
    one profiler session: the products by the profiler's self time of those operations
    (on a GPU, their kernel time), the whole by the clock (profiler overhead included)."""
    run()
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        started = time.perf_counter()
        for _ in range(calls):
            run()
        synchronize(device)
        total = time.perf_counter() - started
    events = [event for event in profiler.key_averages() if event.key in MATMULS]
    if device.type == "cuda":
        in_matmuls = sum(event.self_device_time_total for event in events)
    else:
        in_matmuls = sum(event.self_cpu_time_total for event in events)
    return in_matmuls / 1e6 / calls, total / calls


def matmul_ratio_and_share(step: Callable[[], object], gradient: Callable[[], object],
                           device: torch.device) -> tuple[float, float]:
    """(seconds in matrix products of `step` / those of `gradient`, `gradient`'s time share
    in products), by `matmul_time`; their product is the floor of step/gradient time, the
    ratio if everything but the products cost nothing."""
    gradient_matmuls, gradient_total = matmul_time(gradient, device)
    return matmul_time(step, device)[0] / gradient_matmuls, gradient_matmuls / gradient_total


def device() -> torch.device:
    return default_device()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def machine(dev: torch.device) -> dict[str, str]:
    """What the numbers were measured on."""
    described = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "device": str(dev),
        "load average (1, 5, 15 min) at start": load_average(),
    }
    if dev.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(dev)
    return described
