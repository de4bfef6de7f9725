"""The optimizers a practitioner would pick today on small fields, through
pnf's one training loop: Muon (+AdamW), SOAP, PSGD-Kron, SophiaH, full-batch L-BFGS."""

import inspect
import io
import math

import numpy as np
import pytest
import pytorch_optimizer
import torch

import pnf.train
from pnf.fields import make_field
from pnf.optim import OPTIMIZERS, make_optimizer
from pnf.optim.hutchinson import rademacher_like
from pnf.optim.muon import hidden_weights
from pnf.train import optimizer_step, train

torch.set_num_threads(1)

MODERN = ["muon", "soap", "kron", "sophiah", "lbfgs"]
SIDE = 16


def mse(prediction, target):
    return ((prediction - target) ** 2).mean()


def target_image():
    """Coordinates `[256, 2]` in [-1, 1] of a 16×16 grid and a smooth RGB image `[256, 3]` in [0, 1]."""
    axis = torch.linspace(-1, 1, SIDE)
    x = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    y = torch.cat([torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:]), x[:, :1] * x[:, 1:],
                   torch.cos(4 * x[:, :1] + x[:, 1:])], 1)
    return x, 0.5 + 0.5 * y


def small_field(activation="sine", seed=0):
    torch.manual_seed(seed)
    return make_field(activation, 2, 3, hidden_features=32, hidden_layers=2)


@pytest.mark.parametrize("activation", ["sine", "relu"])
@pytest.mark.parametrize("name", MODERN)
def test_preset_lowers_the_loss_of_a_small_field(name, activation):
    """40 full-image steps (3 for L-BFGS, whose step iterates 20 times) at the preset
    take at least 10% off the loss."""
    x, y = target_image()
    model = small_field(activation)
    optimizer = make_optimizer(name, model.parameters(), activation, seed=0, model=model)
    with torch.no_grad():
        initial = float(mse(model(x), y))
    losses = [float(optimizer_step(model, optimizer, mse, x, y)) for _ in range(3 if name == "lbfgs" else 40)]
    with torch.no_grad():
        final = float(mse(model(x), y))
    assert all(math.isfinite(loss) for loss in losses)
    assert final < 0.9 * initial


class TinyImageTask:
    """The 16×16 image as a task for `pnf.train.train`, counting the loss evaluations."""

    metric = "psnr"

    def __init__(self):
        self.x, self.y = target_image()
        self.evaluations = 0

    def epoch_data(self, epoch, generator):
        return self.x, self.y

    def loss(self, prediction, target):
        self.evaluations += 1
        return mse(prediction, target)

    def evaluate(self, model):
        with torch.no_grad():
            prediction = model(self.x)
        return {"psnr": float(-10 * torch.log10(mse(prediction, self.y)))}, prediction.numpy()


def test_lbfgs_runs_full_batch_through_the_one_training_loop():
    """`train` drives L-BFGS like any optimizer: one step per full-batch epoch, whose
    closure L-BFGS calls many times without arguments; the loop never names it."""
    assert OPTIMIZERS["lbfgs"].full_batch and not any(OPTIMIZERS[name].full_batch for name in MODERN[:-1])
    assert "lbfgs" not in inspect.getsource(pnf.train).lower()
    task = TinyImageTask()
    model = small_field()
    optimizer = make_optimizer("lbfgs", model.parameters(), "sine", model=model)
    history = train(model, optimizer, task, epochs=3, batch_size=SIDE * SIDE,
                    generator=torch.Generator().manual_seed(0), progress=False)
    assert history.steps == 3
    assert task.evaluations > 3 * 5  # several closure calls per step
    psnr = history.metrics["psnr"]
    assert psnr[-1] > psnr[0] + 10


def test_lbfgs_at_learning_rate_zero_leaves_the_field_unchanged():
    x, y = target_image()
    model = small_field()
    optimizer = make_optimizer("lbfgs", model.parameters(), lr=0.0)
    before = [p.detach().clone() for p in model.parameters()]
    loss = optimizer_step(model, optimizer, mse, x, y)
    assert float(loss) > 0
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), b)


