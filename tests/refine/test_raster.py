from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from scipy import ndimage

from hold.config.refine import SoftRasterConfig
from hold.refine.raster import hard_silhouette, soft_silhouette

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
    shift = torch.tensor([0.03, 0.0], requires_grad=True)  # in the image plane (depth barely shows)
    opt = torch.optim.Adam([shift], lr=0.004)
    cfg = SoftRasterConfig(sigma=1.0)
    first = None
    for _ in range(40):
        moved = v + torch.cat([shift, shift.new_zeros(1)])
        loss = ((soft_silhouette(moved, f, K, (48, 48), cfg) - target) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # A soft silhouette never equals a hard mask: compare with the loss at the exact position.
    floor = ((soft_silhouette(v, f, K, (48, 48), cfg) - target) ** 2).mean().item()
    assert loss.item() - floor < 0.1 * (first - floor)
    assert abs(shift[0].item()) < 0.005


def test_edge_on_triangle_covers_nothing():
    v = torch.tensor([[[0.0, 0.0, 0.5], [0.0, 0.0, 0.6], [0.0, 0.0, 0.7]]])  # on the optical axis
    f = torch.tensor([[0, 1, 2]])
    assert not hard_silhouette(v, f, K, (16, 16)).any()
    assert np.isclose(
        soft_silhouette(v, f, K, (16, 16), SoftRasterConfig(sigma=0.01)).max().item(), 0, atol=1e-3
    )


def test_tile_size_and_backface_culling_do_not_change_the_silhouette():
    v, f = _mesh()
    ref = soft_silhouette(v, f, K, (40, 40), SoftRasterConfig(sigma=0.3, tile_size=8, cull_backfaces=False))
    for tile in (1, 3):
        out = soft_silhouette(
            v, f, K, (40, 40), SoftRasterConfig(sigma=0.3, tile_size=tile, cull_backfaces=False)
        )
        assert torch.allclose(out, ref, atol=1e-6)
    culled = soft_silhouette(v, f, K, (40, 40), SoftRasterConfig(sigma=0.05, cull_backfaces=True))
    hard = hard_silhouette(v, f, K, (40, 40))
    assert ((culled > 0.5) == hard).float().mean() > 0.98  # front faces cover the same silhouette


def test_batched_frames_and_memory_bounded_chunks_with_gradients():
    v, f = _mesh()
    batch = torch.cat([v, v + torch.tensor([0.02, 0.0, 0.0])]).requires_grad_(True)
    cfg_one = SoftRasterConfig(sigma=0.5, max_chunk_elements=10**9)
    cfg_many = SoftRasterConfig(sigma=0.5, max_chunk_elements=64)  # many checkpointed chunks
    a = soft_silhouette(batch, f, K, (32, 32), cfg_one)
    b = soft_silhouette(batch, f, K, (32, 32), cfg_many)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(a[0], soft_silhouette(v, f, K, (32, 32), cfg_one)[0], atol=1e-6)
    (ga,) = torch.autograd.grad(a.square().sum(), batch)
    (gb,) = torch.autograd.grad(b.square().sum(), batch)
    assert torch.allclose(ga, gb, atol=1e-5) and ga.abs().sum() > 0


def test_auto_backend_falls_back_to_torch_on_the_cpu():
    from hold.refine.raster import render_silhouettes, resolve_raster_backend
    from hold.utils.external import _reset_for_tests, is_available

    _reset_for_tests()
    if not is_available("kaolin"):
        with pytest.warns(UserWarning, match="PyTorch implementation"):
            assert resolve_raster_backend("auto", torch.device("cpu")) == "torch"
    v, f = _mesh()
    cfg = SoftRasterConfig(sigma=0.5, backend="torch")
    assert torch.equal(render_silhouettes(v, f, K, (16, 16), cfg), soft_silhouette(v, f, K, (16, 16), cfg))
    with pytest.raises(ValueError, match="tcnn"):
        resolve_raster_backend("tcnn", torch.device("cpu"))


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available()
    or not __import__("hold.utils.external").utils.external.is_available("kaolin"),
    reason="needs a CUDA GPU and kaolin",
)
def test_kaolin_backend_agrees_with_torch():
    from hold.refine.raster import render_silhouettes

    v, f = _mesh()
    v, f, Kc = v.cuda(), f.cuda(), K.cuda()
    soft = render_silhouettes(v, f, Kc, (64, 64), SoftRasterConfig(backend="kaolin")) > 0.5
    hard = hard_silhouette(v, f, Kc, (64, 64))
    iou = (soft & hard).sum() / (soft | hard).sum()
    assert iou > 0.9, "kaolin silhouette disagrees with the reference (image orientation?)"
