"""Pure loss terms of the pose refinement (HOLD §3.4; interpenetration and smoothness beyond HOLD).

Each function maps tensors to a scalar (or per-frame values) and has no state; the weights and the
units are applied by ``hold.refine.optimize``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def silhouette_l1(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Occlusion-aware silhouette term (HOLD §3.4, L_mask), per frame.

    ``Σ_p w_p |S_p − M_p| / Σ_p w_p M_p``: the L1 error over the counted pixels, normalised by the
    mask's area so that the value does not depend on the image size or how large the node appears.

    Args:
        pred: (B, H, W) soft silhouettes.
        target: (B, H, W) mask fractions in [0, 1].
        weight: (B, H, W) fraction of each pixel that counts (0 where another node may occlude).

    Returns:
        (B,) per-frame errors (a missing node's error is its rendered area, in mask pixels).
    """
    err = (weight * (pred - target).abs()).sum((1, 2))
    area = (weight * target).sum((1, 2)).clamp_min(1.0)
    return err / area


def nearest_distance(query: Tensor, reference: Tensor) -> Tensor:
    """Distance of each query point to its nearest reference point, per frame.

    The nearest neighbour is searched without gradient; the distance to it is differentiable w.r.t.
    both sets (the same gradient as that of the minimum, without backpropagating the full matrix).

    Args:
        query: (B, N, 3). reference: (B, M, 3).

    Returns:
        (B, N) distances.
    """
    with torch.no_grad():
        idx = torch.cdist(query, reference).argmin(-1)  # (B, N)
    nearest = torch.gather(reference, 1, idx[..., None].expand(-1, -1, 3))
    return (query - nearest).norm(dim=-1)


def region_gaps(distances: Tensor, regions: list[Tensor]) -> Tensor:
    """The smallest distance within each vertex region: (B, V) and R id tensors → (B, R)."""
    return torch.stack([distances[:, ids].min(-1).values for ids in regions], -1)


def contact_gaps(distances: Tensor, regions: list[Tensor], per: str) -> Tensor:
    """The gaps the contact term averages.

    Args:
        distances: (B, V) distance of each contact vertex to the object.
        regions: R id tensors into the V vertices.
        per: ``"region"``: each region's smallest distance, (B, R); ``"vertex"``: every vertex's own
            distance, (B, V) (HOLD Eq. 16).
    """
    if per == "vertex":
        return distances
    if per == "region":
        return region_gaps(distances, regions)
    raise ValueError(f"per: expected 'region' or 'vertex', found {per!r}")


def contact(gaps: Tensor, robust_distance: float = 0.0) -> Tensor:
    """Contact term (HOLD §3.4 Eq. 16, L_contact): mean squared gap of the contact regions or vertices.

    Args:
        gaps: (B, R) distance of each contact region (or vertex, see ``contact_gaps``) to the object.
        robust_distance: 0: plain squared gaps (HOLD). Else Geman-McClure with this scale,
            ``σ² g² / (g² + σ²)``: ≈ g² in contact, and a region far off (a lifted finger) costs at most
            σ² but is still pulled (no gate that switches the term off when hand and object start apart).

    Returns:
        Scalar: mean over frames and regions.
    """
    sq = gaps.square()
    if robust_distance > 0:
        sigma2 = robust_distance**2
        sq = sigma2 * sq / (sq + sigma2)
    return sq.mean()


def penetration(sdf: Tensor) -> Tensor:
    """Interpenetration: squared depth of the points inside a shape, summed over points, mean over frames.

    Args:
        sdf: (B, N) signed distance of points to the other shape (negative inside; +inf to ignore).
    """
    return torch.relu(-sdf).square().sum(-1).mean()


def translation_smoothness(x: Tensor, order: int) -> Tensor:
    """Temporal smoothness of a trajectory (HOnnotate / HOMan), mean over consecutive frames.

    Args:
        x: (T, D) per-frame values (e.g. translations).
        order: 0 penalises ‖x_t+1 − x_t‖² (velocity), 1 penalises ‖x_t+1 − 2x_t + x_t−1‖² (acceleration).

    Returns:
        Scalar; 0 when the trajectory is too short for the order.
    """
    d = torch.diff(x, n=order + 1, dim=0)
    return d.square().sum(-1).mean() if len(d) else x.sum() * 0


def rotation_smoothness(R: Tensor, order: int) -> Tensor:
    """Temporal smoothness of rotations (T, 3, 3) without axis-angle wrap-around.

    Order 0 penalises ‖R_t+1 − R_t‖²_F; order 1 the change of the relative rotation,
    ‖R_t+1 R_tᵀ − R_t R_t−1ᵀ‖²_F (constant angular velocity costs nothing).
    """
    if order == 0:
        d = R[1:] - R[:-1]
    else:
        rel = R[1:] @ R[:-1].transpose(1, 2)
        d = rel[1:] - rel[:-1]
    return d.square().sum((1, 2)).mean() if len(d) else R.sum() * 0


def spread(x: Tensor, fixed: int = 0) -> Tensor:
    """Mean squared deviation of per-frame values (n, ...) from their mean: 0 when all frames agree.

    With ``fixed`` > 0 the first ``fixed`` rows are already decided (context frames of an earlier chunk):
    the other rows deviate from their mean instead, so that a chunk cannot shift the value it continues.
    """
    centre = x[:fixed].mean(0) if fixed else x.mean(0)
    rows = x[fixed:]
    return (rows - centre).square().reshape(len(rows), -1).sum(-1).mean()


def squared_deviation(x: Tensor, x0: Tensor) -> Tensor:
    """Prior ‖x − x0‖² (hand shape β, log object scale)."""
    return (x - x0).square().sum()


def keypoint_anchor(uv: Tensor, uv0: Tensor) -> Tensor:
    """Mean squared pixel distance between projected keypoints (B, K, 2) and their anchors."""
    return (uv - uv0).square().sum(-1).mean()
