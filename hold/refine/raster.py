"""Differentiable silhouettes of triangle meshes: a SoftRas-style soft rasteriser in PyTorch.

SoftRas (Liu et al., ICCV 2019, Eq. 1 and 4): each face j covers pixel p with probability
D_j(p) = sigmoid(δ_j(p) · d_j(p)² / σ), δ = +1 inside the projected triangle and −1 outside, and the
silhouette is 1 − Π_j (1 − D_j(p)) (or, by default, that product over the faces containing p times
1 − max D_j over the others: see ``SoftRasterConfig.outside``).

Faces are binned into square pixel tiles by their padded screen-space boxes, and only (face, tile)
pairs that can interact are evaluated, batched over every frame at once; the pairs are processed in
chunks (recomputed in the backward pass when there is more than one), so memory stays bounded. A
DIB-R backend from kaolin (``kaolin_raster``) sits behind the same function when it is installed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from hold.config.refine import SoftRasterConfig
from hold.geometry.camera import project
from hold.utils.external import resolve_backend


def _pixel_face_sqdist(p: Tensor, tri: Tensor) -> tuple[Tensor, Tensor]:
    """Squared distance from pixels to projected triangles, and whether each pixel is inside.

    Args:
        p: (..., M, 2) pixel centres.
        tri: (..., 3, 2) projected triangles (leading dims broadcast against those of ``p``).

    Returns:
        (..., M) squared distances to the triangle boundary, (..., M) bool inside.
    """
    tri = tri[..., None, :, :]  # (..., 1, 3, 2)
    best = None
    signs = []
    for i in range(3):
        a, b = tri[..., i, :], tri[..., (i + 1) % 3, :]
        e = b - a
        ap = p - a
        t = ((ap * e).sum(-1) / (e * e).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
        d2 = ((ap - t[..., None] * e) ** 2).sum(-1)
        best = d2 if best is None else torch.minimum(best, d2)
        signs.append(e[..., 0] * ap[..., 1] - e[..., 1] * ap[..., 0])
    s = torch.stack(signs)
    e1, e2 = tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :]
    area2 = (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]).abs()
    # A triangle seen edge-on has zero area: every edge function is 0 and would call all pixels inside.
    inside = ((s >= 0).all(0) | (s <= 0).all(0)) & (area2 > 1e-12)
    return best, inside


def _face_coverage(
    tri: Tensor, pixels: Tensor, sigma: float, reach: float, max_outside: bool
) -> tuple[Tensor, Tensor]:
    """Coverage of (n,) faces at their tiles' pixels. tri (n, 3, 2), pixels (n, M, 2).

    Returns:
        log(1 − D) (n, M) of the pairs aggregated by product (all of them, or only pixels inside the
        face when ``max_outside``) and D (n, M) of the outside pairs aggregated by maximum (else 0).
    """
    d2, inside = _pixel_face_sqdist(pixels, tri)
    sign = torch.where(inside, 1.0, -1.0).to(d2.dtype)
    coverage = torch.sigmoid(sign * d2 / sigma).clamp(max=1.0 - 1e-6)
    zero = torch.zeros_like(coverage)
    coverage = torch.where(inside | (d2 <= reach**2), coverage, zero)
    if not max_outside:
        return torch.log1p(-coverage), zero
    return torch.log1p(-torch.where(inside, coverage, zero)), torch.where(inside, zero, coverage)


def _face_tile_pairs(tri: Tensor, reach: float, tile: int, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Every (face, tile) pair whose padded face box overlaps the tile.

    Args:
        tri: (N, 3, 2) projected faces (all frames flattened).
        reach: padding of the face boxes, pixels.
        tile: tile side, pixels.
        size: (H, W).

    Returns:
        face index (P,) into ``tri`` and tile origin (P, 2) in pixels (x, y).
    """
    H, W = size
    with torch.no_grad():
        lo = tri.min(1).values - reach
        hi = tri.max(1).values + reach
        # Pixel centres sit at i + 0.5; tile k holds centres k·tile + 0.5 … (k + 1)·tile − 0.5.
        t0 = torch.floor((lo - 0.5) / tile).clamp_min(0)
        limit = torch.tensor([math.ceil(W / tile) - 1, math.ceil(H / tile) - 1], device=tri.device)
        t1 = torch.minimum(torch.floor((hi - 0.5) / tile), limit.to(hi.dtype))
        ok = torch.isfinite(lo).all(1) & torch.isfinite(hi).all(1) & (t1 >= t0).all(1)
        t0, t1 = t0.long(), t1.long()
        n = (t1 - t0 + 1).clamp_min(0)
        count = torch.where(ok, n[:, 0] * n[:, 1], torch.zeros_like(n[:, 0]))
        face = torch.repeat_interleave(torch.arange(tri.shape[0], device=tri.device), count)
        start = torch.cumsum(count, 0) - count
        k = torch.arange(face.shape[0], device=tri.device) - start[face]
        nx = n[face, 0]
        origin = torch.stack([t0[face, 0] + k % nx, t0[face, 1] + k // nx], -1) * tile
    return face, origin


def soft_silhouette(
    vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int], cfg: SoftRasterConfig
) -> Tensor:
    """Soft silhouettes of a batch of meshes sharing one topology.

    Args:
        vertices: (B, V, 3) camera frame (OpenCV axes), metres.
        faces: (F, 3) long.
        K: (3, 3) intrinsics for ``image_size``.
        image_size: (H, W).
        cfg: sharpness, tiling and chunking (``cfg.backend`` is ignored: see ``render_silhouettes``).

    Returns:
        (B, H, W) silhouettes in [0, 1], differentiable w.r.t. ``vertices``.
    """
    H, W = image_size
    B, F = vertices.shape[0], faces.shape[0]
    reach = cfg.cutoff * cfg.sigma**0.5
    tri = project(vertices, K, cfg.near)[:, faces].reshape(B * F, 3, 2)
    keep = None
    if cfg.cull_backfaces:
        # With x right and y down, a face whose outward normal points to the camera projects clockwise.
        with torch.no_grad():
            e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
            keep = torch.nonzero(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0)[:, 0]
    face, origin = _face_tile_pairs(tri if keep is None else tri[keep], reach, cfg.tile_size, (H, W))
    if keep is not None:
        face = keep[face]
    ts = cfg.tile_size
    dy, dx = torch.meshgrid(torch.arange(ts), torch.arange(ts), indexing="ij")
    offsets = torch.stack([dx, dy], -1).reshape(-1, 2).to(vertices.device)  # (M, 2)
    # One extra slot collects the pixels of partial tiles that fall outside the image.
    log_empty = vertices.new_zeros(B * H * W + 1)
    nearest_outside = vertices.new_zeros(B * H * W + 1)
    max_outside = cfg.outside == "max"
    chunk = max(1, cfg.max_chunk_elements // (ts * ts))
    chunked = face.shape[0] > chunk and torch.is_grad_enabled() and vertices.requires_grad
    for start in range(0, face.shape[0], chunk):
        f = face[start : start + chunk]
        pix = origin[start : start + chunk, None, :] + offsets  # (n, M, 2) integer pixel indices
        inside = (pix[..., 0] < W) & (pix[..., 1] < H)
        flat = (f // F)[:, None] * (H * W) + pix[..., 1] * W + pix[..., 0]
        flat = torch.where(inside, flat, torch.full_like(flat, B * H * W))
        centres = pix.to(vertices.dtype) + 0.5
        args = (tri[f], centres, cfg.sigma, reach, max_outside)
        if chunked:  # recompute in backward: only the chunk's inputs (and outside maxima) stay alive
            log_values, outside = checkpoint(_face_coverage, *args, use_reentrant=False)
        else:
            log_values, outside = _face_coverage(*args)
        flat = flat.reshape(-1)
        log_empty = log_empty.index_add(0, flat, log_values.reshape(-1))
        if max_outside:
            nearest_outside = nearest_outside.scatter_reduce(0, flat, outside.reshape(-1), "amax")
    empty = torch.exp(log_empty) * (1.0 - nearest_outside)
    return 1.0 - empty[:-1].reshape(B, H, W)


def resolve_raster_backend(requested: str, device: torch.device) -> str:
    """``auto | torch | kaolin`` → the rasteriser to run for meshes on ``device``."""
    return resolve_backend(
        requested,
        feature="silhouette rasteriser",
        setting="refine.raster.backend",
        fallback="torch",
        accelerated="kaolin",
        package="kaolin",
        blocker=lambda: None if device.type == "cuda" else "the meshes are not on a CUDA device",
    )


def render_silhouettes(
    vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int], cfg: SoftRasterConfig
) -> Tensor:
    """Soft silhouettes (B, H, W) with the backend chosen by ``cfg.backend`` (see ``soft_silhouette``)."""
    if resolve_raster_backend(cfg.backend, vertices.device) == "kaolin":
        from hold.refine.kaolin_raster import kaolin_silhouette

        return kaolin_silhouette(vertices, faces, K, image_size, cfg)
    return soft_silhouette(vertices, faces, K, image_size, cfg)


def hard_silhouette(vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Exact coverage of pixel centres by the projected triangles (no gradient). → (B, H, W) bool."""
    H, W = image_size
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    pixels = (torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5).to(vertices.dtype).to(vertices.device)
    out = []
    with torch.no_grad():
        for b in range(vertices.shape[0]):
            tri = project(vertices[b], K, 1e-6)[faces]
            covered = torch.zeros(pixels.shape[0], dtype=torch.bool, device=vertices.device)
            chunk = max(1, 4_000_000 // max(1, faces.shape[0]))
            for start in range(0, pixels.shape[0], chunk):
                _, inside = _pixel_face_sqdist(pixels[None, start : start + chunk], tri)  # (F, n)
                covered[start : start + chunk] = inside.any(0)
            out.append(covered.reshape(H, W))
    return torch.stack(out)
