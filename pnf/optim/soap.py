"""SOAP (Vyas et al. 2024, "SOAP: improving and stabilizing Shampoo using Adam"),
through `pytorch_optimizer.SOAP`.

Per weight `W [out, in]` SOAP keeps Shampoo's statistics `L = E[G Gᵀ] [out, out]`,
`R = E[Gᵀ G] [in, in]` and runs Adam in their eigenbasis `Q_L, Q_R`: the gradient is
rotated, `G' = Q_Lᵀ G Q_R`, Adam's second moment is kept for `G'`, and the Adam
direction is rotated back. The eigenbasis is refreshed every `precondition_frequency`
steps (one power iteration and a QR). Vectors (biases) get plain Adam. Its first step
only initialises the statistics and does not move the parameters.

Preset: lr is the paper's Adam preset for the field (1e-4; 1e-3 for ReLU(PE)), since
SOAP is Adam in a rotated basis and its steps have Adam's scale; betas (0.95, 0.95) and
precondition_frequency 10 are the SOAP authors' defaults (also pytorch-optimizer
4.1.0's); weight decay 0 (0.01 there), since the paper fits fields without it.
"""

import pytorch_optimizer

from pnf.optim.baselines import adam_rates
from pnf.optim.registry import OptimizerSpec, check, register


class SOAP(pytorch_optimizer.SOAP):
    """SOAP with its arguments checked here (the library's lr check raises no ValueError).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (Adam-like scale).
        betas: (β1, β2) of Adam in the eigenbasis; β2 also averages L and R.
        eps: Adam's ε.
        weight_decay: decoupled weight decay.
        precondition_frequency: steps between refreshes of the eigenbasis.
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.95, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.0, precondition_frequency: int = 10):
        check(("learning rate", lr, "must be >= 0"), ("betas", betas, "a pair (β1, β2), each in [0, 1)"),
              ("eps", eps, "must be >= 0"), ("weight_decay", weight_decay, "must be >= 0"),
              ("precondition_frequency", precondition_frequency, "a positive integer"))
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         precondition_frequency=int(precondition_frequency))


RATE, PER_ACTIVATION = adam_rates()
register("soap", OptimizerSpec(
    SOAP, {**RATE, "betas": (0.95, 0.95), "precondition_frequency": 10}, PER_ACTIVATION, label="SOAP",
    source="lr: the paper's Adam preset (SOAP is Adam in Shampoo's eigenbasis); betas (0.95, 0.95) and "
           "precondition_frequency 10: the SOAP authors' defaults (pytorch-optimizer 4.1.0's too)",
))
