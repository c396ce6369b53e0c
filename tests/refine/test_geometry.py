"""SDF grids, occlusion-aware mask targets and the object mesh extraction of stage 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from hold.config.refine import RefineConfig
from hold.data.sequence import LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN
from hold.geometry.mesh import signed_distance
from hold.refine.geometry import object_geometry
from hold.refine.sdf_grid import SDFGrid
from hold.refine.targets import occlusion_aware_targets, raster_size, scale_intrinsics


def test_sdf_grid_matches_the_exact_distance_and_has_gradients():
    box = trimesh.creation.box(extents=(0.4, 0.3, 0.2))
    grid = SDFGrid.around_mesh(box.vertices, box.faces, 48, 0.1)
    rng = np.random.default_rng(0)
    pts = rng.uniform(grid.lo.numpy(), grid.hi.numpy(), size=(500, 3))
    exact = signed_distance(pts, box.vertices, box.faces)
    x = torch.tensor(pts, dtype=torch.float32, requires_grad=True)
    sdf = grid(x)
    voxel = float((grid.hi - grid.lo).max()) / 47
    assert np.abs(sdf.detach().numpy() - exact).max() < voxel
    (g,) = torch.autograd.grad(sdf.sum(), x)
    # Just inside the +x face the gradient points along +x.
    inner = torch.tensor([[0.18, 0.0, 0.0]], requires_grad=True)
    (gi,) = torch.autograd.grad(grid(inner).sum(), inner)
    assert gi[0, 0] > 0.9 and abs(gi[0, 1]) < 0.1 and g.norm(dim=1).mean() > 0.5


def test_object_geometry_from_an_sdf_is_decimated_and_watertight():
    cfg = RefineConfig(mesh_resolution=32, mesh_faces=200, sdf_grid_resolution=16, object_points=300)

    def sphere_and_floater(x: torch.Tensor) -> torch.Tensor:
        big = x.norm(dim=-1) - 0.6
        small = (x - torch.tensor([0.9, 0.9, 0.9])).norm(dim=-1) - 0.1  # dropped: not the largest part
        return torch.minimum(big, small)

    geo = object_geometry(sphere_and_floater, 1.1, cfg)
    assert geo.mesh.is_watertight and len(geo.faces) <= 200
    assert geo.points.shape == (300, 3)
    assert geo.points.norm(dim=1).max() < 0.7  # the floater is gone
    assert geo.sdf(torch.zeros(1, 3)).item() == pytest.approx(-0.6, abs=0.1)


def test_targets_are_occlusion_aware():
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, :, :2] = LABEL_OBJECT
    labels[0, 0, 0] = LABEL_RIGHT  # the hand covers one object pixel
    labels[0, 3, 3] = LABEL_UNKNOWN
    obj_t, obj_w, hand_t, hand_w = occlusion_aware_targets(labels, ["right"], (4, 4))
    assert obj_w[0, 0, 0] == 0 and obj_w[0, 3, 3] == 0 and obj_w[0, 1, 0] == 1
    assert obj_t[0, 1, 0] == 1 and obj_t[0, 1, 3] == 0
    assert hand_w["right"][0, 1, 0] == 0 and hand_w["right"][0, 0, 0] == 1 and hand_w["right"][0, 3, 3] == 0
    assert hand_t["right"][0, 0, 0] == 1
    # Area averaging: a 2 × 2 block with one object pixel out of three counted ones.
    obj_t, obj_w, _, _ = occlusion_aware_targets(labels, ["right"], (2, 2))
    assert obj_w[0, 0, 0].item() == pytest.approx(0.75)
    assert obj_t[0, 0, 0].item() == pytest.approx(1.0)


def test_raster_size_and_intrinsics():
    assert raster_size((256, 320), 128) == (102, 128)
    assert raster_size((64, 64), 128) == (64, 64)  # never upscaled
    K = scale_intrinsics(np.array([[200.0, 0, 160], [0, 200, 128], [0, 0, 1]]), (256, 320), (128, 160))
    assert K[0, 0].item() == 100 and K[0, 2].item() == 80 and K[1, 2].item() == 64
