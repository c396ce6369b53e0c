"""Forward and inverse linear blend skinning for points off the hand mesh (HOLD §3.2, hand node).

A point's skinning weights are blended from its K nearest hand vertices (Gaussian kernel on their
distances), then ``x_posed = (Σ_b w_b T_b) x_canonical``. The inverse warp solves the same blended
transform for ``x_canonical``, with the weights taken from the *posed* mesh, so it is exact for the
weights it returns: warping back with them gives the input point again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hold.config.hand import HandConfig
from hold.hand.kinematics import apply_affine, solve_affine
from hold.hand.model import HandModel, HandOutput


@dataclass
class WarpResult:
    """A warp of points between posed and canonical space.

    Attributes:
        points: (B, N, 3) warped points.
        weights: (B, N, nb) skinning weights used.
        distance: (B, N) distance of each input point to its nearest reference vertex (metres).
        valid: (B, N) bool, ``distance < max_dist``.
        neighbours: (B, N, k) indices of the reference vertices the weights were blended from.
    """

    points: Tensor
    weights: Tensor
    distance: Tensor
    valid: Tensor
    neighbours: Tensor


def _check_query(points: Tensor, vertices: Tensor) -> Tensor:
    """``vertices`` as (B, V, 3) for (B, N, 3) ``points``, with clear errors on wrong shapes."""
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points: expected shape (B, N, 3), found {tuple(points.shape)}")
    if vertices.dim() == 2:
        vertices = vertices[None].expand(points.shape[0], -1, -1)
    if vertices.shape[0] != points.shape[0] or vertices.shape[-1] != 3:
        raise ValueError(f"vertices: expected shape ({points.shape[0]}, V, 3), found {tuple(vertices.shape)}")
    return vertices


# Vertices per block of the two-level nearest-vertex search (16 measured fastest of 8–64 on the hand).
_BLOCK_ROWS = 16


@torch.no_grad()
def nearest_vertices(points: Tensor, vertices: Tensor, k: int, chunk: int) -> Tensor:
    """Indices (B, N, k) of the K nearest of (B, V, 3) or (V, 3) ``vertices`` to (B, N, 3) ``points``.

    The costly part of skinning arbitrary points (a points × vertices distance matrix and its top-k),
    so callers that query the same points twice pass the indices on (``HandDeformer.to_canonical``).
    Ties between equally distant vertices may be ordered differently from a plain top-k.
    """
    vertices = _check_query(points, vertices)
    k = min(k, vertices.shape[1])
    blocks = -(-vertices.shape[1] // _BLOCK_ROWS)
    if blocks <= k:  # too few vertices for the blocked search to save anything
        search = _plain_top_k
    else:
        vertices = _pad_vertices(vertices, blocks * _BLOCK_ROWS)
        search = _blocked_top_k
    # cdist's matrix-product form is fast but loses precision near zero: it only ranks the neighbours,
    # whose distances ``blend_weights`` recomputes exactly
    return torch.cat([search(torch.cdist(p, vertices), k) for p in points.split(chunk, dim=1)], dim=1)


def _plain_top_k(distance: Tensor, k: int) -> Tensor:
    return distance.topk(k, dim=-1, largest=False).indices


def _pad_vertices(vertices: Tensor, count: int) -> Tensor:
    """Vertices padded to ``count`` with points 1 km away, which are never among the nearest."""
    far = vertices.new_full((vertices.shape[0], count - vertices.shape[1], 3), 1e3)
    return torch.cat([vertices, far], dim=1)


def _blocked_top_k(distance: Tensor, k: int) -> Tensor:
    """Top-k smallest of (B, N, V) distances in two levels, exact: on the CPU a top-k over whole rows of
    V costs several times the distance matrix itself.

    The vertices form V/R blocks of R (block j holds vertices j, j + V/R, …, so a block is a strided
    slice and its minimum an elementwise one). The k nearest vertices lie in the k blocks with the
    smallest minima: a vertex in any other block has at least k blocks' minima below it. One top-k over
    the block minima, one over those k blocks' R·k distances.
    """
    b, n, v = distance.shape
    blocks = v // _BLOCK_ROWS
    grid = distance.view(b, n, _BLOCK_ROWS, blocks)  # vertex s·blocks + j at [s, j]
    nearest_blocks = grid.amin(2).topk(k, dim=-1, largest=False).indices  # (B, N, k) block ids j
    candidates = grid.gather(3, nearest_blocks[:, :, None, :].expand(b, n, _BLOCK_ROWS, k))
    best = candidates.flatten(2).topk(k, dim=-1, largest=False).indices  # s·k + column
    return (best // k) * blocks + nearest_blocks.gather(2, best % k)


def blend_weights(
    points: Tensor, vertices: Tensor, neighbours: Tensor, vertex_weights: Tensor, sigma: float
) -> tuple[Tensor, Tensor]:
    """Skinning weights of points from given neighbour vertices (Gaussian kernel on their distances).

    Args:
        points: (B, N, 3). vertices: (B, V, 3) or (V, 3). neighbours: (B, N, k) vertex indices.
        vertex_weights: (V, nb) skinning weights of the vertices. sigma: kernel width (metres).

    Returns:
        weights (B, N, nb), summing to 1, and the distance (B, N) to the nearest neighbour.
    """
    vertices = _check_query(points, vertices)
    if vertex_weights.shape[0] != vertices.shape[1]:
        raise ValueError(
            f"vertex_weights: expected shape ({vertices.shape[1]}, nb), found {tuple(vertex_weights.shape)}"
        )
    near = torch.gather(vertices, 1, neighbours.flatten(1)[..., None].expand(-1, -1, 3))
    d2k = (near.view(*neighbours.shape, 3) - points[:, :, None]).square().sum(-1)
    kernel = torch.softmax(-d2k / (2.0 * sigma**2), dim=-1)
    weights = (kernel[..., None] * vertex_weights[neighbours]).sum(dim=-2)
    return weights, d2k.min(dim=-1).values.sqrt()


def knn_skinning_weights(
    points: Tensor, vertices: Tensor, vertex_weights: Tensor, k: int, sigma: float, chunk: int
) -> tuple[Tensor, Tensor]:
    """Skinning weights of arbitrary points from their K nearest vertices.

    Args:
        points: (B, N, 3) query points.
        vertices: (B, V, 3) or (V, 3) reference vertices (same space as ``points``).
        vertex_weights: (V, nb) skinning weights of the vertices.
        k: number of neighbours (clamped to V).
        sigma: Gaussian kernel width (metres) on the neighbour distances.
        chunk: points per distance-matrix chunk.

    Returns:
        weights (B, N, nb), summing to 1, and the nearest-vertex distance (B, N).
    """
    return blend_weights(
        points, vertices, nearest_vertices(points, vertices, k, chunk), vertex_weights, sigma
    )


def blend_transforms(weights: Tensor, bone_transforms: Tensor) -> Tensor:
    """(B, N, nb) weights × (B, nb, 4, 4) bone transforms → (B, N, 3, 4) blended affine maps."""
    b, nb = bone_transforms.shape[:2]
    if weights.shape[0] != b or weights.shape[-1] != nb:
        raise ValueError(f"weights: expected shape ({b}, N, {nb}), found {tuple(weights.shape)}")
    return (weights @ bone_transforms[..., :3, :].reshape(b, nb, 12)).view(b, -1, 3, 4)


def warp_to_posed(points: Tensor, weights: Tensor, bone_transforms: Tensor) -> Tensor:
    """Forward LBS: canonical points (B, N, 3) → posed points (B, N, 3)."""
    return apply_affine(blend_transforms(weights, bone_transforms), points)


def warp_to_canonical(points: Tensor, weights: Tensor, bone_transforms: Tensor) -> Tensor:
    """Inverse LBS: posed points (B, N, 3) → canonical points, inverting the blended transform."""
    return solve_affine(blend_transforms(weights, bone_transforms), points)


class HandDeformer(nn.Module):
    """Inverse/forward LBS for the hand field, with K, sigma and the validity radius from config.

    Args:
        model: the hand model (gives the skinning weights).
        cfg: hand config (``skinning_k``, ``skinning_sigma``, ``skinning_max_dist``, ``skinning_chunk``).
    """

    def __init__(self, model: HandModel, cfg: HandConfig) -> None:
        super().__init__()
        self.model = model
        self.k = cfg.skinning_k
        self.sigma = cfg.skinning_sigma
        self.max_dist = cfg.skinning_max_dist
        self.chunk = cfg.skinning_chunk

    def _neighbours(self, points: Tensor, vertices: Tensor, known: Tensor | None) -> Tensor:
        """(B, N, k) nearest-vertex indices; rows of ``known`` (B, N, k) that hold indices (≥ 0) are
        taken as they are, only the others are searched."""
        if known is None:
            return nearest_vertices(points, vertices, self.k, self.chunk)
        missing = known[..., 0] < 0
        out = known.clone()
        for b in range(points.shape[0]):  # frames differ in how many points were not searched before
            if missing[b].any():
                found = nearest_vertices(
                    points[b : b + 1, missing[b]], vertices[b : b + 1], self.k, self.chunk
                )
                out[b, missing[b]] = found[0]
        return out

    def to_canonical(self, points: Tensor, posed: HandOutput, known: Tensor | None = None) -> WarpResult:
        """Posed-space points (B, N, 3) → canonical, weights from the K nearest posed vertices.

        ``known`` (B, N, k): neighbour indices already found for some of the points (−1 rows for the
        others), e.g. by the sampler's pass over the same depths; they give the same weights.
        """
        idx = self._neighbours(points, posed.vertices, known)
        w, d = blend_weights(points, posed.vertices, idx, self.model.skinning_weights, self.sigma)
        x = warp_to_canonical(points, w, posed.bone_transforms)
        return WarpResult(points=x, weights=w, distance=d, valid=d < self.max_dist, neighbours=idx)

    def to_posed(self, points: Tensor, posed: HandOutput, canonical_vertices: Tensor) -> WarpResult:
        """Canonical points (B, N, 3) → posed, weights from the K nearest canonical vertices (V, 3)."""
        idx = nearest_vertices(points, canonical_vertices, self.k, self.chunk)
        w, d = blend_weights(points, canonical_vertices, idx, self.model.skinning_weights, self.sigma)
        x = warp_to_posed(points, w, posed.bone_transforms)
        return WarpResult(points=x, weights=w, distance=d, valid=d < self.max_dist, neighbours=idx)
