"""Muon for a field's hidden weight matrices, AdamW for everything else.

Muon (Jordan et al. 2024, `torch.optim.Muon`) steps a weight matrix `W [out, in]` by the
orthogonalised Nesterov momentum of its gradient (five Newton-Schulz iterations, so the
step has all singular values near 1), scaled by `lr · sqrt(max(1, out/in))`. It is meant
for the hidden layers only: the input layer (which reads the coordinates), the output
layer and every bias go to AdamW, as its authors prescribe.

`MuonAdamW` holds one `torch.optim.Muon` and one `torch.optim.AdamW` and steps both;
its `param_groups` are theirs (so LR schedulers drive both) and its `state_dict` holds
both states. A parameter group you pass is split into its Muon and its AdamW part: keys
you set in the group (e.g. `lr`) apply to both parts, the others take each part's
defaults.

Presets: Muon's lr 0.02, momentum 0.95 with Nesterov and 5 Newton-Schulz steps are the
settings of Keller Jordan's Muon README (`MuonWithAuxAdam` example); its weight decay
(0.01 there) is 0 here, since the paper fits fields without regularisation. The AdamW
part takes the paper's Adam preset for the field (lr 1e-4, 1e-3 for ReLU(PE);
betas (0.9, 0.999)), without weight decay.
"""

import torch
from torch import nn

from pnf.optim.baselines import adam_rates
from pnf.optim.registry import OptimizerSpec, check, evaluate, register, saved_by


def hidden_weights(model: nn.Module) -> list[nn.Parameter]:
    """The weight matrices `[out, in]` of `model`'s hidden linear maps, in module order:
    every `nn.Linear` except the leading ones with the first map's input width (the
    input layer; both maps of a Gabor input layer) and the last one (the output layer)."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        return []
    input_width = linears[0].in_features
    first_hidden = next((i for i, m in enumerate(linears) if m.in_features != input_width), len(linears))
    return [m.weight for m in linears[first_hidden:-1]]


class MuonAdamW(torch.optim.Optimizer):
    """Muon on `model`'s hidden weight matrices among `params`, AdamW on the rest.

    Args:
        params: parameters or parameter groups (of `model`).
        model: the field, whose `nn.Linear` layers say which matrices are hidden.
        lr, momentum, nesterov, ns_steps, weight_decay: Muon's (preset 0.02, 0.95,
            True, 5, 0).
        adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay: AdamW's (preset: the
            field's Adam preset lr, (0.9, 0.999), 1e-8, 0).
    """

    def __init__(self, params, model: nn.Module, lr: float = 0.02, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5, weight_decay: float = 0.0, adamw_lr: float = 1e-4,
                 adamw_betas: tuple[float, float] = (0.9, 0.999), adamw_eps: float = 1e-8,
                 adamw_weight_decay: float = 0.0):
        check(("momentum", momentum, "must lie in [0, 1)"), ("ns_steps", ns_steps, "an integer in [1, 100)"),
              ("adamw_betas", adamw_betas, "a pair (β1, β2), each in [0, 1)"))
        super().__init__(params, {})  # the groups as given, with only the keys set in them
        groups, hidden = self.param_groups, {id(weight) for weight in hidden_weights(model)}
        muon_groups = [{**g, "params": [p for p in g["params"] if id(p) in hidden]} for g in groups]
        adamw_groups = [{**g, "params": [p for p in g["params"] if id(p) not in hidden]} for g in groups]
        muon_groups = [g for g in muon_groups if g["params"]]
        adamw_groups = [g for g in adamw_groups if g["params"]]
        self.parts: dict[str, torch.optim.Optimizer] = {}
        if muon_groups:
            self.parts["muon"] = torch.optim.Muon(muon_groups, lr=lr, momentum=momentum, nesterov=nesterov,
                                                  ns_steps=int(ns_steps), weight_decay=weight_decay)
        if adamw_groups:
            self.parts["adamw"] = torch.optim.AdamW(adamw_groups, lr=adamw_lr, betas=adamw_betas,
                                                    eps=adamw_eps, weight_decay=adamw_weight_decay)
        self.defaults = {"lr": lr, "adamw_lr": adamw_lr}
        self.param_groups = self._part_groups()

    def _part_groups(self) -> list[dict]:
        """The parts' own group dicts (Muon's first), shared so that changing one here changes it there."""
        return [group for part in self.parts.values() for group in part.param_groups]

    @torch.no_grad()
    def step(self, closure=None):
        """Evaluate `closure` (if given) for the loss and gradients, then step both parts."""
        loss = evaluate(closure)
        for part in self.parts.values():
            part.step()
        return loss

    def state_dict(self) -> dict:
        """Each part's `state_dict`, by part name ("muon", "adamw")."""
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        if "param_groups" in state_dict:
            raise ValueError(f"MuonAdamW.load_state_dict: this state was saved by {saved_by(state_dict)}, not by "
                             "MuonAdamW (whose state holds one state per part); load a state that MuonAdamW saved")
        if set(state_dict) != set(self.parts):
            raise ValueError(f"MuonAdamW state has parts {sorted(state_dict)}; this optimizer has {sorted(self.parts)}")
        for name, part in self.parts.items():
            part.load_state_dict(state_dict[name])
        self.param_groups = self._part_groups()


ADAMW_RATE, PER_ACTIVATION = adam_rates("adamw_lr")
register("muon", OptimizerSpec(
    MuonAdamW, {"lr": 0.02, "momentum": 0.95, **ADAMW_RATE}, PER_ACTIVATION, label="Muon (+AdamW)",
    needs_model=True,
    source="Keller Jordan's Muon README (lr 0.02, momentum 0.95, Nesterov, 5 Newton-Schulz steps; "
           "weight decay 0 for fields); AdamW part at the paper's Adam preset",
))
