"""K-FAC-preconditioned Adam, as the paper's `Preconditioner_KFAC` runs it.

The paper's code steps a K-FAC *preconditioner* (Thomas George's `KFAC(net, eps,
update_freq)`, the EKFAC authors' code) before a plain Adam: every
`nn.Linear` gradient `∇W` `[out, in]` (with the bias as an extra column,
`[out, in+1]`) is replaced by

    (G + √λ I)⁻¹ ∇W (A + √λ I)⁻¹,   A = E[a aᵀ] `[in+1, in+1]`,   G = E[g gᵀ] `[out, out]`,

where `a` is a sample's layer input with a trailing 1, `g` the gradient of that
sample's loss with respect to the layer's output, and E the mean over the mini-batch.
The factors and their inverses are recomputed from one mini-batch every
`update_freq` steps (100 in the paper) and reused in between; then Adam steps.
The paper's preset "PKFac lr 0.1" is the damping λ of that call; Adam keeps its own
preset (lr 1e-4, 1e-3 for ReLU(PE); no weight decay in that code path).

Why our own: `backpack-for-pytorch` and `curvlinops-for-pytorch` compute K-FAC
factors but are not optimizers and would add a dependency for two matrix products;
`pytorch-optimizer` has no K-FAC. The factors need the layers' inputs and output
gradients, so this optimizer is built with the model: `KFACAdam(params, model)`
registers a forward hook on every `nn.Linear` of `model` whose parameters are in
`params` (other parameters get plain Adam). The hooks record only during the
closure call of a refresh step. `make_optimizer` passes the model to every
registered optimizer that declares `needs_model`.
"""

import torch
from torch import nn

from pnf.optim.registry import OptimizerSpec, check, own_state, register


def kfac_factors(inputs: torch.Tensor, output_grads: torch.Tensor, bias: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """K-FAC factors of a linear layer from one mini-batch.

    Args:
        inputs: layer inputs a `[N, in]`.
        output_grads: gradient of the *mean* mini-batch loss w.r.t. the layer outputs
            `[N, out]`; N times it is each sample's own loss gradient g.
        bias: whether the layer has a bias (appends a 1 to every input).

    Returns:
        A = mean of a aᵀ `[in(+1), in(+1)]`, G = mean of g gᵀ `[out, out]`.
    """
    count = inputs.shape[0]
    if bias:
        inputs = torch.cat([inputs, torch.ones_like(inputs[:, :1])], dim=1)
    per_sample = output_grads * count
    return inputs.T @ inputs / count, per_sample.T @ per_sample / count


class KFACAdam(torch.optim.Adam):
    """Adam on K-FAC-preconditioned gradients; see the module docstring.

    Args:
        params: parameters or parameter groups (those of `model`'s `nn.Linear`
            layers are preconditioned).
        model: the module whose `nn.Linear` layers are hooked.
        lr, betas, eps, weight_decay: Adam's (paper: lr 1e-4; 1e-3 for ReLU(PE)).
        damping: λ, added as √λ to both factors before inversion (paper: 0.1).
        update_freq: steps between refreshes of the factors (paper: 100).
    """

    state_key = "kfac"

    def __init__(self, params, model: nn.Module, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, damping: float = 0.1, update_freq: int = 100):
        check(("betas", betas, "a pair (β1, β2), each in [0, 1)"), ("damping", damping, "must be > 0"),
              ("update_freq", update_freq, "a positive integer"))
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.damping = damping
        self.update_freq = int(update_freq)
        optimized = {id(p) for group in self.param_groups for p in group["params"]}
        self.layers = [m for m in model.modules()
                       if isinstance(m, nn.Linear) and all(id(p) in optimized for p in m.parameters())]
        self.recording = False
        self.captured = {}  # layer index -> [inputs, output grads]
        self.inverses = {}  # layer index -> (inverse of damped G, inverse of damped A)
        self.steps = 0
        for index, layer in enumerate(self.layers):
            layer.register_forward_hook(self._recorder(index))

    def _recorder(self, index: int):
        def record(module, inputs, output):
            if not (self.recording and output.requires_grad):
                return
            self.captured[index] = [inputs[0].detach(), None]
            output.register_hook(lambda grad: self.captured[index].__setitem__(1, grad.detach()))
        return record

    def _refresh_inverses(self) -> None:
        for index, layer in enumerate(self.layers):
            if index not in self.captured or self.captured[index][1] is None:
                raise RuntimeError(f"KFACAdam: layer {layer} was not run forward and backward in the "
                                   "closure; build the optimizer with the model that the closure evaluates")
            a_factor, g_factor = kfac_factors(*self.captured[index], bias=layer.bias is not None)
            self.inverses[index] = tuple(
                torch.linalg.inv(factor + self.damping**0.5 * torch.eye(len(factor), device=factor.device))
                for factor in (g_factor, a_factor)
            )
        self.captured = {}

    def _precondition(self) -> None:
        """Replace each hooked layer's gradients by `G⁻¹ ∇W A⁻¹` (bias as last column)."""
        for index, layer in enumerate(self.layers):
            if layer.weight.grad is None:
                continue
            if layer.weight.grad.is_sparse:
                raise RuntimeError("KFACAdam does not support sparse gradients")
            g_inverse, a_inverse = self.inverses[index]
            grad = layer.weight.grad
            if layer.bias is not None:
                grad = torch.cat([grad, layer.bias.grad[:, None]], dim=1)
            preconditioned = g_inverse @ grad @ a_inverse
            layer.weight.grad = preconditioned[:, : layer.in_features].contiguous()
            if layer.bias is not None:
                layer.bias.grad = preconditioned[:, -1].contiguous()

    @torch.no_grad()
    def step(self, closure=None):
        """One step. `closure()` zeroes the gradients, computes the loss, calls
        `loss.backward()` and returns the loss; it must run the model given here."""
        if closure is None:
            raise RuntimeError("KFACAdam.step needs a closure(create_graph=False) that zeroes the gradients, "
                               "computes the loss with the model given to the optimizer, calls loss.backward("
                               "create_graph=create_graph) and returns the loss; see pnf.optim.kfac")
        refresh = self.steps % self.update_freq == 0
        self.recording = refresh
        try:
            with torch.enable_grad():
                loss = closure()
        finally:
            self.recording = False
        if refresh:
            self._refresh_inverses()
        self._precondition()
        super().step()
        self.steps += 1
        return loss

    def state_dict(self) -> dict:
        """Adam's state plus the step count and the factor inverses."""
        return {**super().state_dict(), self.state_key: {"steps": self.steps, "inverses": dict(self.inverses)}}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict, kfac = own_state(self, state_dict)
        super().load_state_dict(state_dict)
        self.steps = kfac["steps"]
        self.inverses = {i: tuple(t.clone() for t in pair) for i, pair in kfac["inverses"].items()}


register("kfac_adam", OptimizerSpec(KFACAdam, {"lr": 1e-4, "damping": 0.1, "update_freq": 100}, {"relu": {"lr": 1e-3}},
                                    label="K-FAC + Adam", needs_model=True))
