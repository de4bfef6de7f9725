"""Speed never changes results silently (issue 18): torch's fused Adam, proposed for
the gradient-step runs, follows the eager loss curve of every field."""

import pytest
import torch
import torch.nn.functional as F

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
