"""Surface sampling and input checks shared by the metrics."""

from __future__ import annotations

import numpy as np
import trimesh


def check_points(points: np.ndarray, name: str) -> np.ndarray:
    """Return ``points`` as a float64 (N, 3) array with N >= 1, else raise a ValueError naming ``name``."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (N, 3), found {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one point, found shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite coordinates")
    return arr


def check_mesh(mesh: trimesh.Trimesh, name: str) -> None:
    """Raise a ValueError naming ``name`` unless ``mesh`` is a triangle mesh with a positive surface area."""
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValueError(f"{name}: expected a trimesh.Trimesh, found {type(mesh).__name__}")
    faces = np.asarray(mesh.faces)
    if faces.ndim != 2 or faces.shape[0] == 0:
        raise ValueError(f"{name}: expected a mesh with faces of shape (F, 3), F >= 1, found {faces.shape}")
    if not np.all(np.isfinite(mesh.vertices)):
        raise ValueError(f"{name}: contains NaN or infinite vertices")
    if not mesh.area > 0:
        raise ValueError(f"{name}: expected a positive surface area, found {mesh.area} (degenerate faces)")


def sample_surface(mesh: trimesh.Trimesh, num_samples: int, seed: int, name: str = "mesh") -> np.ndarray:
    """Sample points uniformly over the surface of a triangle mesh (area-weighted), reproducibly.

    Implemented here rather than with ``trimesh.sample`` so that the samples depend only on the mesh,
    ``num_samples`` and ``seed`` (numpy's PCG64), not on the trimesh version.

    Args:
        mesh: triangle mesh with at least one face of positive area.
        num_samples: number of points N >= 1.
        seed: seed of the random generator.
        name: what to call the mesh in error messages.

    Returns:
        (N, 3) float64 points on the surface.
    """
    check_mesh(mesh, name)
    if num_samples < 1:
        raise ValueError(f"num_samples: expected a positive integer, found {num_samples}")
    rng = np.random.default_rng(seed)
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]  # (F, 3, 3)
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(tri), size=num_samples, p=areas / areas.sum())
    # Uniform barycentric coordinates: fold the unit square onto the triangle.
    u, v = rng.random((2, num_samples))
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    return a + u[:, None] * (b - a) + v[:, None] * (c - a)
