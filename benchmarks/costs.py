"""Question 5: each registered optimizer's seconds per epoch and peak memory per
activation (the paper's cost comparison). Every measurement runs in a fresh child
process forked from a lean server, so the peak resident set (`ru_maxrss`) is its own;
on CUDA the peak is `torch.cuda.max_memory_allocated`."""

import multiprocessing
import resource
import statistics
import time

import torch

from benchmarks.common import Size, Table
from pnf.data.images import EMBEDDED_IMAGE, load_image
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS, make_optimizer
from pnf.tasks.image import ImageFitting
from pnf.train import train_epoch


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure(optimizer: str, activation: str, pixels: torch.Tensor, size: Size, device: str, threads: int) -> dict:
    """Train `size.epochs` epochs of fitting `pixels` `[H, W, 3]`; seconds of each epoch and the peak
    memory above the process's peak before the task was built (bytes)."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    baseline = max_rss_bytes()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    task = ImageFitting(pixels, dev)
    torch.manual_seed(0)
    model = task.make_model(activation, hidden_features=size.hidden_features)
    opt = make_optimizer(optimizer, model.parameters(), activation, model=model)
    generator = torch.Generator(device=dev).manual_seed(0)
    seconds = []
    for epoch in range(1, size.epochs + 1):
        started = time.perf_counter()
        train_epoch(model, opt, task, epoch, size.batch_size, generator)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else max_rss_bytes() - baseline
    return {"seconds": seconds, "peak": peak}


def run(size: Size, dev: torch.device) -> list[Table]:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "pnf.optim", "pnf.tasks.image", "pnf.train"])
    table = Table(
        f"5. Cost per optimizer ({size.resolution}², batch {size.batch_size}, {size.epochs} epochs)",
        ["optimizer", "activation", "epoch 1 s", "later epoch s", "later / Adam's", "peak memory MiB"],
    )
    pixels = load_image(EMBEDDED_IMAGE, size.resolution).pixels
    with context.Pool(1, maxtasksperchild=1 if size.fresh_process else None) as pool:
        for activation in ACTIVATIONS:
            results = {name: pool.apply(measure, (name, activation, pixels, size, str(dev), torch.get_num_threads()))
                       for name in OPTIMIZERS}
            adam = statistics.median(results["adam"]["seconds"][1:])
            for name, result in results.items():
                later = statistics.median(result["seconds"][1:])
                table.rows.append([name, activation, result["seconds"][0], later, later / adam,
                                   result["peak"] / 2**20])
    memory = "torch.cuda.max_memory_allocated" if dev.type == "cuda" else "max RSS of the child above its start"
    table.notes += [
        "Paper presets (`pnf.optim.OPTIMIZERS`), the embedded astronaut image, `pnf.train`'s epoch; "
        "epoch 1 holds ESGD's curvature warm-up. Each measurement in its own process, one after another "
        f"(not interleaved), so under load compare with care. Peak memory: {memory}.",
    ]
    return [table]
