"""Inverse LBS for the hand field: K-nearest-vertex weights, forward and inverse warps."""

from __future__ import annotations

import pytest
import torch

from hold.config.hand import HandConfig
from hold.hand.anatomy import vertex_normals
from hold.hand.skinning import (
    HandDeformer,
    knn_skinning_weights,
    nearest_vertices,
    warp_to_canonical,
    warp_to_posed,
)


def _posed(hand, n: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    p = dict(
        global_orient=torch.randn(n, 3, generator=g),
        pose=hand.sample_pose(HandConfig().joint_limits, n, g, scale=0.8),
        betas=torch.zeros(1, hand.num_betas),
        transl=torch.randn(n, 3, generator=g) * 0.1 + torch.tensor([0.0, 0.0, 0.5]),
    )
    return hand(**p)


def _near_surface(vertices: torch.Tensor, faces: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """(n, 3) points within ±5 mm of the mesh along the vertex normals."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, vertices.shape[0], (n,), generator=g)
    offset = (torch.rand(n, 1, generator=g) - 0.5) * 0.01
    return vertices[idx] + offset * vertex_normals(vertices, faces)[idx]


def test_forward_then_inverse_round_trip(anny_right):
    """Canonical → posed → canonical with the blended transforms returns the point (< 1e-5 m)."""
    h = anny_right
    out = _posed(h)
    can = h.canonical_vertices()
    pts = _near_surface(can, h.faces, 4000, 1)[None].expand(2, -1, -1)
    w, _ = knn_skinning_weights(pts, can, h.skinning_weights, k=6, sigma=0.005, chunk=1000)
    posed = warp_to_posed(pts, w, out.bone_transforms)
    back = warp_to_canonical(posed, w, out.bone_transforms)
    assert (back - pts).norm(dim=-1).max() < 1e-5
    assert (posed - pts).norm(dim=-1).mean() > 0.05  # the warp did move them


def test_inverse_warp_of_posed_vertices_recovers_canonical(anny_right):
    """With K = 1 the posed mesh vertices go back exactly to the canonical mesh (Anny LBS is exact)."""
    h = anny_right
    out = _posed(h)
    cfg = HandConfig(skinning_k=1)
    res = HandDeformer(h, cfg).to_canonical(out.vertices, out)
    assert (res.points - h.canonical_vertices()).norm(dim=-1).max() < 1e-5
    assert res.valid.all() and res.distance.max() < 1e-6


def test_deformer_round_trip_and_validity(anny_right):
    """Observation-space samples near the posed hand: inverse then forward with the same weights."""
    h = anny_right
    out = _posed(h, seed=3)
    d = HandDeformer(h, HandConfig())
    pts = torch.stack([_near_surface(out.vertices[b], h.faces, 3000, b) for b in range(2)])
    far = torch.tensor([[0.0, 0.0, 5.0]]).expand(2, 1, 3)
    res = d.to_canonical(torch.cat([pts, far], dim=1), out)
    assert res.weights.shape == (2, 3001, h.num_bones)
    assert torch.allclose(res.weights.sum(-1), torch.ones(2, 3001), atol=1e-5)
    assert res.valid[:, :-1].all() and not res.valid[:, -1].any()
    again = warp_to_posed(res.points, res.weights, out.bone_transforms)
    assert (again[:, :-1] - pts).norm(dim=-1).max() < 1e-5
    # canonical points land near the canonical mesh (blended weights: within a few mm)
    can = h.canonical_vertices()
    dist = torch.cdist(res.points[:, :-1], can[None].expand(2, -1, -1)).min(-1).values
    assert dist.median() < 0.004
    fwd = d.to_posed(res.points[:, :-1], out, can)
    assert (fwd.points - pts).norm(dim=-1).median() < 0.003


def test_known_neighbours_give_the_same_warp(anny_right):
    """Indices found before (the sampler's pass) are reused, the rest searched: the same warp as a
    search of every point."""
    h = anny_right
    out = _posed(h, seed=5)
    d = HandDeformer(h, HandConfig())
    pts = torch.stack([_near_surface(out.vertices[b], h.faces, 500, b + 7) for b in range(2)])
    full = d.to_canonical(pts, out)
    known = full.neighbours.clone()
    known[0, ::3] = -1  # frames with different numbers of points still to search
    known[1, ::2] = -1
    reused = d.to_canonical(pts, out, known)
    assert torch.equal(reused.neighbours, full.neighbours)
    assert torch.equal(reused.weights, full.weights) and torch.equal(reused.points, full.points)


def test_knn_weights_check_shapes(anny_right):
    h = anny_right
    with pytest.raises(ValueError, match=r"points: expected shape \(B, N, 3\)"):
        knn_skinning_weights(torch.zeros(10, 3), h.canonical_vertices(), h.skinning_weights, 4, 0.005, 100)
    with pytest.raises(ValueError, match=r"vertex_weights"):
        knn_skinning_weights(
            torch.zeros(1, 10, 3), h.canonical_vertices(), h.skinning_weights[:5], 4, 0.005, 100
        )


@pytest.mark.parametrize("num_vertices", [5, 40, 97, 1609])
def test_nearest_vertices_match_a_brute_force_search(num_vertices):
    """The blocked two-level search finds vertices at exactly the brute-force K nearest distances,
    also for vertex counts that do not fill the last block and for fewer blocks than K."""
    gen = torch.Generator().manual_seed(num_vertices)
    vertices = torch.rand(2, num_vertices, 3, generator=gen) * 0.1
    points = torch.randn(2, 700, 3, generator=gen) * 0.08 + 0.05
    found = nearest_vertices(points, vertices, k=6, chunk=256)
    k = min(6, num_vertices)
    assert found.shape == (2, 700, k)
    distance = torch.cdist(points, vertices)
    expected = distance.topk(k, dim=-1, largest=False).values
    assert torch.equal(distance.gather(2, found).sort(-1).values, expected)
    assert (found.sort(-1).values.diff(dim=-1) > 0).all()  # k different vertices
