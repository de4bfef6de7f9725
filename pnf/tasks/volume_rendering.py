"""Volume rendering for NeRF: stratified sampling along rays and alpha compositing.

Rays follow `pnf.data.cameras` (`[N, 6]`, unnormalised directions, t is depth in world
units). Sampling splits `[near, far]` into S equal bins and takes one point per bin, at a
uniformly jittered place when a generator is given (training) and at the bin's middle
otherwise (evaluation, deterministic). Compositing treats the density as constant over
each bin, so a bin of width δ along a direction d has opacity `1 − exp(−σ δ |d|)`.
"""

import torch
import torch.nn.functional as F
from torch import nn

from pnf.fields import make_field


def composite(density: torch.Tensor, color: torch.Tensor, segment: torch.Tensor,
              background: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Alpha compositing front to back.

    density `[N, S]` (per world unit), color `[N, S, 3]`, segment `[N, S]` (the world
    length each sample stands for) -> (pixel colors `[N, 3]`, weights `[N, S]`). The
    light left after the last sample shows the `background` color.
    """
    optical_depth = density * segment
    alpha = 1.0 - torch.exp(-optical_depth)
    # Transmittance before sample k: exp(-sum of the optical depths in front of it).
    transmittance = torch.exp(-torch.cumsum(F.pad(optical_depth[:, :-1], (1, 0)), dim=-1))
    weights = alpha * transmittance
    rgb = (weights[..., None] * color).sum(dim=1) + background * (1.0 - weights.sum(dim=1, keepdim=True))
    return rgb, weights


def render_rays(field, rays: torch.Tensor, near: float, far: float, samples: int, background: float,
                scale: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Colors `[N, 3]` of rays `[N, 6]` through a radiance `field` mapping points
    `[M, 3]` (divided by `scale`, so the scene fits in about [-1, 1]³) to
    `(density [M], color [M, 3])`. Depths are stratified: one per equal bin of width δ,
    jittered uniformly inside it with `generator`, else at its middle."""
    origins, directions = rays[:, :3], rays[:, 3:]
    width = (far - near) / samples
    starts = near + width * torch.arange(samples, device=rays.device, dtype=torch.float32)
    jitter = 0.5 if generator is None else torch.rand(len(rays), samples, generator=generator, device=rays.device)
    depths = starts + width * jitter  # [N, S], or [S] (the bin middles, the same for every ray)
    points = origins[:, None] + depths[..., None] * directions[:, None]  # [N, S, 3]
    density, color = field(points.reshape(-1, 3) / scale)
    segment = width * directions.norm(dim=-1, keepdim=True).expand(-1, samples)
    rgb, _ = composite(density.reshape(-1, samples), color.reshape(-1, samples, 3), segment, background)
    return rgb


class RadianceField(nn.Module):
    """A field `[M, 3] -> [M, 4]` read as density (softplus, as mip-NeRF; per world
    unit) and color (sigmoid). Color depends on position only (see `pnf.tasks.nerf`)."""

    def __init__(self, activation: str, **field_options):
        super().__init__()
        self.mlp = make_field(activation, 3, 4, **field_options)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.mlp(points)
        return F.softplus(raw[:, 0]), torch.sigmoid(raw[:, 1:])


class Renderer(nn.Module):
    """Rays `[N, 6]` -> colors `[N, 3]`: a `RadianceField` volume-rendered over `samples`
    stratified depths in `[near, far]`. In training mode the depths are jittered with the
    renderer's own seeded generator; in eval mode they are the bin middles."""

    def __init__(self, field: RadianceField, near: float, far: float, samples: int, background: float,
                 scale: float, generator: torch.Generator):
        super().__init__()
        self.field = field
        self.near, self.far, self.samples = near, far, samples
        self.background, self.scale = background, scale
        self.generator = generator

    def get_extra_state(self) -> torch.Tensor:
        """The jitter generator's state, saved in the state dict so a resumed run
        continues the same stream."""
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def forward(self, rays: torch.Tensor) -> torch.Tensor:
        generator = self.generator if self.training else None
        return render_rays(self.field, rays, self.near, self.far, self.samples, self.background,
                           self.scale, generator)
