"""Similarity alignment: Umeyama, the cube group, and global ICP with scale (HOLD §4)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from hold.config.eval import EvalConfig
from hold.eval.align import align_similarity, cube_rotations, umeyama
from hold.eval.metrics import chamfer_distance, fscore
from hold.geometry.surface import sample_surface

FAST = EvalConfig(num_surface_samples=2000)


def test_umeyama_recovers_known_similarity(rotation_150):
    src = np.random.default_rng(0).normal(size=(50, 3))
    dst = 2.5 * src @ rotation_150.T + [0.5, -0.2, 1.0]
    t = umeyama(src, dst)
    np.testing.assert_allclose(t.rotation, rotation_150, atol=1e-10)
    assert t.scale == pytest.approx(2.5)
    np.testing.assert_allclose(t.apply(src), dst, atol=1e-10)


def test_cube_rotations_are_the_24_proper_rotations():
    mats = cube_rotations()
    assert mats.shape == (24, 3, 3)
    assert len({m.tobytes() for m in mats}) == 24
    np.testing.assert_allclose(np.linalg.det(mats), 1.0)
    np.testing.assert_allclose(mats @ mats.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (24, 3, 3)), atol=0)


def test_exact_copy_is_aligned_exactly(asymmetric_mesh, rotation_150):
    target = sample_surface(asymmetric_mesh, 2000, seed=0)
    source = (2.5 * target @ rotation_150.T + [0.5, -0.2, 1.0])[::-1]  # same points, shuffled order
    alignment = align_similarity(source, target, FAST)
    assert chamfer_distance(alignment.transform.apply(source), target) < 1e-12
    np.testing.assert_allclose(alignment.transform.rotation, rotation_150.T, atol=1e-6)
    assert alignment.transform.scale == pytest.approx(1 / 2.5, rel=1e-6)


@pytest.mark.parametrize("mode", ["pca+cube", "cube", "pca"])
def test_resampled_copy_rotated_150_degrees(asymmetric_mesh, rotation_150, mode):
    moved = asymmetric_mesh.copy()
    moved.vertices = 2.5 * moved.vertices @ rotation_150.T + [0.5, -0.2, 1.0]
    source = sample_surface(moved, 2000, seed=0)
    target = sample_surface(asymmetric_mesh, 2000, seed=1)  # independent samples of the same surface
    cfg = EvalConfig(num_surface_samples=2000, init_rotations=mode)
    t = align_similarity(source, target, cfg).transform
    aligned = t.apply(source)
    assert chamfer_distance(aligned, target) * 1e4 < 0.1  # cm²; the sampling-noise floor is ~0.05
    assert fscore(aligned, target, 0.01).fscore == 100.0
    angle = np.degrees(np.arccos(np.clip((np.trace(t.rotation @ rotation_150) - 1) / 2, -1, 1)))
    assert angle < 2.0
    assert t.scale == pytest.approx(1 / 2.5, rel=0.02)


def test_scale_does_not_collapse_onto_a_patch():
    # One-sided ICP with scale may shrink the source onto part of the target; the symmetric one must not.
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    target = sample_surface(sphere, 2000, seed=0)
    source = 3.0 * sample_surface(sphere, 2000, seed=1)
    t = align_similarity(source, target, EvalConfig(init_rotations="cube")).transform
    assert t.scale == pytest.approx(1 / 3.0, rel=0.02)


def test_degenerate_cloud_is_a_clear_error():
    with pytest.raises(ValueError, match="collapses to one point"):
        align_similarity(np.zeros((10, 3)), np.random.default_rng(0).normal(size=(10, 3)), FAST)
