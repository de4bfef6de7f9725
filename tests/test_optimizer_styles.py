"""The curvature optimizers (ESGD, AdaHessian and its Jacobi variant) driven three ways:
(a) `loss.backward(create_graph=optimizer.should_create_graph()); optimizer.step()`,
(b) PyTorch's argument-less closure, (c) `closure(create_graph=...)`: one trajectory,
and an error that shows the one-line fix wherever the graph is missing."""

import re

import pytest
import torch
from torch import nn

from pnf.optim import make_optimizer

torch.set_num_threads(1)

CURVATURE = ["esgd", "adahessian", "adahessian_j"]
STEPS = 120
# ESGD refreshes at the 3 warm-up steps, then every 7th (steps 9, 16, ..., 114): 19 in 120 steps.
OPTIONS = {"esgd": {"lr": 0.05, "d_warmup": 3, "update_d_every": 7}, "adahessian": {"lr": 0.05},
           "adahessian_j": {"lr": 0.05}}


def problem():
    """A sine MLP 2 -> 16 -> 16 -> 1 and STEPS mini-batches `[STEPS, 32, 2]`, `[STEPS, 32, 1]`."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    x = torch.rand(STEPS, 32, 2)
    return model, x, torch.sin(3 * x[..., :1]) * x[..., 1:]


def loss_of(model, x, y):
    return ((model(x) - y) ** 2).mean()


def backward_then_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = loss_of(model, x, y)
    loss.backward(create_graph=optimizer.should_create_graph())
    assert optimizer.step() is None
    return loss


def argless_closure(model, optimizer, x, y):
    def closure():
        optimizer.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward(create_graph=optimizer.should_create_graph())
        return loss

    return optimizer.step(closure)


def create_graph_closure(model, optimizer, x, y):
    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward(create_graph=create_graph)
        return loss

    return optimizer.step(closure)


def kwargs_closure(model, optimizer, x, y):
    def closure(**kwargs):
        optimizer.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward(**kwargs)
        return loss

    return optimizer.step(closure)


STYLES = {"backward_then_step": backward_then_step, "closure()": argless_closure,
          "closure(create_graph)": create_graph_closure, "closure(**kwargs)": kwargs_closure}


def train(name, style):
    """Parameters, optimizer state and losses after STEPS steps driven in `style`."""
    model, x, y = problem()
    optimizer = make_optimizer(name, model.parameters(), seed=5, **OPTIONS[name])
    losses = [STYLES[style](model, optimizer, x[t], y[t]).detach() for t in range(STEPS)]
    return list(model.parameters()), optimizer, torch.stack(losses)


@pytest.mark.parametrize("name", CURVATURE)
def test_every_style_gives_one_trajectory(name):
    reference, reference_optimizer, reference_losses = train(name, "closure(create_graph)")
    assert reference_losses[-1] < reference_losses[0] / 2
    for style in STYLES:
        params, optimizer, losses = train(name, style)
        assert all(torch.equal(a, b) for a, b in zip(params, reference)), style
        assert all(torch.equal(optimizer.state[a]["exp_avg_d"], reference_optimizer.state[b]["exp_avg_d"])
                   for a, b in zip(params, reference))
        assert torch.equal(optimizer.generator.get_state(), reference_optimizer.generator.get_state())
        assert torch.equal(losses, reference_losses)
    expected_refreshes = 19 if name == "esgd" else STEPS
    assert reference_optimizer.refreshes == expected_refreshes


def test_should_create_graph_follows_the_schedule_and_changes_nothing():
    model, x, y = problem()
    optimizer = make_optimizer("esgd", model.parameters(), seed=5, **OPTIONS["esgd"])
    asked = []
    for t in range(20):
        state = optimizer.generator.get_state()
        asked.append(optimizer.should_create_graph())
        assert optimizer.should_create_graph() == asked[-1]
        assert torch.equal(optimizer.generator.get_state(), state)
        backward_then_step(model, optimizer, x[t], y[t])
    assert [t for t, due in enumerate(asked) if due] == [0, 1, 2, 9, 16]


def graphless_backward_then_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss_of(model, x, y).backward()
    optimizer.step()


def graphless_argless_closure(model, optimizer, x, y):
    def closure():
        optimizer.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward()
        return loss

    optimizer.step(closure)


FIXES = {
    graphless_backward_then_step: "call loss.backward(create_graph=optimizer.should_create_graph()) "
                                  "before optimizer.step()",
    graphless_argless_closure: "the closure must call loss.backward(create_graph=optimizer.should_create_graph())",
}


@pytest.mark.parametrize("name", CURVATURE)
@pytest.mark.parametrize("graphless", FIXES, ids=["backward_then_step", "closure()"])
def test_missing_graph_shows_the_fix_and_leaves_the_optimizer_as_it_was(name, graphless):
    model, x, y = problem()
    optimizer = make_optimizer(name, model.parameters(), seed=5, **OPTIONS[name])
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=re.escape("needs the gradient graph; fix: " + FIXES[graphless])):
        graphless(model, optimizer, x[0], y[0])
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before))
    assert optimizer.steps == 0 and not optimizer.state
    # the same step done right continues the reference trajectory
    backward_then_step(model, optimizer, x[0], y[0])
    reference_model, _, _ = problem()
    reference = make_optimizer(name, reference_model.parameters(), seed=5, **OPTIONS[name])
    backward_then_step(reference_model, reference, x[0], y[0])
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference_model.parameters()))


@pytest.mark.parametrize("name", CURVATURE)
def test_step_without_gradients_shows_the_fix(name):
    model, _, _ = problem()
    optimizer = make_optimizer(name, model.parameters(), seed=5)
    with pytest.raises(RuntimeError, match=re.escape("found no gradients; fix: " + FIXES[graphless_backward_then_step])):
        optimizer.step()
    assert optimizer.steps == 0


def test_gradient_steps_need_no_graph():
    """Between refreshes the argument-less closure may call a plain backward."""
    model, x, y = problem()
    optimizer = make_optimizer("esgd", model.parameters(), seed=5, **OPTIONS["esgd"])
    for t in range(3):
        backward_then_step(model, optimizer, x[t], y[t])
    assert not optimizer.should_create_graph()
    graphless_argless_closure(model, optimizer, x[3], y[3])
    assert optimizer.steps == 4 and optimizer.refreshes == 3
