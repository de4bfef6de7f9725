"""ESGD against closed forms, exact Hessians, and the torch.optim contract."""

import copy
import math
import types

import numpy as np
import pytest
import torch

from pnf.optim import ESGD, AdaHessian

A = torch.tensor([0.5, 2.0, 8.0], dtype=torch.float64)  # diagonal Hessian of the quadratic


def quadratic_closure(theta, optimizer):
    """f(θ) = ½ Σ a θ², so H = diag(a) and (Hv)² = a² for any Rademacher v."""

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = 0.5 * (A * theta**2).sum()
        loss.backward(create_graph=create_graph)
        return loss

    return closure


def run_quadratic(steps, **options):
    theta = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = ESGD([theta], **options)
    trajectory = [theta.detach().clone()]
    for _ in range(steps):
        optimizer.step(quadratic_closure(theta, optimizer))
        trajectory.append(theta.detach().clone())
    return torch.stack(trajectory), optimizer


def curvature_schedule(steps, d_warmup, update_d_every):
    """Number of refreshes after each step, by the paper code's rule."""
    refreshes, since, counts = 0, 0, []
    for t in range(steps):
        if t < d_warmup or since >= update_d_every:
            refreshes, since = refreshes + 1, 0
        since += 1
        counts.append(refreshes)
    return counts


@pytest.mark.parametrize("bias_correction", ["steps", "refreshes"])
def test_trajectory_on_diagonal_quadratic_matches_closed_form(bias_correction):
    # Without momentum, θ_t = θ_0 Π_s (1 - lr a / (sqrt(c_s) a + ε)) with
    # c_s = (1 - β2^k_s) / (1 - β2^n_s), k_s refreshes and n_s = s (steps) or k_s.
    lr, beta2, eps, steps, d_warmup, every = 0.1, 0.9, 1e-4, 40, 3, 5
    trajectory, optimizer = run_quadratic(
        steps, lr=lr, betas=(0.0, beta2), eps=eps, d_warmup=d_warmup, update_d_every=every,
        bias_correction=bias_correction,
    )
    refreshes = curvature_schedule(steps, d_warmup, every)
    factor = torch.ones(3, dtype=torch.float64)
    for s, k in enumerate(refreshes, start=1):
        n = s if bias_correction == "steps" else k
        c = (1 - beta2**k) / (1 - beta2**n)
        factor = factor * (1 - lr * A / (math.sqrt(c) * A + eps))
        torch.testing.assert_close(trajectory[s], factor, rtol=1e-12, atol=1e-14)
    # the preconditioner itself: D = (1 - β2^k) a² after k refreshes
    torch.testing.assert_close(optimizer.state[optimizer.param_groups[0]["params"][0]]["exp_avg_d"],
                               (1 - beta2 ** refreshes[-1]) * A**2)
    assert optimizer.refreshes == refreshes[-1] == d_warmup + (steps - d_warmup) // every


def test_paper_quirk_raises_the_effective_rate_after_warmup():
    # With the code's correction by steps, sqrt(D / (1-β2^t)) falls below |a| once
    # refreshes are sparse; counting refreshes keeps it at |a|.
    _, quirky = run_quadratic(400, lr=0.0, d_warmup=50, update_d_every=100, bias_correction="steps")
    _, consistent = run_quadratic(400, lr=0.0, d_warmup=50, update_d_every=100, bias_correction="refreshes")
    param = lambda opt: opt.param_groups[0]["params"][0]
    d_quirky = quirky.state[param(quirky)]["exp_avg_d"] / (1 - 0.999**400)
    d_consistent = consistent.state[param(consistent)]["exp_avg_d"] / (1 - 0.999**consistent.refreshes)
    torch.testing.assert_close(d_consistent.sqrt(), A)
    ratio = (d_quirky.sqrt() / A).numpy()
    expected = math.sqrt((1 - 0.999**53) / (1 - 0.999**400))
    np.testing.assert_allclose(ratio, expected, rtol=1e-9)
    assert expected < 0.4


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_momentum_trajectory_matches_recurrence(weight_decay):
    # decoupled decay, scaled by the learning rate: θ <- θ (1 - lr λ) - lr m̂ / (sqrt(D̂) + ε)
    lr, (b1, b2), eps = 0.05, (0.9, 0.99), 1e-4
    trajectory, _ = run_quadratic(30, lr=lr, betas=(b1, b2), eps=eps, d_warmup=4, update_d_every=7,
                                  weight_decay=weight_decay)
    theta, m, d, k, since = torch.ones(3, dtype=torch.float64), 0.0, 0.0, 0, 0
    for t in range(1, 31):
        if t - 1 < 4 or since >= 7:
            k, since, d = k + 1, 0, b2 * d + (1 - b2) * A**2
        since += 1
        m = b1 * m + (1 - b1) * A * theta
        theta = theta * (1 - lr * weight_decay) - lr * (m / (1 - b1**t)) / ((d / (1 - b2**t)).sqrt() + eps)
        torch.testing.assert_close(trajectory[t], theta, rtol=1e-12, atol=1e-14)


