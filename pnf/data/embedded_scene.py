"""The embedded NeRF scene, which needs no download: three Lambertian spheres on a slab
before a white background, rendered by analytic ray–primitive intersection (independently
of NeRF's volume renderer) from a ring of 40 training and 4 held-out test poses."""

import numpy as np
import torch
import torch.nn.functional as F

from pnf.data.cameras import pixel_rays, ring_poses

SPHERES = (  # centre (x, y, z), radius, albedo
    ((0.45, -0.1, 0.05), 0.45, (0.85, 0.15, 0.1)),
    ((-0.45, 0.4, -0.05), 0.35, (0.1, 0.7, 0.2)),
    ((-0.25, -0.55, -0.1), 0.3, (0.15, 0.3, 0.9)),
)
SLAB = ((-0.9, -0.9, -0.6), (0.9, 0.9, -0.4), (0.9, 0.75, 0.3))  # box min, box max, albedo
LIGHT = (0.4, -0.3, 0.87)  # direction towards the light
SUPERSAMPLING = 3  # subpixels per side: anti-aliased (soft) edges
LEGO_CAMERA_ANGLE_X = 0.6911112070083618  # horizontal field of view (radians) of the Blender scenes
TEST_VIEWS = tuple(range(40, 44))
VIEWS = 44  # 40 training views, then the test views


def render_views(width: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The scene at `width`² pixels: images `[44, W, W, 3]` in [0, 1], poses `[44, 4, 4]` and the
    focal length (pixels). 40 training views on a ring (radius 4, 30° elevation), then the
    4 `TEST_VIEWS` between them (at 20°); field of view as Lego's."""
    poses = torch.cat([ring_poses(40, 4.0, 30.0), ring_poses(4, 4.0, 20.0, offset_deg=20.0)])
    focal = 0.5 * width / np.tan(0.5 * LEGO_CAMERA_ANGLE_X)
    fine = SUPERSAMPLING * width
    rays = pixel_rays(poses, fine, fine, focal * SUPERSAMPLING).reshape(-1, 6)
    colors = trace(rays).reshape(len(poses), fine, fine, 3).permute(0, 3, 1, 2)
    images = F.avg_pool2d(colors, SUPERSAMPLING).permute(0, 2, 3, 1).contiguous()
    return images, poses, float(focal)


def trace(rays: torch.Tensor) -> torch.Tensor:
    """Colors `[N, 3]` of rays `[N, 6]` hitting the embedded scene: the nearest surface,
    Lambert-shaded with ambient light, else white."""
    origins, directions = rays[:, :3], rays[:, 3:]
    hits = [_sphere_hit(origins, directions, torch.tensor(centre), radius) for centre, radius, _ in SPHERES]
    hits.append(_box_hit(origins, directions, torch.tensor(SLAB[0]), torch.tensor(SLAB[1])))
    depths = torch.stack([depth for depth, _ in hits])  # [objects, N], inf where missed
    nearest = depths.argmin(0)
    normal = torch.stack([normal for _, normal in hits])[nearest, torch.arange(len(rays))]
    albedo = torch.tensor([albedo for _, _, albedo in SPHERES] + [SLAB[2]])[nearest]
    shade = 0.35 + 0.65 * (normal @ F.normalize(torch.tensor(LIGHT), dim=0)).clamp(min=0)
    color = albedo * shade[:, None]
    return torch.where(torch.isinf(depths.min(0).values)[:, None], torch.ones_like(color), color)


def _sphere_hit(origins, directions, centre, radius) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth `[N]` of the first positive intersection with a sphere (inf if none) and the
    outward normal `[N, 3]` there."""
    offset = origins - centre
    a = (directions * directions).sum(-1)
    b = 2 * (directions * offset).sum(-1)
    c = (offset * offset).sum(-1) - radius**2
    discriminant = b * b - 4 * a * c
    depth = (-b - torch.sqrt(discriminant.clamp(min=0))) / (2 * a)
    depth = torch.where((discriminant > 0) & (depth > 0), depth, torch.full_like(depth, float("inf")))
    return depth, (origins + depth.masked_fill(torch.isinf(depth), 0)[:, None] * directions - centre) / radius


def _box_hit(origins, directions, low, high) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth `[N]` of the entry into an axis-aligned box (inf if missed) and the
    outward normal `[N, 3]` of the face entered (slab method)."""
    inverse = 1.0 / directions
    t_low, t_high = (low - origins) * inverse, (high - origins) * inverse
    t_near, t_far = torch.minimum(t_low, t_high), torch.maximum(t_low, t_high)
    entry, axis = t_near.max(-1)
    exit_ = t_far.min(-1).values
    hit = (entry <= exit_) & (entry > 0)
    normal = F.one_hot(axis, 3).float() * -torch.sign(directions.gather(1, axis[:, None]))
    return torch.where(hit, entry, torch.full_like(entry, float("inf"))), normal
