"""The paper's optimizers and ESGD's variants through the one interface, with real numbers:
toy minimisation, a tiny MLP, state_dict round trips, param groups, schedulers; the
Hutchinson estimators against exact Hessians; K-FAC factors against their definition.
(The optimizers beyond the paper have their own module, test_modern_optimizers.py.)"""

import copy

import pytest
import torch
from torch import nn

from pnf.optim import ESGD, OPTIMIZERS, make_optimizer
from pnf.optim.hutchinson import CurvatureOptimizer, hessian_vector_products, rademacher_like
from pnf.optim.kfac import KFACAdam, kfac_factors
from pnf.paper import PAPER_OPTIMIZERS

torch.set_num_threads(1)

# Learning rates for the toy problems (the paper's presets are for neural fields):
# (quadratic, Rosenbrock).
TOY_LR = {"adam": (0.05, 0.02), "esgd": (0.05, 0.3), "sgd": (0.3, 0.0015), "adahessian": (0.05, 1.0),
          "adahessian_j": (0.05, 0.05), "kfac_adam": (0.05, 0.02), "shampoo": (0.03, 0.0002), "esgd_refreshes": (0.05, 1.0)}
TOY_OPTIONS = {"esgd_primed": {"prime_steps": 1}}  # it moves from step prime_steps + 1
VARIANTS = [name for name, spec in OPTIMIZERS.items() if issubclass(spec.cls, ESGD) and name not in PAPER_OPTIMIZERS]
NAMES = list(PAPER_OPTIMIZERS) + VARIANTS


class Holder(nn.Module):
    """A model holding one free parameter vector `[2]`."""

    def __init__(self, start):
        super().__init__()
        self.x = nn.Parameter(torch.tensor(start, dtype=torch.float64))


def toy_optimizer(name, model, problem):
    lr = TOY_LR.get(name, TOY_LR["esgd"])[problem]
    return make_optimizer(name, model.parameters(), seed=0, model=model, lr=lr, **TOY_OPTIONS.get(name, {}))


def closure_for(optimizer, loss_fn):
    def closure(create_graph=False):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward(create_graph=create_graph)
        return loss
    return closure


def quadratic(x):
    hessian = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=x.dtype)
    return 0.5 * x @ hessian @ x


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("name", NAMES)
def test_minimises_quadratic(name):
    model = Holder([1.5, -1.0])
    optimizer = toy_optimizer(name, model, 0)
    closure = closure_for(optimizer, lambda: quadratic(model.x))
    for _ in range(1500):
        optimizer.step(closure)
    assert float(quadratic(model.x.detach())) < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_minimises_rosenbrock(name):
    model = Holder([-1.0, 1.0])
    optimizer = toy_optimizer(name, model, 1)
    closure = closure_for(optimizer, lambda: rosenbrock(model.x))
    for _ in range(6000):
        optimizer.step(closure)
    assert float(torch.linalg.norm(model.x.detach() - 1)) < 0.05


