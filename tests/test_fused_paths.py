"""Speed never changes results silently: torch's fused Adam, proposed for
the gradient-step runs, follows the eager loss curve of every field, and flushing
denormals keeps runs bit for bit."""

import contextlib

import pytest
import torch
import torch.nn.functional as F

import pnf.train
from pnf.device import denormals_flushed
from pnf.fields import ACTIVATIONS, make_field
from pnf.optim import make_optimizer
from pnf.train import optimizer_step


def loss_curve(activation: str, steps: int, **adam_options) -> torch.Tensor:
    """Mini-batch losses `[steps]` of Adam at its preset on a 64-wide field, fixed seed."""
    torch.manual_seed(0)
    model = make_field(activation, 2, 3, hidden_features=64)
    coords, colors = torch.rand(1024, 2) * 2 - 1, torch.rand(1024, 3)
    optimizer = make_optimizer("adam", model.parameters(), activation, **adam_options)
    order = torch.randint(0, 1024, (steps, 256), generator=torch.Generator().manual_seed(1))
    return torch.stack([optimizer_step(model, optimizer, F.mse_loss, coords[batch], colors[batch]) for batch in order])


RELU_DIVERGES = pytest.mark.xfail(
    strict=True, reason="measured: at ReLU(PE)'s lr 1e-3 the last-bit differences of the fused update grow "
    "to 1.3e-5 relative by step 50 and 1.3e-4 by step 97, so fused Adam is not proposed for it")


@pytest.mark.parametrize("activation", [pytest.param(a, marks=RELU_DIVERGES) if a == "relu" else a
                                        for a in ACTIVATIONS])
def test_fused_adam_follows_the_eager_loss_curve_over_100_steps(activation):
    eager, fused = loss_curve(activation, 100), loss_curve(activation, 100, fused=True)
    assert eager[-1] < 0.9 * eager[0]  # the curve moves: the comparison means something
    torch.testing.assert_close(fused, eager, rtol=1e-5, atol=0)


def denormal_count(tensor: torch.Tensor) -> int:
    magnitude = tensor.abs()
    return int(((magnitude > 0) & (magnitude < torch.finfo(torch.float32).tiny)).sum())


def gaussian_run(optimizer_name: str, steps: int) -> tuple[list[torch.Tensor], int]:
    """Parameters of a 64-wide Gaussian field after `steps` steps, and how many denormal
    entries the gradients of its pre-activations held along the way."""
    torch.manual_seed(0)
    model = make_field("gaussian", 2, 3, hidden_features=64)
    denormals = []

    def count_in_backward(module, inputs, z):
        z.register_hook(lambda grad: denormals.append(denormal_count(grad)))

    for layer in model[:-1]:
        layer.linear.register_forward_hook(count_in_backward)
    coords, colors = torch.rand(1024, 2) * 2 - 1, torch.rand(1024, 3)
    often = {"update_d_every": 5, "d_warmup": 5} if optimizer_name == "esgd" else {}  # several curvature refreshes
    optimizer = make_optimizer(optimizer_name, model.parameters(), "gaussian", **often)
    order = torch.randint(0, 1024, (steps, 256), generator=torch.Generator().manual_seed(1))
    for batch in order:
        optimizer_step(model, optimizer, F.mse_loss, coords[batch], colors[batch])
    return [p.detach().clone() for p in model.parameters()], sum(denormals)


@pytest.mark.parametrize("optimizer_name", ["adam", "esgd"])
def test_flushing_denormals_keeps_a_gaussian_run_bit_for_bit(optimizer_name, monkeypatch):
    flushed, flushed_denormals = gaussian_run(optimizer_name, 30)
    monkeypatch.setattr(pnf.train, "denormals_flushed", contextlib.nullcontext)
    kept, kept_denormals = gaussian_run(optimizer_name, 30)
    assert flushed_denormals == 0 and kept_denormals > 0  # the unflushed run met denormals
    for a, b in zip(flushed, kept):
        assert torch.equal(a, b)


def test_denormals_flushed_flushes_inside_and_restores_the_mode():
    tiny = torch.tensor([1e-39])
    assert float(tiny * 1) > 0
    with denormals_flushed():
        assert float(tiny * 1) == 0
        with denormals_flushed():
            pass
        assert float(tiny * 1) == 0  # the inner exit restored "flushing"
    assert float(tiny * 1) > 0
