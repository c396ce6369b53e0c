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
    """

    points: Tensor
    weights: Tensor
    distance: Tensor
    valid: Tensor


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
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points: expected shape (B, N, 3), found {tuple(points.shape)}")
    if vertices.dim() == 2:
        vertices = vertices[None].expand(points.shape[0], -1, -1)
    if vertices.shape[0] != points.shape[0] or vertices.shape[-1] != 3:
        raise ValueError(f"vertices: expected shape ({points.shape[0]}, V, 3), found {tuple(vertices.shape)}")
    if vertex_weights.shape[0] != vertices.shape[1]:
        raise ValueError(
            f"vertex_weights: expected shape ({vertices.shape[1]}, nb), found {tuple(vertex_weights.shape)}"
        )
    k = min(k, vertices.shape[1])
    weights, dists = [], []
    for start in range(0, points.shape[1], chunk):
        p = points[:, start : start + chunk]
        # cdist's matrix-product form is fast but loses precision near zero: it only ranks the
        # neighbours, whose distances are then recomputed exactly
        idx = torch.cdist(p, vertices).topk(k, dim=-1, largest=False).indices  # (B, n, k)
        near = torch.gather(vertices, 1, idx.flatten(1)[..., None].expand(-1, -1, 3)).view(*idx.shape, 3)
        d2k = (near - p[:, :, None]).square().sum(-1)
        kernel = torch.softmax(-d2k / (2.0 * sigma**2), dim=-1)
        weights.append((kernel[..., None] * vertex_weights[idx]).sum(dim=-2))
        dists.append(d2k.min(dim=-1).values.sqrt())
    return torch.cat(weights, dim=1), torch.cat(dists, dim=1)


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

    def _weights(self, points: Tensor, vertices: Tensor) -> tuple[Tensor, Tensor]:
        return knn_skinning_weights(
            points, vertices, self.model.skinning_weights, self.k, self.sigma, self.chunk
        )

    def to_canonical(self, points: Tensor, posed: HandOutput) -> WarpResult:
        """Posed-space points (B, N, 3) → canonical, weights from the K nearest posed vertices."""
        w, d = self._weights(points, posed.vertices)
        x = warp_to_canonical(points, w, posed.bone_transforms)
        return WarpResult(points=x, weights=w, distance=d, valid=d < self.max_dist)

    def to_posed(self, points: Tensor, posed: HandOutput, canonical_vertices: Tensor) -> WarpResult:
        """Canonical points (B, N, 3) → posed, weights from the K nearest canonical vertices (V, 3)."""
        w, d = self._weights(points, canonical_vertices)
        x = warp_to_posed(points, w, posed.bone_transforms)
        return WarpResult(points=x, weights=w, distance=d, valid=d < self.max_dist)
