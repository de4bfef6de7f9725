"""The one training loop, for every task and optimizer.

Mini-batches are drawn by a random permutation of indices into tensors that already
sit on the device (no DataLoader). Every optimizer is driven by
`optimizer.step(closure)`; one that needs curvature asks the closure for the graph.
"""

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from pnf.checkpoint import Checkpoints
from pnf.checks import check_int
from pnf.device import denormals_flushed


class Diverged(RuntimeError):
    """A non-finite loss: the run stops at `step` (counted from 1 over the whole run)."""

    def __init__(self, step: int, loss: float, optimizer: str, history: dict):
        super().__init__(f"{optimizer} diverged at step {step}: loss {loss}")
        self.step, self.loss, self.history = step, loss, history


@dataclass
class History:
    """Per-epoch training record. `train_loss` is the epoch's mean mini-batch loss;
    metrics are recorded at `eval_epoch`s (epoch 0 is the initial field)."""

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)  # training wall time of each epoch
    eval_epoch: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # name -> list aligned with eval_epoch
    snapshots: dict = field(default_factory=dict)  # epoch -> reconstruction array
    steps: int = 0  # optimizer steps taken

    def record_eval(self, epoch: int, values: dict) -> None:
        self.eval_epoch.append(epoch)
        for name, value in values.items():
            self.metrics.setdefault(name, []).append(value)

    def curves(self) -> dict:
        """Everything but the snapshots, as plain lists (JSON-ready)."""
        return {name: value for name, value in asdict(self).items() if name != "snapshots"}


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, task, epochs: int, batch_size: int,
          generator: torch.Generator, eval_every: int = 1, snapshot_epochs: tuple = (),
          progress: bool | Callable[[int, int], None] = True,
          description: str = "", checkpoints: Checkpoints | None = None) -> History:
    """Train `model` on `task` for `epochs` passes over its data; return the history.

    With `checkpoints`, the run resumes from the newest good checkpoint and saves one
    every `checkpoints.every` epochs (model, optimizer with its generator, the batch
    generator, history), so a killed run continues bit for bit. Raises `Diverged` with
    the step and loss when a mini-batch loss is not finite. `progress`: True shows a tqdm
    bar; a callable is called as `progress(epoch, epochs)` after each trained epoch instead.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("eval_every", eval_every)):
        check_int(name, value, 1)
    resumed = checkpoints.latest() if checkpoints else None
    if resumed:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        generator.set_state(resumed["generator"])
        history = History(**{**resumed["history"], "snapshots": {
            epoch: snapshot.numpy() for epoch, snapshot in resumed["history"]["snapshots"].items()}})
    else:
        history = History()
        history.record_eval(0, task.evaluate(model)[0])
    done = len(history.epoch)  # epochs 1..done are trained
    bar = tqdm(range(done + 1, epochs + 1), desc=description, disable=progress is not True, leave=False,
               initial=done, total=epochs)
    for epoch in bar:
        started = time.perf_counter()
        losses = train_epoch(model, optimizer, task, epoch, batch_size, generator)
        history.seconds.append(time.perf_counter() - started)
        finite = torch.isfinite(losses)
        if not finite.all():
            bad = int((~finite).nonzero()[0])
            raise Diverged(history.steps + bad + 1, float(losses[bad]), type(optimizer).__name__, history.curves())
        history.steps += len(losses)
        history.epoch.append(epoch)
        history.train_loss.append(float(losses.mean()))
        if epoch % eval_every == 0 or epoch == epochs or epoch in snapshot_epochs:
            metrics, reconstruction = task.evaluate(model)
            history.record_eval(epoch, metrics)
            if epoch in snapshot_epochs or epoch == epochs:
                history.snapshots[epoch] = reconstruction
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3g}", **{task.metric: f"{metrics[task.metric]:.4g}"})
        if callable(progress):
            progress(epoch, epochs)
        if checkpoints and checkpoints.due(epoch) and epoch < epochs:
            checkpoints.save(epoch, checkpoint_state(model, optimizer, generator, history))
    return history


def checkpoint_state(model, optimizer, generator, history: History) -> dict:
    """What a checkpoint holds, as tensors and plain values only (it loads with
    `weights_only=True`): the model, the optimizer, the batch generator's state and the
    history, its snapshot arrays as tensors."""
    record = asdict(history)
    record["snapshots"] = {epoch: torch.from_numpy(snapshot) for epoch, snapshot in history.snapshots.items()}
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
            "history": record}


def train_epoch(model, optimizer, task, epoch: int, batch_size: int, generator) -> torch.Tensor:
    """One pass over the task's data for this epoch; the mini-batch losses `[steps]`."""
    inputs, targets = task.epoch_data(epoch, generator)
    order = torch.randperm(len(inputs), generator=generator, device=generator.device).to(inputs.device)
    losses = torch.empty(math.ceil(len(inputs) / batch_size), device=inputs.device)
    for i, start in enumerate(range(0, len(inputs), batch_size)):
        batch = order[start : start + batch_size]
        losses[i] = optimizer_step(model, optimizer, task.loss, inputs[batch], targets[batch])
    return losses


def optimizer_step(model, optimizer, loss_fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One step of any optimizer on the mini-batch (x, y), the way every pnf run drives it:
    `optimizer.step(closure)`, whose closure lets a curvature optimizer ask for the graph,
    with denormals flushed (`pnf.device.denormals_flushed`). Returns the mini-batch loss,
    detached."""

    def closure(create_graph: bool = False) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward(create_graph=create_graph)
        return loss

    with denormals_flushed():
        return optimizer.step(closure).detach()
