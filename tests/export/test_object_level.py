"""``export.object_level=masks``: the object mesh's level set chosen by how well its silhouettes fit the
object masks, with the pixels the hand covers left out."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from hold.config.export import ExportConfig
from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT
from hold.final.object_level import NoObjectPixelsError, fit_object_level, mesh_silhouette

K = np.array([[300.0, 0, 80], [0, 300.0, 60], [0, 0, 1]])
SIZE = (120, 160)


def test_silhouette_of_a_sphere_covers_its_disc():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.03)
    sil = mesh_silhouette(np.asarray(sphere.vertices) + [0, 0, 0.5], np.asarray(sphere.faces), K, SIZE)
    radius_px = 300 * 0.03 / np.sqrt(0.5**2 - 0.03**2)  # the cone tangent to the sphere
    assert sil.sum() == pytest.approx(np.pi * radius_px**2, rel=0.02)
    ys, xs = np.nonzero(sil)
    assert xs.mean() + 0.5 == pytest.approx(80, abs=0.3) and ys.mean() + 0.5 == pytest.approx(60, abs=0.3)


def _sphere_masks(radius_m: float, frames: int, hand_rows: slice | None) -> tuple[np.ndarray, tuple]:
    R = np.repeat(np.eye(3)[None], frames, 0)
    t = np.array([[0.01 * i, 0.0, 0.5] for i in range(frames)])
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius_m)
    masks = []
    for i in range(frames):
        sil = mesh_silhouette(np.asarray(sphere.vertices) + t[i], np.asarray(sphere.faces), K, SIZE)
        m = np.where(sil, LABEL_OBJECT, LABEL_BACKGROUND).astype(np.uint8)
        if hand_rows is not None:
            m[hand_rows] = LABEL_RIGHT  # a hand in front of the lower part of the object
        masks.append(m)
    return np.stack(masks), (R, t)


@pytest.mark.parametrize("hand", [False, True])
def test_the_level_whose_silhouettes_match_the_masks_is_chosen(hand):
    scale, zero_radius, beta = 0.05, 0.6, 0.1  # canonical units; the object is 1.5 β beyond the zero set
    axis = np.linspace(-1.1, 1.1, 64)
    grid = np.linalg.norm(np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1), axis=-1) - zero_radius
    masks, (R, t) = _sphere_masks(scale * (zero_radius + 1.5 * beta), 4, slice(62, None) if hand else None)
    fit = fit_object_level(
        grid.astype(np.float32), (-1.1, 1.1), (0.0, 0.5, 1.0, 1.5, 2.0, 3.0), beta, (R, t, scale), K, masks,
        np.arange(4),
    )  # fmt: skip
    assert fit.level_beta == 1.5
    assert fit.frames == 4 and fit.iou[1.5] > 0.95 and fit.iou[0.0] < fit.iou[1.0] < fit.iou[1.5]
    assert fit.as_dict()["chosen_beta"] == 1.5


def test_export_config_checks_the_level_settings():
    with pytest.raises(ValueError, match="object_level must be"):
        ExportConfig(object_level="auto")
    with pytest.raises(ValueError, match="object_level_candidates_beta"):
        ExportConfig(object_level_candidates_beta=())


def test_masks_without_the_object_cannot_choose_a_level():
    grid = np.ones((8, 8, 8), np.float32)
    masks = np.zeros((2, *SIZE), np.uint8)
    poses = (np.repeat(np.eye(3)[None], 2, 0), np.zeros((2, 3)), 1.0)
    with pytest.raises(NoObjectPixelsError, match="none of the 2 masks"):
        fit_object_level(grid, (-1.0, 1.0), (0.0, 1.0), 0.1, poses, K, masks, np.arange(2))
