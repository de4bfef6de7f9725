"""The ESGD variants (pnf.optim.esgd_variants) against closed forms and the torch.optim contract."""

import copy

import pytest
import torch

from pnf.fields import make_field
from pnf.optim import make_optimizer
from pnf.optim.esgd import ESGD
from pnf.optim.esgd_variants import PrimedESGD
from pnf.train import optimizer_step

A = torch.tensor([0.5, 2.0, 8.0], dtype=torch.float64)  # diagonal Hessian of f(θ) = ½ Σ a θ²


def run_quadratic(optimizer_of, steps):
    """Trajectory `[steps + 1, 3]` of θ from ones on f, and the optimizer."""
    theta = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = optimizer_of([theta])

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = 0.5 * (A * theta**2).sum()
        loss.backward(create_graph=create_graph)
        return loss

    trajectory = [theta.detach().clone()]
    for _ in range(steps):
        optimizer.step(closure)
        trajectory.append(theta.detach().clone())
    return torch.stack(trajectory), optimizer


def test_primed_trajectory_on_diagonal_quadratic_matches_closed_form():
    # (Hv)² = a² for every Rademacher v, so with the consistent correction D̂ = a² from
    # the first refresh on: θ stays at 1 for the priming steps, then without momentum
    # θ_t = (1 - lr a / (a + ε))^(t - p).
    lr, eps, prime, warmup, every, steps = 0.1, 1e-3, 4, 3, 5, 30
    trajectory, optimizer = run_quadratic(
        lambda params: PrimedESGD(params, prime_steps=prime, lr=lr, betas=(0.0, 0.9), eps=eps,
                                  d_warmup=warmup, update_d_every=every, bias_correction="refreshes"),
        steps,
    )
    moves = torch.clamp(torch.arange(steps + 1) - prime, min=0).to(torch.float64)
    expected = (1 - lr * A / (A + eps))[None, :] ** moves[:, None]
    torch.testing.assert_close(trajectory, expected, rtol=1e-12, atol=1e-14)
    assert optimizer.refreshes == prime + warmup + (steps - prime - warmup) // every == 11


def test_primed_with_no_priming_is_esgd():
    options = dict(lr=0.1, betas=(0.9, 0.99), d_warmup=3, update_d_every=4)
    primed, _ = run_quadratic(lambda params: PrimedESGD(params, prime_steps=0, **options), 20)
    plain, _ = run_quadratic(lambda params: ESGD(params, **options), 20)
    assert torch.equal(primed, plain)


def test_registered_refreshes_variant_is_esgd_with_the_consistent_correction():
    registered, _ = run_quadratic(lambda params: make_optimizer("esgd_refreshes", params, "sine", lr=0.1), 200)
    direct, _ = run_quadratic(
        lambda params: ESGD(params, lr=0.1, bias_correction="refreshes", eps=1e-4, d_warmup=50, update_d_every=100), 200
    )
    assert torch.equal(registered, direct)
    assert make_optimizer("esgd_refreshes", [torch.nn.Parameter(torch.ones(1))], "relu").param_groups[0]["lr"] == 0.1


def small_field_run(name, seed, first_steps, resume=None):
    """A small sine field fitted to a fixed random target with optimizer `name`; steps
    from a saved (model, optimizer) state if `resume` is given."""
    torch.manual_seed(seed)
    model = make_field("sine", 2, 3, hidden_features=16, hidden_layers=2)
    optimizer = make_optimizer(name, model.parameters(), "sine", seed=seed, prime_steps=3, d_warmup=4, update_d_every=5)
    if resume:
        model.load_state_dict(resume[0])
        optimizer.load_state_dict(resume[1])
    data = torch.Generator().manual_seed(1)
    x, y = torch.rand(64, 2, generator=data) * 2 - 1, torch.rand(64, 3, generator=data)
    losses = [float(optimizer_step(model, optimizer, torch.nn.functional.mse_loss, x, y)) for _ in range(first_steps)]
    return model, optimizer, losses


def test_primed_state_dict_round_trip_continues_bit_identically():
    model, optimizer, _ = small_field_run("esgd_primed", 0, 2)  # stop inside the priming
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    resumed_model, _, continued = small_field_run("esgd_primed", 0, 16, resume=saved)
    straight_model, _, straight = small_field_run("esgd_primed", 0, 18)
    assert continued == straight[2:]
    pairs = zip(resumed_model.state_dict().values(), straight_model.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)
    assert straight[0] == straight[3] > straight[4]  # the loss before the first move is the initial one


@pytest.mark.parametrize("value", [-1, 2.5, "3"])
def test_bad_prime_steps_raise(value):
    with pytest.raises(ValueError, match=rf"prime_steps: {value!r}.*non-negative integer"):
        PrimedESGD([torch.nn.Parameter(torch.ones(2))], prime_steps=value)


def test_bad_esgd_option_of_a_variant_raises():
    with pytest.raises(ValueError, match=r"learning rate: -0.1"):
        make_optimizer("esgd_primed", [torch.nn.Parameter(torch.ones(2))], "sine", lr=-0.1)
