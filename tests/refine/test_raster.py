from __future__ import annotations

import numpy as np
import torch
import trimesh
from scipy import ndimage

from hold.refine.raster import SoftRasterConfig, hard_silhouette, soft_silhouette

K = torch.tensor([[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]])


def _mesh(offset=(0.0, 0.0, 0.6)):
    box = trimesh.creation.box(extents=(0.15, 0.1, 0.12))
    box.apply_transform(trimesh.transformations.rotation_matrix(0.6, [1, 1, 0]))
    v = torch.tensor(box.vertices, dtype=torch.float32) + torch.tensor(offset)
    return v[None], torch.tensor(box.faces, dtype=torch.long)


def test_soft_matches_hard_within_one_pixel_along_the_boundary():
    v, f = _mesh()
    hard = hard_silhouette(v, f, K, (64, 64))[0].numpy()
    soft = soft_silhouette(v, f, K, (64, 64), SoftRasterConfig(sigma=0.05))[0]
    soft_mask = (soft > 0.5).numpy()
    assert hard.sum() > 300
    disagree = soft_mask != hard
    # Distance of every pixel to the hard boundary (the pixels where the mask changes).
    boundary = hard ^ ndimage.binary_erosion(hard)
    dist = ndimage.distance_transform_edt(~boundary)
    assert dist[disagree].max(initial=0) <= 1.0
    assert torch.all((soft >= 0) & (soft <= 1))


def test_chunking_does_not_change_the_result():
    v, f = _mesh()
    a = soft_silhouette(v, f, K, (32, 32), SoftRasterConfig(sigma=1.0, max_chunk_elements=10**9))
    b = soft_silhouette(v, f, K, (32, 32), SoftRasterConfig(sigma=1.0, max_chunk_elements=500))
    assert torch.allclose(a, b, atol=1e-6)


def test_gradient_moves_the_silhouette_towards_a_target():
    v, f = _mesh()
    target = hard_silhouette(v, f, K, (48, 48)).float()
    shift = torch.tensor([0.03, 0.0, 0.0], requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.004)
    cfg = SoftRasterConfig(sigma=1.0)
    first = None
    for _ in range(40):
        loss = ((soft_silhouette(v + shift, f, K, (48, 48), cfg) - target) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    assert abs(shift[0].item()) < 0.01


def test_edge_on_triangle_covers_nothing():
    v = torch.tensor([[[0.0, 0.0, 0.5], [0.0, 0.0, 0.6], [0.0, 0.0, 0.7]]])  # on the optical axis
    f = torch.tensor([[0, 1, 2]])
    assert not hard_silhouette(v, f, K, (16, 16)).any()
    assert np.isclose(
        soft_silhouette(v, f, K, (16, 16), SoftRasterConfig(sigma=0.01)).max().item(), 0, atol=1e-3
    )