@pytest.mark.parametrize("name", MODERN)
def test_state_dict_survives_a_checkpoint_round_trip(name):
    """Saved with torch.save after 5 steps and loaded into a fresh optimizer (another
    seed), the twin takes the same 5 next steps, bit for bit."""
    x, y = target_image()
    first = small_field()
    optimizer = make_optimizer(name, first.parameters(), "sine", seed=1, model=first, max_iter=2) if name == "lbfgs" \
        else make_optimizer(name, first.parameters(), "sine", seed=1, model=first)
    for _ in range(5):
        optimizer_step(first, optimizer, mse, x, y)
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    twin = small_field(seed=7)
    twin.load_state_dict(saved["model"])
    options = {"max_iter": 2} if name == "lbfgs" else {}
    twin_optimizer = make_optimizer(name, twin.parameters(), "sine", seed=99, model=twin, **options)
    twin_optimizer.load_state_dict(saved["optimizer"])
    for _ in range(5):
        optimizer_step(first, optimizer, mse, x, y)
        optimizer_step(twin, twin_optimizer, mse, x, y)
    for a, b in zip(first.parameters(), twin.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name, bad, message", [
    ("muon", {"lr": -0.01}, r"(?i)learning rate.*-0\.01"),
    ("muon", {"momentum": 1.0}, r"momentum: 1\.0; must lie in \[0, 1\)"),
    ("muon", {"ns_steps": 0}, r"ns_steps: 0; an integer in \[1, 100\)"),
    ("muon", {"adamw_lr": -1.0}, r"(?i)learning rate: -1\.0"),
    ("soap", {"lr": -1e-4}, r"learning rate: -0\.0001; must be >= 0"),
    ("soap", {"betas": (0.95, 1.0)}, r"betas: \(0\.95, 1\.0\); a pair \(β1, β2\), each in \[0, 1\)"),
    ("soap", {"precondition_frequency": 0}, r"precondition_frequency: 0; a positive integer"),
    ("kron", {"lr": -1.0}, r"learning rate: -1\.0; must be >= 0"),
    ("kron", {"momentum": 1.5}, r"momentum: 1\.5; must lie in \[0, 1\)"),
    ("sophiah", {"p": 0.0}, r"p \(clipping bound\): 0\.0; must be > 0"),
    ("sophiah", {"update_period": 2.5}, r"update_period: 2\.5; a positive integer"),
    ("sophiah", {"betas": (1.0, 0.99)}, r"betas: \(1\.0, 0\.99\); a pair \(β1, β2\), each in \[0, 1\)"),
    ("lbfgs", {"max_iter": 0}, r"max_iter: 0; a positive integer"),
    ("lbfgs", {"line_search_fn": "armijo"}, r"line_search_fn: 'armijo'; 'strong_wolfe' or None"),
])
def test_bad_hyperparameters_are_refused_by_name(name, bad, message):
    model = small_field()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=message):
        make_optimizer(name, model.parameters(), seed=0, model=model, **bad)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


# --- Muon (+AdamW) ----------------------------------------------------------------


@pytest.mark.parametrize("activation, expected", [("sine", 2), ("relu", 2), ("wavelet", 4)])
def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(activation, expected):
    """Hidden layers 1 and 2 (both maps of each Gabor layer) go to Muon; the input
    layer, the output layer and every bias to AdamW."""
    model = small_field(activation)
    hidden = hidden_weights(model)
    assert len(hidden) == expected and all(w.shape == (32, 32) for w in hidden)
    optimizer = make_optimizer("muon", model.parameters(), activation, model=model)
    muon = {id(p) for g in optimizer.parts["muon"].param_groups for p in g["params"]}
    adamw = {id(p) for g in optimizer.parts["adamw"].param_groups for p in g["params"]}
    assert muon == {id(w) for w in hidden}
    assert adamw == {id(p) for p in model.parameters()} - muon
    assert [g["lr"] for g in optimizer.param_groups] == [0.02, 1e-3 if activation == "relu" else 1e-4]


