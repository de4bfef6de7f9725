"""Probes of pnf's optimizers with inputs a user gets wrong: each gives a clear error naming
the setting, the bad value and what is accepted, and leaves the model and optimizer as they were."""

import pytest
import torch
from torch import nn

from pnf.optim import make_optimizer
from pnf.train import optimizer_step


def small_model(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)).to(dtype)


def mse(prediction, target):
    return ((prediction - target) ** 2).mean()


def trained(name, steps=3):
    """Optimizer `name` after `steps` steps on a tiny regression, with its model."""
    model = small_model()
    optimizer = make_optimizer(name, model.parameters(), model=model)
    x, y = torch.linspace(-1, 1, 32)[:, None].repeat(1, 2), torch.linspace(0, 1, 32)[:, None]
    for _ in range(steps):
        optimizer_step(model, optimizer, mse, x, y)
    return optimizer


@pytest.mark.parametrize("target, source, message", [
    ("esgd", "adam", r"ESGD\.load_state_dict: this state was saved by another optimizer \(per-parameter state: "
                     r"exp_avg, exp_avg_sq, step\), not by ESGD \(it has no 'esgd' entry\)"),
    ("sophiah", "esgd", r"SophiaH\.load_state_dict: this state was saved by ESGD, not by SophiaH"),
    ("esgd", "adahessian", r"ESGD\.load_state_dict: this state was saved by AdaHessian, not by ESGD"),
    ("kfac_adam", "esgd", r"KFACAdam\.load_state_dict: this state was saved by ESGD, not by KFACAdam"),
    ("kron", "sophiah", r"Kron\.load_state_dict: this state was saved by SophiaH, not by Kron"),
    ("muon", "esgd", r"MuonAdamW\.load_state_dict: this state was saved by ESGD, not by MuonAdamW"),
])
def test_a_state_saved_by_another_optimizer_is_refused_naming_both(target, source, message):
    model = small_model()
    optimizer = make_optimizer(target, model.parameters(), model=model)
    before = optimizer.state_dict()
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(trained(source).state_dict())
    after = optimizer.state_dict()
    assert str(after) == str(before)  # nothing loaded: no state, the counters and the generator as they were


@pytest.mark.parametrize("name, option", [
    ("esgd", "betas"), ("esgd_primed", "betas"), ("esgd_refreshes", "betas"), ("adahessian", "betas"),
    ("sophiah", "betas"), ("soap", "betas"), ("kfac_adam", "betas"), ("muon", "adamw_betas"),
])
@pytest.mark.parametrize("bad", [(0.9,), (0.9, 0.99, 0.999), 0.9])
def test_betas_that_are_not_a_pair_are_refused_when_built(name, option, bad):
    model = small_model()
    with pytest.raises(ValueError, match=rf"invalid {option}: {bad!r}".replace("(", r"\(").replace(")", r"\)")
                       + r"; a pair \(β1, β2\), each in \[0, 1\)"):
        make_optimizer(name, model.parameters(), model=model, **{option: bad})


@pytest.mark.parametrize("name", ["esgd", "esgd_primed", "adahessian", "adahessian_j", "sophiah"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_curvature_optimizers_refuse_16_bit_parameters(name, dtype):
    """In float16 the curvature average (Hv)² underflows to 0 and ESGD's second step jumps
    (loss 0.85 -> 4.06 in the probe): refused when built, before any step."""
    model = small_model(dtype)
    before = [p.detach().clone() for p in model.parameters()]
    kind = str(dtype).removeprefix("torch.")
    with pytest.raises(ValueError, match=rf"parameters of dtype {kind} are not supported; use float32 or float64"):
        make_optimizer(name, model.parameters(), model=model)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_a_16_bit_group_added_later_is_refused_and_not_kept():
    model, extra = small_model(), nn.Linear(2, 2).half()
    optimizer = make_optimizer("esgd", model.parameters())
    with pytest.raises(ValueError, match="parameters of dtype float16 are not supported"):
        optimizer.add_param_group({"params": extra.parameters()})
    assert len(optimizer.param_groups) == 1


def test_float64_parameters_still_train_with_esgd():
    model = small_model(torch.float64)
    optimizer = make_optimizer("esgd", model.parameters(), lr=0.01)
    x = torch.linspace(-1, 1, 64, dtype=torch.float64)[:, None].repeat(1, 2)
    y = torch.sin(3 * x[:, :1])
    losses = [float(optimizer_step(model, optimizer, mse, x, y)) for _ in range(200)]
    assert losses[-1] < losses[0] / 4
