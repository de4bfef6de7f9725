"""Cameras and rays, shared by the scene loaders and NeRF's volume rendering.

Conventions (those of NeRF and the Blender scenes): a pose is a camera-to-world
matrix `[4, 4]` whose camera looks along its -z axis with +y up and +x right; pixel
(row i, column j) of an H×W image with focal length f (pixels) has the camera-space
direction `((j + ½ − W/2)/f, −(i + ½ − H/2)/f, −1)`. Directions are not normalised,
so a ray's parameter t is depth along the camera axis, in world units; a ray is
`[origin (3), direction (3)]`, rays of a batch `[N, 6]`.
"""

import torch
import torch.nn.functional as F


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
