"""Differentiable silhouettes of triangle meshes: a SoftRas-style soft rasteriser in PyTorch.

SoftRas (Liu et al., ICCV 2019, Eq. 1 and 4): each face j covers pixel p with probability
D_j(p) = sigmoid(δ_j(p) · d_j(p)² / σ), δ = +1 inside the projected triangle and −1 outside, and the
silhouette is 1 − Π_j (1 − D_j(p)). Pixels are processed in chunks so that memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SoftRasterConfig:
    sigma: float = 1.0
    """Sharpness σ in squared pixels: the silhouette blurs over about √σ pixels at the boundary."""
    cutoff: float = 8.0
    """Faces farther than cutoff·√σ pixels from a pixel are skipped there (their D is below 1e-3)."""
    max_chunk_elements: int = 8_000_000
    """Pixel × face pairs evaluated at once; bounds memory (≈ 40 bytes per pair with gradients)."""
    near: float = 1e-3
    """Vertices closer to the camera than this (metres) are clamped, so projection stays finite."""


def project(vertices: Tensor, K: Tensor, near: float) -> Tensor:
    """Pinhole projection of camera-frame points. (B, V, 3) → (B, V, 2) pixel coordinates (x, y)."""
    z = vertices[..., 2:].clamp_min(near)
    uv = vertices[..., :2] / z
    return uv * torch.stack([K[0, 0], K[1, 1]]) + torch.stack([K[0, 2], K[1, 2]])


def _pixel_face_sqdist(p: Tensor, tri: Tensor) -> tuple[Tensor, Tensor]:
    """Squared distance from pixels to projected triangles, and whether each pixel is inside.

    Args:
        p: (P, 2) pixel centres.
        tri: (F, 3, 2) projected triangles.

    Returns:
        (P, F) squared distances to the triangle boundary, (P, F) bool inside.
    """
    p = p[:, None, :]
    best = None
    signs = []
    for i in range(3):
        a, b = tri[None, :, i], tri[None, :, (i + 1) % 3]
        e = b - a
        ap = p - a
        t = ((ap * e).sum(-1) / (e * e).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
        d2 = ((ap - t[..., None] * e) ** 2).sum(-1)
        best = d2 if best is None else torch.minimum(best, d2)
        signs.append(e[..., 0] * ap[..., 1] - e[..., 1] * ap[..., 0])
    s = torch.stack(signs)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area2 = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).abs()
    # A triangle seen edge-on has zero area: every edge function is 0 and would call all pixels inside.
    inside = ((s >= 0).all(0) | (s <= 0).all(0)) & (area2 > 1e-12)[None]
    return best, inside


def soft_silhouette(
    vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int], cfg: SoftRasterConfig
) -> Tensor:
    """Soft silhouettes of a batch of meshes sharing one topology.

    Args:
        vertices: (B, V, 3) camera frame (OpenCV axes), metres.
        faces: (F, 3) long.
        K: (3, 3) intrinsics for ``image_size``.
        image_size: (H, W).
        cfg: sharpness and chunking.

    Returns:
        (B, H, W) silhouettes in [0, 1], differentiable w.r.t. ``vertices``.
    """
    H, W = image_size
    ys, xs = torch.meshgrid(
        torch.arange(H, dtype=vertices.dtype, device=vertices.device),
        torch.arange(W, dtype=vertices.dtype, device=vertices.device),
        indexing="ij",
    )
    pixels = torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5
    reach = cfg.cutoff * cfg.sigma**0.5
    out = []
    for b in range(vertices.shape[0]):
        tri = project(vertices[b], K, cfg.near)[faces]  # (F, 3, 2)
        lo, hi = tri.min(1).values - reach, tri.max(1).values + reach
        rows = []
        chunk = max(1, cfg.max_chunk_elements // max(1, faces.shape[0]))
        for start in range(0, pixels.shape[0], chunk):
            p = pixels[start : start + chunk]
            # Only faces whose padded box contains some pixel of the chunk take part in it.
            near = (hi[:, 0] >= p[:, 0].min()) & (lo[:, 0] <= p[:, 0].max())
            near &= (hi[:, 1] >= p[:, 1].min()) & (lo[:, 1] <= p[:, 1].max())
            if not near.any():
                rows.append(p.new_zeros(p.shape[0]))
                continue
            d2, inside = _pixel_face_sqdist(p, tri[near])
            sign = torch.where(inside, 1.0, -1.0).to(d2.dtype)
            coverage = torch.sigmoid(sign * d2 / cfg.sigma).clamp(max=1.0 - 1e-6)
            coverage = torch.where(inside | (d2 <= reach**2), coverage, torch.zeros_like(coverage))
            log_empty = torch.log1p(-coverage).sum(1)
            rows.append(1.0 - torch.exp(log_empty))
        out.append(torch.cat(rows).reshape(H, W))
    return torch.stack(out)


def hard_silhouette(vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Exact coverage of pixel centres by the projected triangles (no gradient). → (B, H, W) bool."""
    H, W = image_size
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    pixels = (torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5).to(vertices.dtype)
    out = []
    with torch.no_grad():
        for b in range(vertices.shape[0]):
            tri = project(vertices[b], K, 1e-6)[faces]
            covered = torch.zeros(pixels.shape[0], dtype=torch.bool)
            chunk = max(1, 4_000_000 // max(1, faces.shape[0]))
            for start in range(0, pixels.shape[0], chunk):
                _, inside = _pixel_face_sqdist(pixels[start : start + chunk], tri)
                covered[start : start + chunk] = inside.any(1)
            out.append(covered.reshape(H, W))
    return torch.stack(out)