def tiny_problem(seed=0):
    """A 2 -> 16 -> 16 -> 1 sine MLP and 128 fixed points of a smooth target."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(128, 2, generator=generator) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    return model, x, y


# The paper's presets except where a 300-step toy needs a larger (Adam, K-FAC) or a
# stable (SGD) rate.
MLP_OPTIONS = {"adam": {"lr": 0.01}, "sgd": {"lr": 0.1}, "kfac_adam": {"lr": 0.01, "update_freq": 10}}


@pytest.mark.parametrize("name", NAMES)
def test_tiny_mlp_loss_halves(name):
    model, x, y = tiny_problem()
    optimizer = make_optimizer(name, model.parameters(), seed=0, model=model, **MLP_OPTIONS.get(name, {}))
    closure = closure_for(optimizer, lambda: ((model(x) - y) ** 2).mean())
    initial = float(closure())
    for _ in range(300):
        optimizer.step(closure)
    assert float(closure()) < initial / 2


def run_steps(optimizer, model, x, y, steps):
    closure = closure_for(optimizer, lambda: ((model(x) - y) ** 2).mean())
    for _ in range(steps):
        optimizer.step(closure)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_in_lockstep(name):
    options = {"update_freq": 3} if name == "kfac_adam" else {"update_d_every": 3, "d_warmup": 2} if name == "esgd" else {}
    model, x, y = tiny_problem()
    first = make_optimizer(name, model.parameters(), seed=1, model=model, **options)
    run_steps(first, model, x, y, 5)
    twin, _, _ = tiny_problem()
    twin.load_state_dict(model.state_dict())
    second = make_optimizer(name, twin.parameters(), seed=99, model=twin, **options)
    second.load_state_dict(copy.deepcopy(first.state_dict()))  # as torch.save/torch.load would
    run_steps(first, model, x, y, 7)
    run_steps(second, twin, x, y, 7)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_learning_rates(name):
    """A group with lr 0 stays put while the other moves."""
    model, x, y = tiny_problem()
    frozen = [p.detach().clone() for p in model[0].parameters()]
    moving = [p.detach().clone() for p in model[4].parameters()]
    spec = OPTIMIZERS[name]
    lr = spec.hyperparameters()["lr"]
    groups = [{"params": model[0].parameters(), "lr": 0.0},
              {"params": list(model[2].parameters()) + list(model[4].parameters()), "lr": lr}]
    optimizer = make_optimizer(name, groups, seed=0, model=model, **TOY_OPTIONS.get(name, {}))
    run_steps(optimizer, model, x, y, 3)
    for before, p in zip(frozen, model[0].parameters()):
        torch.testing.assert_close(p.detach(), before, rtol=0, atol=0)
    assert any(not torch.equal(before, p.detach()) for before, p in zip(moving, model[4].parameters()))


@pytest.mark.parametrize("name", NAMES)
def test_lr_scheduler_drives_the_learning_rate(name):
    model, x, y = tiny_problem()
    optimizer = make_optimizer(name, model.parameters(), seed=0, model=model)
    start = optimizer.param_groups[0]["lr"]
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(4):
        run_steps(optimizer, model, x, y, 1)
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(start / 4)
    snapshot = [p.detach().clone() for p in model.parameters()]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.0)
    run_steps(optimizer, model, x, y, 1)
    if name == "sgd":  # lr 0 must freeze an optimizer whose step is lr times a direction
        for before, p in zip(snapshot, model.parameters()):
            torch.testing.assert_close(p.detach(), before, rtol=0, atol=0)


CURVATURE = [name for name in NAMES if issubclass(OPTIMIZERS[name].cls, CurvatureOptimizer)]


@pytest.mark.parametrize("name, fix", [(name, r"loss\.backward\(create_graph=optimizer\.should_create_graph\(\)\) "
                                               r"before optimizer\.step\(\)") for name in CURVATURE]
                         + [("kfac_adam", r"closure\(create_graph=False\)")])
def test_step_without_closure_or_gradients_says_what_to_do(name, fix):
    model, _, _ = tiny_problem()
    optimizer = make_optimizer(name, model.parameters(), seed=0, model=model)
    with pytest.raises(RuntimeError, match=fix):
        optimizer.step()


@pytest.mark.parametrize("name", CURVATURE)
def test_closure_ignoring_create_graph_is_refused(name):
    model, x, y = tiny_problem()
    optimizer = make_optimizer(name, model.parameters(), seed=0, model=model)

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="create_graph=create_graph"):
        optimizer.step(closure)


@pytest.mark.parametrize("name", [name for name in NAMES if name not in ("sgd", "adam")])
def test_sparse_gradients_refused(name):
    embedding = nn.Embedding(10, 3, sparse=True)
    model = nn.Sequential(embedding)
    optimizer = make_optimizer(name, model.parameters(), seed=0, model=model)

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = embedding(torch.tensor([1, 2])).pow(2).sum()
        loss.backward()
        return loss

    with pytest.raises(Exception, match="(?i)sparse"):
        optimizer.step(closure)


@pytest.mark.parametrize("name, bad", [
    ("adahessian", {"lr": -1.0}), ("adahessian", {"betas": (1.0, 0.9)}), ("adahessian", {"curvature": "newton"}),
    ("adahessian_j", {"eps": -1.0}), ("kfac_adam", {"damping": 0.0}), ("kfac_adam", {"update_freq": 0}),
    ("kfac_adam", {"lr": -1.0}), ("shampoo", {"lr": -0.1}), ("shampoo", {"momentum": 1.0}), ("sgd", {"lr": -1.0}),
])
def test_invalid_hyperparameters_rejected(name, bad):
    model, _, _ = tiny_problem()
    with pytest.raises(ValueError):
        make_optimizer(name, model.parameters(), seed=0, model=model, **bad)


def test_kfac_needs_the_model():
    model, _, _ = tiny_problem()
    with pytest.raises(ValueError, match="model=model"):
        make_optimizer("kfac_adam", model.parameters())


# --- Hutchinson estimators against the exact Hessian -------------------------------


def exact_and_sampled(draws):
    """Exact H `[P, P]` of a tiny tanh network's loss and `draws` samples of
    `v ⊙ Hv` and `(Hv)²` `[draws, P]` from the shared machinery."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    x, y = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def loss_of(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return ((torch.func.functional_call(model, params, (x,)) - y) ** 2).mean()

    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    hessian = torch.func.hessian(loss_of)(flat)
    generator = torch.Generator().manual_seed(0)
    params = list(model.parameters())
    jacobi, equilibration = [], []
    for _ in range(draws):
        model.zero_grad()
        ((model(x) - y) ** 2).mean().backward(create_graph=True)
        vectors = [rademacher_like(p, generator) for p in params]
        products = hessian_vector_products(params, vectors, "test")
        v, hv = torch.cat([t.flatten() for t in vectors]), torch.cat([t.flatten() for t in products])
        jacobi.append(v * hv)
        equilibration.append(hv**2)
    return hessian, torch.stack(jacobi), torch.stack(equilibration)


