"""Question 2: one epoch of 2D image training, `pnf.train`'s loop (a `randperm` index
into tensors already on the device) against the paper's design (a shuffled
`DataLoader` over a `TensorDataset`), same model, optimizer and closure."""

import copy

import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import Size, Table, interleaved
from pnf.data.images import EMBEDDED_IMAGE, load_image
from pnf.optim import make_optimizer
from pnf.tasks.image import ImageFitting
from pnf.train import optimizer_step, train_epoch

ACTIVATION = "sine"  # the cheapest model step, so the data-loading share shows most


def dataloader_epoch(model, optimizer, task, loader) -> None:
    """An epoch as the paper's code runs it: batches from a shuffled DataLoader."""
    for x, y in loader:
        optimizer_step(model, optimizer, task.loss, x.to(task.device), y.to(task.device))


def randperm_batches(task, batch_size: int, generator) -> None:
    """Only the batching of `pnf.train`: permute, then index both tensors."""
    order = torch.randperm(len(task.coords), generator=generator, device=generator.device).to(task.device)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        task.coords[batch], task.colors[batch]


def run(size: Size, dev: torch.device) -> list[Table]:
    task = ImageFitting(load_image(EMBEDDED_IMAGE, size.resolution).pixels, dev)
    torch.manual_seed(0)
    ours_model = task.make_model(ACTIVATION, hidden_features=size.hidden_features)
    paper_model = copy.deepcopy(ours_model)
    ours_opt = make_optimizer("adam", ours_model.parameters(), ACTIVATION)
    paper_opt = make_optimizer("adam", paper_model.parameters(), ACTIVATION)
    generator = torch.Generator(device=dev).manual_seed(0)
    loader_generator = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(task.coords.cpu(), task.colors.cpu()), batch_size=size.batch_size,
                        shuffle=True, generator=loader_generator)
    repeats = max(3, size.repeats // 3)
    t = interleaved({
        "ours": lambda: train_epoch(ours_model, ours_opt, task, 1, size.batch_size, generator),
        "paper": lambda: dataloader_epoch(paper_model, paper_opt, task, loader),
        "ours data": lambda: randperm_batches(task, size.batch_size, generator),
        "paper data": lambda: [(x.to(dev), y.to(dev)) for x, y in loader],
    }, repeats, dev, warmup=1)
    table = Table(
        f"2. One epoch of image training ({size.resolution}², batch {size.batch_size}, {ACTIVATION}, Adam)",
        ["loop", "epoch s", "batching only s", "batching share", "paper / ours"],
        [["pnf.train (randperm)", t["ours"], t["ours data"], t["ours data"] / t["ours"], 1.0],
         ["paper (DataLoader)", t["paper"], t["paper data"], t["paper data"] / t["paper"], t["paper"] / t["ours"]]],
        [f"Medians of {repeats} interleaved epochs. Target: ours ≥ 5× faster; the model step dominates an "
         "epoch, so the whole-epoch ratio is bounded by the batching share of the paper's loop.",
         f"Batching alone, paper / ours: {t['paper data'] / t['ours data']:.3g}×."],
    )
    return [table]
