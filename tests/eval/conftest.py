"""Shared fixtures of the evaluation tests: a small asymmetric object and a fixed large rotation."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation


@pytest.fixture(scope="session")
def asymmetric_mesh() -> trimesh.Trimesh:
    """Three boxes of different sizes in an asymmetric arrangement (~8 cm): no rotational symmetry.

    Shared by the session: tests must copy it before changing it.
    """
    parts = [
        trimesh.creation.box((0.08, 0.03, 0.02)),
        trimesh.creation.box((0.02, 0.05, 0.02)).apply_translation((0.03, 0.04, 0.0)),
        trimesh.creation.box((0.02, 0.02, 0.04)).apply_translation((-0.03, 0.0, 0.03)),
    ]
    return trimesh.util.concatenate(parts)


@pytest.fixture(scope="session")
def rotation_150() -> np.ndarray:
    """A rotation of 150° about an oblique axis, far from the identity, (3, 3)."""
    axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    return Rotation.from_rotvec(np.deg2rad(150.0) * axis).as_matrix()
