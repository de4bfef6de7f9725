"""Volume rendering for NeRF: cameras and rays, stratified sampling, alpha compositing.

Conventions (those of NeRF and the Blender scenes): a pose is a camera-to-world
matrix `[4, 4]` whose camera looks along its -z axis with +y up and +x right; pixel
(row i, column j) of an H×W image with focal length f (pixels) has the camera-space
direction `((j + ½ − W/2)/f, −(i + ½ − H/2)/f, −1)`. Directions are not normalised,
so a ray's parameter t is depth along the camera axis, in world units; a ray is
`[origin (3), direction (3)]`, rays of a batch `[N, 6]`.

Sampling splits `[near, far]` into S equal bins and takes one point per bin, at a
uniformly jittered place when a generator is given (training) and at the bin's middle
otherwise (evaluation, deterministic). Compositing treats the density as constant over
each bin, so a bin of width δ along a direction d has opacity `1 − exp(−σ δ |d|)`.
"""

import torch
import torch.nn.functional as F
from torch import nn

from pnf.fields import make_field


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Camera-to-world pose `[4, 4]` of a camera at `eye` `[3]` looking at `target` `[3]`."""
    backward = F.normalize(eye - target, dim=0)
    right = F.normalize(torch.linalg.cross(up, backward), dim=0)
    true_up = torch.linalg.cross(backward, right)
    pose = torch.eye(4)
    pose[:3, :3] = torch.stack([right, true_up, backward], dim=1)
    pose[:3, 3] = eye
    return pose


def ring_poses(count: int, radius: float, elevation_deg: float, offset_deg: float = 0.0) -> torch.Tensor:
    """`count` poses `[count, 4, 4]` evenly spaced in azimuth (starting at `offset_deg`)
    on a circle of `radius` at `elevation_deg` above the z = 0 plane, looking at the origin (+z up)."""
    azimuths = torch.deg2rad(offset_deg + torch.arange(count) * 360.0 / count)
    elevation = torch.deg2rad(torch.tensor(elevation_deg))
    eyes = radius * torch.stack(
        [torch.cos(azimuths) * torch.cos(elevation), torch.sin(azimuths) * torch.cos(elevation),
         torch.sin(elevation).expand(count)], dim=-1)
    up = torch.tensor([0.0, 0.0, 1.0])
    return torch.stack([look_at(eye, torch.zeros(3), up) for eye in eyes])


def pixel_rays(poses: torch.Tensor, height: int, width: int, focal: float) -> torch.Tensor:
    """Rays through every pixel centre: poses `[V, 4, 4]` -> rays `[V, H, W, 6]`."""
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                                torch.arange(width, dtype=torch.float32), indexing="ij")
    camera = torch.stack([(cols + 0.5 - width / 2) / focal, -(rows + 0.5 - height / 2) / focal,
                          -torch.ones_like(rows)], dim=-1)  # [H, W, 3]
    rotations, origins = poses[:, :3, :3], poses[:, :3, 3]
    directions = torch.einsum("vij,hwj->vhwi", rotations, camera)
    return torch.cat([origins[:, None, None].expand_as(directions), directions], dim=-1)


def sample_depths(count: int, near: float, far: float, samples: int,
                  generator: torch.Generator | None = None, device=None) -> tuple[torch.Tensor, float]:
    """Stratified depths `[count, samples]` in `[near, far]` and the bin width δ.

    One depth per equal bin: jittered uniformly inside it with `generator`, else its middle.
    """
    width = (far - near) / samples
    starts = near + width * torch.arange(samples, device=device, dtype=torch.float32)
    if generator is None:
        return (starts + width / 2).expand(count, samples), width
    jitter = torch.rand(count, samples, generator=generator, device=device)
    return starts + width * jitter, width


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
    `(density [M], color [M, 3])`."""
    origins, directions = rays[:, :3], rays[:, 3:]
    depths, width = sample_depths(len(rays), near, far, samples, generator, rays.device)
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
