"""Per-pixel rays of a pinhole camera and their intervals inside bounding spheres.

Conventions (docs/formats.md): OpenCV camera (x right, y down, z forward) at the origin; camera frame =
world frame. A ray is ``x(t) = o + t·v``; with unit directions ``t`` is the distance along the ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RayInterval:
    """Where rays cross a sphere.

    Attributes:
        near: (R,) entry depth, clamped to >= 0 (0 when the ray starts inside the sphere).
        far: (R,) exit depth. Rays that miss get the empty interval ``near == far`` at the depth of
            their closest approach to the centre, so samplers and renderers handle them without a
            special case (a zero-length interval renders nothing).
        hit: (R,) bool, True where the ray crosses the sphere in front of its origin.
    """

    near: Tensor
    far: Tensor
    hit: Tensor


def pixel_grid(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Pixel-centre coordinates of a ``height × width`` image in row-major order.

    Returns:
        (H·W, 2) float (x, y), OpenCV convention: integer coordinates are pixel centres.
    """
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def pixel_rays(K: Tensor, pixels: Tensor, normalize: bool = True) -> tuple[Tensor, Tensor]:
    """Rays through pixels of a pinhole camera at the origin.

    Args:
        K: (..., 3, 3) intrinsics, broadcastable against the batch dims of ``pixels``.
        pixels: (..., R, 2) pixel coordinates (x, y), OpenCV convention (integers are pixel centres).
        normalize: unit directions (depth t = distance along the ray); ``False`` gives directions with
            z = 1 (t = z-depth).

    Returns:
        origins (..., R, 3) zeros, directions (..., R, 3), both of ``pixels``' dtype.
    """
    K = K.to(pixels)
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
    # K⁻¹ [x, y, 1]ᵀ for every pixel; solve() avoids an explicit inverse of K.
    directions = torch.linalg.solve(K.unsqueeze(-3), homogeneous.unsqueeze(-1)).squeeze(-1)
    if normalize:
        directions = directions / directions.norm(dim=-1, keepdim=True)
    return torch.zeros_like(directions), directions


def ray_points(origins: Tensor, directions: Tensor, z: Tensor) -> Tensor:
    """Points ``o + z·v`` along each ray.

    Args:
        origins: (R, 3). directions: (R, 3). z: (R, S) depths.

    Returns:
        (R, S, 3) points.
    """
    return origins.unsqueeze(-2) + z.unsqueeze(-1) * directions.unsqueeze(-2)


def sphere_intersection(
    origins: Tensor, directions: Tensor, center: Tensor, radius: Tensor | float
) -> RayInterval:
    """Near/far depths of each ray inside a sphere (solves |o + t v − c|² = r² for t).

    Args:
        origins: (R, 3) ray origins.
        directions: (R, 3) ray directions (any non-zero length; depths are in units of |v|).
        center: (3,) or (R, 3) sphere centre (e.g. a node's per-frame centre gathered per ray).
        radius: scalar or (R,) sphere radius.

    Returns:
        The :class:`RayInterval` of every ray; misses have ``near == far`` and ``hit`` False.
    """
    radius = torch.as_tensor(radius, dtype=origins.dtype, device=origins.device)
    oc = origins - center
    a = (directions * directions).sum(-1)
    half_b = (directions * oc).sum(-1)
    c = (oc * oc).sum(-1) - radius**2
    disc = half_b**2 - a * c
    t_mid = -half_b / a  # depth of the closest approach to the centre
    half_width = disc.clamp_min(0).sqrt() / a
    hit = (disc > 0) & (t_mid + half_width > 0)
    near = torch.where(hit, (t_mid - half_width).clamp_min(0), t_mid.clamp_min(0))
    far = torch.where(hit, t_mid + half_width, near)
    return RayInterval(near=near, far=far, hit=hit)
