"""The one place that decides where tensors live, how runs are seeded and how CPU
floating point treats denormals."""

import contextlib
import os
import platform

import torch


def default_device() -> torch.device:
    """CUDA when present, else CPU; `PNF_DEVICE` (e.g. "cpu", "cuda:1") overrides."""
    name = os.environ.get("PNF_DEVICE", "").strip()
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    cuda, mps = torch.cuda.device_count(), torch.backends.mps.is_available()
    if device is None or not (device.type == "cpu" or device.type == "cuda" and (device.index or 0) < cuda
                              or device.type == "mps" and mps):
        available = ["cpu"] + [f"cuda:{i}" for i in range(cuda)] + ["mps"] * mps
        raise ValueError(f"PNF_DEVICE={name!r} is not a device of this machine; one of {', '.join(available)}, "
                         "or unset it")
    return device


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """Seed torch's global generator (model initialisation) and return a private one
    on `device` for everything drawn during training (batch order, samples)."""
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def describe(device: torch.device) -> str:
    """A human-readable name of the hardware, for reports."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {threads} thread{'' if threads == 1 else 's'}"


@contextlib.contextmanager
def denormals_flushed():
    """Flush float32 denormals (magnitudes below 1.2e-38) to zero on this thread while
    inside, then restore the previous mode.

    Gaussian bumps make backward products `grad · f'(z)` of order 1e-39, and a CPU
    matmul over denormals runs several times slower (`make bench`, table 4). A flushed
    value is below every optimizer's ε by some 30 orders of magnitude: runs keep their
    bits (tests/test_fused_paths.py checks it). A no-op where the CPU has no such mode."""
    was_flushing = torch.tensor(1e-40).item() == 0.0
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)
