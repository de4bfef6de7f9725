"""PSGD-Kron (Li 2018, "Preconditioner on matrix Lie group for SGD"; Kron variant by
Evan Walters and Omead Pooladzandi), through `pytorch_optimizer.Kron`.

Per weight `W [out, in]` it keeps triangular factors `Q_out [out, out]`, `Q_in [in, in]`
(diagonal for vectors) of a preconditioner `P = (Q_outᵀQ_out) ⊗ (Q_inᵀQ_in)`, fitted so
that P whitens the momentum `m`; the step is `-lr · P m` with its RMS clipped at 1.1.
The factors are refitted with probability 1 for the first 500 steps, then with a
probability that decays to 0.03, each refit from a Gaussian probe vector; every
refit is also, with probability 0.01, followed by a rebalancing of the factors' scales.

`pytorch_optimizer.Kron` draws those from torch's and numpy's global generators, so a
run would depend on what else drew from them and could not resume bit for bit.
`Kron` here draws them from its own seeded generator, saved in `state_dict`. It needs
`opt-einsum`, which gives torch's einsum a good contraction order.

Preset: lr is the paper's Adam preset for the field (1e-4; 1e-3 for ReLU(PE)): the
kron_torch README says Kron's learning rate acts like Adam's, "start with adam-like
settings". Momentum 0.9, the update-probability schedule, triangular factors up to
8192 and the preconditioner's own lr 0.1 are the defaults of kron_torch and
pytorch-optimizer 4.1.0; no weight decay (the paper fits fields without it).
"""

import pytorch_optimizer
import torch

from pnf.optim.baselines import adam_rates
from pnf.optim.registry import OptimizerSpec, check, evaluate, own_state, register

BALANCE_PROBABILITY = 0.01  # pytorch_optimizer.Kron's default chance of rebalancing at a refit


class Kron(pytorch_optimizer.Kron):
    """PSGD-Kron whose random draws come from its own generator; see the module docstring.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (Adam-like scale).
        momentum: β of the momentum the preconditioner is fitted to and applied to.
        weight_decay: decoupled weight decay on matrices.
        seed: seed of the optimizer's own generator (probe vectors, rebalancing).
    """

    state_key = "kron_generator"

    def __init__(self, params, lr: float = 1e-4, momentum: float = 0.9, weight_decay: float = 0.0, seed: int = 0):
        check(("learning rate", lr, "must be >= 0"), ("momentum", momentum, "must lie in [0, 1)"),
              ("weight_decay", weight_decay, "must be >= 0"))
        if not torch.backends.opt_einsum.is_available():
            raise RuntimeError("Kron needs the opt-einsum package (pip install opt-einsum): without it "
                               "torch contracts Kron's einsums left to right, through a [n, n, n, n] "
                               "intermediate for an n x n weight")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.device = self.param_groups[0]["params"][0].device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    @torch.no_grad()
    def step(self, closure=None):
        """Evaluate `closure` (if given) for the loss and gradients, then take Kron's
        step with torch's global generator on the device set to this optimizer's."""
        loss = evaluate(closure)
        rebalance = torch.rand((), generator=self.generator, device=self.device) < BALANCE_PROBABILITY
        self.balance_prob = 1.0 if rebalance else 0.0  # the library compares numpy's draw in [0, 1) with it
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            set_global_state(self.device, self.generator.get_state())
            super().step()
            self.generator.set_state(global_state(self.device))
        return loss

    def state_dict(self) -> dict:
        """torch's state plus the generator's."""
        return {**super().state_dict(), self.state_key: self.generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict, generator_state = own_state(self, state_dict)
        self.generator.set_state(generator_state)
        super().load_state_dict(state_dict)


def global_state(device: torch.device) -> torch.Tensor:
    """The state of torch's global generator on `device`."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_global_state(device: torch.device, state: torch.Tensor) -> None:
    """Set torch's global generator on `device` to `state`."""
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


RATE, PER_ACTIVATION = adam_rates()
register("kron", OptimizerSpec(
    Kron, {**RATE, "momentum": 0.9}, PER_ACTIVATION, label="PSGD-Kron", seeded=True,
    source="lr: the paper's Adam preset (kron_torch README: Kron's lr acts like Adam's); "
           "momentum 0.9 and the refit schedule: kron_torch / pytorch-optimizer 4.1.0 defaults",
))
