from __future__ import annotations

import numpy as np
import pytest
import torch

from hold.geometry.mesh import EmptySurfaceError, extract_mesh, signed_distance


def _two_spheres(x: torch.Tensor) -> torch.Tensor:
    big = (x - torch.tensor([-0.3, 0, 0])).norm(dim=-1) - 0.4
    floater = (x - torch.tensor([0.6, 0, 0])).norm(dim=-1) - 0.1
    return torch.minimum(big, floater)


def test_extract_keeps_largest_component_and_decimates():
    mesh = extract_mesh(_two_spheres, (-1.0, 1.0), 64, max_faces=1500)
    assert len(mesh.faces) <= 1500 and mesh.is_watertight and mesh.volume > 0
    radii = np.linalg.norm(mesh.vertices - [-0.3, 0, 0], axis=1)
    assert np.abs(radii - 0.4).max() < 0.03  # the floater at x=0.6 is gone


def test_empty_surface_is_a_clear_error():
    with pytest.raises(EmptySurfaceError, match="no surface"):
        extract_mesh(lambda x: x.norm(dim=-1) + 1.0, (-1.0, 1.0), 16)


def test_signed_distance_sign_convention():
    mesh = extract_mesh(lambda x: x.norm(dim=-1) - 0.5, (-1.0, 1.0), 48)
    d = signed_distance(np.array([[0.0, 0, 0], [0.9, 0, 0]]), mesh.vertices, mesh.faces)
    assert d[0] == pytest.approx(-0.5, abs=0.01) and d[1] == pytest.approx(0.4, abs=0.01)