def test_hutchinson_estimates_match_exact_hessian():
    """Each mean lies within 5 standard errors (which shrink as 1/sqrt(draws)) of the
    exact value, and 4x the draws shrinks the mean's error."""
    hessian, jacobi, equilibration = exact_and_sampled(2000)
    for samples, exact in ((jacobi, torch.diagonal(hessian)), (equilibration, torch.diagonal(hessian @ hessian))):
        for draws in (500, 2000):
            mean = samples[:draws].mean(0)
            standard_error = samples[:draws].std(0) / draws**0.5
            assert torch.all((mean - exact).abs() <= 5 * standard_error + 1e-12)
        assert (samples.mean(0) - exact).norm() < (samples[:125].mean(0) - exact).norm()
    # a Jacobi sample is exact where the Hessian is diagonal; here it is not
    assert jacobi.std(0).max() > 0


# --- K-FAC factors --------------------------------------------------------------------


def test_kfac_factors_of_a_linear_layer_match_their_definition():
    """The factors the optimizer records equal E[a aᵀ] and E[g gᵀ] with g the gradient
    of each sample's own loss w.r.t. the layer output, computed sample by sample."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    optimizer = KFACAdam(model.parameters(), model, update_freq=1)
    optimizer.recording = True
    ((model(x) - y) ** 2).mean().backward()
    inputs, output_grads = optimizer.captured[1]
    a_factor, g_factor = kfac_factors(inputs, output_grads, bias=True)

    hidden = torch.tanh(model[0](x)).detach()
    augmented = torch.cat([hidden, torch.ones(8, 1, dtype=torch.float64)], 1)
    per_sample = []
    for n in range(8):
        output = model[2](hidden[n : n + 1]).detach().requires_grad_()
        ((output - y[n : n + 1]) ** 2).mean().backward()
        per_sample.append(output.grad[0])
    per_sample = torch.stack(per_sample)
    torch.testing.assert_close(a_factor, sum(torch.outer(a, a) for a in augmented) / 8)
    torch.testing.assert_close(g_factor, sum(torch.outer(g, g) for g in per_sample) / 8)


def test_kfac_preconditions_with_damped_inverse_factors():
    """After a refresh, Adam sees `(G + √λI)⁻¹ [∇W ∇b] (A + √λI)⁻¹`."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    optimizer = KFACAdam(model.parameters(), model, damping=0.04, update_freq=1)
    optimizer.recording = True
    ((model(x) - y) ** 2).mean().backward()
    grad = torch.cat([model[0].weight.grad, model[0].bias.grad[:, None]], 1)
    a_factor, g_factor = kfac_factors(*optimizer.captured[0], bias=True)
    optimizer._refresh_inverses()
    optimizer._precondition()
    expected = torch.linalg.solve(g_factor + 0.2 * torch.eye(4, dtype=torch.float64), grad)
    expected = torch.linalg.solve(a_factor + 0.2 * torch.eye(4, dtype=torch.float64), expected.T).T
    torch.testing.assert_close(model[0].weight.grad, expected[:, :3])
    torch.testing.assert_close(model[0].bias.grad, expected[:, 3])