def small_network_loss():
    """A sine MLP 2 -> 6 -> 1 on fixed data, as a function of its flat parameters."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(32, 2, generator=generator, dtype=torch.float64)
    y = torch.rand(32, 1, generator=generator, dtype=torch.float64)
    shapes = [(6, 2), (6,), (1, 6), (1,)]
    sizes = [math.prod(s) for s in shapes]

    def loss(flat):
        w1, b1, w2, b2 = (chunk.reshape(s) for chunk, s in zip(flat.split(sizes), shapes))
        return ((torch.sin(3 * (x @ w1.T + b1)) @ w2.T + b2 - y) ** 2).mean()

    flat = torch.randn(sum(sizes), generator=generator, dtype=torch.float64)
    return loss, flat


def test_squared_hessian_vector_products_average_to_diag_of_h_squared():
    loss, flat = small_network_loss()
    exact = torch.func.hessian(loss)(flat)
    diag_h2 = (exact**2).sum(1)  # diag(H²) = Σ_j H_ij²
    errors = {}
    for draws in (100, 3000):
        theta = torch.nn.Parameter(flat.clone())
        beta2 = 1 - 1 / draws
        optimizer = ESGD([theta], lr=0.0, betas=(0.0, beta2), d_warmup=draws, seed=1)

        def closure(create_graph=False):
            optimizer.zero_grad()
            value = loss(theta)
            value.backward(create_graph=create_graph)
            return value

        for _ in range(draws):
            optimizer.step(closure)
        estimate = optimizer.state[theta]["exp_avg_d"] / (1 - beta2**draws)
        errors[draws] = ((estimate - diag_h2).norm() / diag_h2.norm()).item()
    assert errors[3000] < 0.08
    assert errors[3000] < errors[100]


def make_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def net_closure(net, optimizer, x, y):
    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward(create_graph=create_graph)
        return loss

    return closure


def test_state_dict_round_trip_continues_in_lockstep():
    x, y = torch.rand(64, 2), torch.rand(64, 1)
    net = make_net()
    optimizer = ESGD(net.parameters(), lr=0.05, d_warmup=5, update_d_every=3, seed=7)
    for _ in range(20):
        optimizer.step(net_closure(net, optimizer, x, y))
    saved_net, saved_opt = copy.deepcopy(net.state_dict()), copy.deepcopy(optimizer.state_dict())  # as if on disk

    resumed = make_net(seed=1)
    resumed.load_state_dict(saved_net)
    resumed_opt = ESGD(resumed.parameters(), lr=0.05, d_warmup=5, update_d_every=3, seed=123)
    resumed_opt.load_state_dict(saved_opt)
    for _ in range(15):
        optimizer.step(net_closure(net, optimizer, x, y))
        resumed_opt.step(net_closure(resumed, resumed_opt, x, y))
    for a, b in zip(net.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_param_groups_use_their_own_learning_rates():
    x, y = torch.rand(64, 2), torch.rand(64, 1)
    net = make_net()
    first, second = net[0], net[2]
    optimizer = ESGD([{"params": first.parameters(), "lr": 0.0}, {"params": second.parameters()}], lr=0.05)
    before_first, before_second = first.weight.clone(), second.weight.clone()
    optimizer.step(net_closure(net, optimizer, x, y))
    assert torch.equal(first.weight, before_first)
    assert not torch.equal(second.weight, before_second)


def test_works_with_lr_scheduler_and_reduces_loss():
    x = torch.rand(128, 2)
    y = torch.sin(3 * x[:, :1]) * x[:, 1:]
    net = make_net()
    optimizer = ESGD(net.parameters(), lr=0.05, d_warmup=10, update_d_every=10)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.5)
    closure = net_closure(net, optimizer, x, y)
    initial = closure().item()
    for _ in range(200):
        optimizer.step(closure)
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**4)
    assert closure().item() < initial / 4


def plain_update(self, params, products, vectors):
    """ESGD's and AdaHessian's update one tensor at a time, written plainly: the
    reference for the `torch._foreach_*` update (`update` of `pnf.optim.esgd.ESGD`)."""
    refresh = products is not None
    self.steps += 1
    if refresh:
        self.refreshes += 1
        self.steps_since_refresh = 0
    self.steps_since_refresh += 1
    k = self.steps if self.bias_correction == "steps" else self.refreshes
    product_of = dict(zip(params, zip(products, vectors))) if refresh else {}
    for group in self.param_groups:
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["exp_avg"], state["exp_avg_d"] = torch.zeros_like(p), torch.zeros_like(p)
            m, d = state["exp_avg"], state["exp_avg_d"]
            m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
            if refresh:
                hv, v = product_of[p]
                if getattr(self, "curvature", "equilibration") == "equilibration":
                    d.mul_(beta2).addcmul_(hv, hv, value=1 - beta2)
                else:
                    d.mul_(beta2).add_((v * hv).abs_(), alpha=1 - beta2)
            denominator = (d.sqrt() / math.sqrt(1 - beta2**k)).add_(group["eps"])
            p.mul_(1 - group["weight_decay"] * group["lr"])
            p.addcdiv_(m, denominator, value=-group["lr"] / (1 - beta1**self.steps))


@pytest.mark.parametrize("cls, options", [
    (ESGD, {"d_warmup": 3, "update_d_every": 4}),
    (ESGD, {"d_warmup": 2, "update_d_every": 5, "bias_correction": "refreshes"}),
    (AdaHessian, {"curvature": "equilibration"}),
    (AdaHessian, {"curvature": "jacobi"}),
])
def test_foreach_update_equals_the_per_tensor_loop_bit_for_bit(cls, options):
    x, y = torch.rand(64, 2), torch.rand(64, 1)
    nets, optimizers = [], []
    for plain in (False, True):
        net = make_net()
        unused = torch.nn.Parameter(torch.ones(3))  # never gets a gradient
        groups = [{"params": net[0].parameters(), "lr": 0.02, "weight_decay": 0.1},
                  {"params": [*net[2].parameters(), unused]}]
        optimizer = cls(groups, lr=0.05, betas=(0.8, 0.95), weight_decay=0.01, seed=3, **options)
        if plain:
            optimizer.update = types.MethodType(plain_update, optimizer)
        nets.append(net)
        optimizers.append(optimizer)
    for _ in range(25):
        for net, optimizer in zip(nets, optimizers):
            optimizer.step(net_closure(net, optimizer, x, y))
    foreach, plain = nets
    assert optimizers[0].refreshes == optimizers[1].refreshes > 3
    for a, b in zip(foreach.parameters(), plain.parameters()):
        assert torch.equal(a, b)
        assert torch.equal(optimizers[0].state[a]["exp_avg_d"], optimizers[1].state[b]["exp_avg_d"])
    assert not torch.equal(foreach[0].weight, make_net()[0].weight)


@pytest.mark.parametrize(
    "options",
    [{"lr": -1.0}, {"betas": (1.0, 0.9)}, {"betas": (0.9, -0.1)}, {"eps": -1e-3}, {"update_d_every": 0},
     {"d_warmup": 0}, {"weight_decay": -1.0}, {"bias_correction": "never"}],
)
def test_rejects_invalid_hyperparameters(options):
    with pytest.raises(ValueError):
        ESGD([torch.nn.Parameter(torch.ones(2))], **options)


def test_explains_missing_gradients_or_a_graphless_closure():
    theta = torch.nn.Parameter(torch.ones(3))
    optimizer = ESGD([theta])
    with pytest.raises(RuntimeError, match=r"found no gradients; fix: .*should_create_graph\(\)"):
        optimizer.step()

    def graphless(create_graph=False):
        optimizer.zero_grad()
        loss = (theta**2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="create_graph=create_graph"):
        optimizer.step(graphless)


def test_refuses_sparse_gradients():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    optimizer = ESGD(embedding.parameters())

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = embedding(torch.tensor([1, 2])).sum()
        loss.backward(create_graph=create_graph)
        return loss

    with pytest.raises(RuntimeError, match="sparse"):
        optimizer.step(closure)