def test_muon_first_step_is_orthogonalised_and_adamw_first_step_is_lr_sized():
    """Step 1 moves a hidden 32×32 matrix by lr·O with O's singular values near 1
    (Newton-Schulz in bfloat16 leaves them in about [0.5, 1.5] wherever the gradient's
    singular value is above 1/500 of its largest; below, they shrink); AdamW moves every other
    coordinate with a gradient by adamw_lr (Adam's first step is lr·sign(g))."""
    x, y = target_image()
    model = small_field()
    optimizer = make_optimizer("muon", model.parameters(), "sine", model=model)
    before = {p: p.detach().clone() for p in model.parameters()}
    optimizer_step(model, optimizer, mse, x, y)
    for weight in hidden_weights(model):
        step = torch.linalg.svdvals((weight.detach() - before[weight]) / 0.02)
        gradient = torch.linalg.svdvals(weight.grad)
        strong = gradient > 2e-3 * gradient[0]
        assert int(strong.sum()) >= 25
        assert float(step.max()) < 1.6 and float(step[strong].min()) > 0.5
    hidden = {id(w) for w in hidden_weights(model)}
    for p in model.parameters():
        if id(p) not in hidden:
            change = (p.detach() - before[p]).abs()
            torch.testing.assert_close(change, torch.full_like(change, 1e-4), rtol=1e-3, atol=0)


def test_a_scheduler_drives_both_parts_of_muon():
    x, y = target_image()
    model = small_field()
    optimizer = make_optimizer("muon", model.parameters(), "sine", model=model)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    optimizer_step(model, optimizer, mse, x, y)
    scheduler.step()
    assert optimizer.parts["muon"].param_groups[0]["lr"] == pytest.approx(0.01)
    assert optimizer.parts["adamw"].param_groups[0]["lr"] == pytest.approx(5e-5)


# --- SophiaH and Kron ---------------------------------------------------------------


def test_sophiah_matches_pytorch_optimizer_given_the_same_curvature_estimates():
    """25 steps of ours and of `pytorch_optimizer.SophiaH` fed the same `v ⊙ Hv`
    (our generator's Rademacher vectors, curvature at steps 1, 11, 21) agree."""
    x, y = target_image()
    ours_model, theirs_model = small_field(), small_field()
    ours = make_optimizer("sophiah", ours_model.parameters(), seed=3, update_period=10)
    theirs = pytorch_optimizer.SophiaH(theirs_model.parameters(), lr=0.06, betas=(0.96, 0.99), p=0.01,
                                       update_period=10, eps=1e-12)
    generator = torch.Generator().manual_seed(3)
    params = list(theirs_model.parameters())
    for step in range(25):
        optimizer_step(ours_model, ours, mse, x, y)
        theirs.zero_grad()
        refresh = step % 10 == 0
        mse(theirs_model(x), y).backward(create_graph=refresh)
        hessian = None
        if refresh:
            vectors = [rademacher_like(p, generator) for p in params]
            products = torch.autograd.grad([p.grad for p in params], params, grad_outputs=vectors)
            hessian = [v * hv for v, hv in zip(vectors, products)]
            for p in params:
                p.grad = p.grad.detach()
        theirs.step(hessian=hessian)
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_kron_draws_only_from_its_own_generator():
    """The same seed gives the same trajectory whatever else draws from torch's and
    numpy's global generators, and a Kron step leaves torch's global generator as it was."""
    x, y = target_image()

    def trajectory(disturb):
        model = small_field()
        optimizer = make_optimizer("kron", model.parameters(), seed=5)
        for step in range(12):
            if disturb:
                torch.manual_seed(step)
                np.random.seed(step)
            state = torch.get_rng_state()
            optimizer_step(model, optimizer, mse, x, y)
            assert torch.equal(torch.get_rng_state(), state)
        return [p.detach() for p in model.parameters()]

    for a, b in zip(trajectory(False), trajectory(True)):
        assert torch.equal(a, b)
