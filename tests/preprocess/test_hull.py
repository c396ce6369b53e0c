"""The mask hull bounds the whole object, and the hand never enlarges it much."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from hold.data.sequence import LABEL_OBJECT, LABEL_RIGHT
from preprocess.config import SfmConfig
from preprocess.hull import mask_hull

SIZE = 96
K = np.array([[110.0, 0, 47.5], [0, 110.0, 47.5], [0, 0, 1]])


def _disc(centre_cam: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) bool: pixels whose rays pass within ``radius`` of a camera-frame sphere centre."""
    ys, xs = np.mgrid[:SIZE, :SIZE]
    rays = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3) @ np.linalg.inv(K).T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    miss = np.linalg.norm(centre_cam - (rays @ centre_cam)[:, None] * rays, axis=1)
    return (miss < radius).reshape(SIZE, SIZE)


def _scene(num_frames: int = 16):
    """An object (unit sphere at the origin) spinning before the camera; a 'hand' sphere beside it."""
    R = Rotation.from_rotvec(np.outer(np.linspace(0, np.pi, num_frames), [0, 1, 0])).as_matrix()
    trans = np.tile([0.0, 0.0, 6.0], (num_frames, 1))
    labels = []
    for t in range(num_frames):
        label = np.zeros((SIZE, SIZE), np.uint8)
        hand = R[t] @ np.array([1.4, 0.0, 0.0]) + trans[t]
        spheres = sorted([(hand, 0.6, LABEL_RIGHT), (trans[t], 1.0, LABEL_OBJECT)], key=lambda s: -s[0][2])
        for centre, radius, value in spheres:  # far to near: the nearer sphere hides the other
            label[_disc(centre, radius)] = value
        labels.append(label)
    return R, trans, labels


def test_hull_contains_the_object_and_not_the_hand():
    R, trans, labels = _scene()
    cfg = SfmConfig(hull_resolution=40)
    # carved around a cloud that covers only part of the object (what SfM triangulates)
    hull = mask_hull(R, trans, K, labels, np.arange(len(R)), np.array([0.3, 0.0, 0.0]), 2.5, cfg)
    voxel = 2 * 2.5 / cfg.hull_resolution
    # The hand sphere (centre 1.4 from the origin, reaching 2.0) never carves: only the object-fraction
    # test keeps its far half out; the gap between hand and object is seen only past the hand.
    assert np.linalg.norm(hull, axis=1).max() < 1.7
    unfiltered = mask_hull(
        R, trans, K, labels, np.arange(len(R)), np.array([0.3, 0.0, 0.0]), 2.5,
        SfmConfig(hull_resolution=40, hull_min_object_fraction=0.0),
    )  # fmt: skip
    assert np.linalg.norm(unfiltered, axis=1).max() > 1.8
    directions = Rotation.random(200, random_state=0).apply([1.0, 0.0, 0.0])
    surface = 0.95 * directions  # just inside the object's surface: each point lies in a kept voxel
    nearest = np.linalg.norm(surface[:, None] - hull[None], axis=-1).min(1)
    assert nearest.max() < voxel


def test_masks_that_contradict_the_poses_carve_everything():
    R, trans, labels = _scene()
    empty = [np.zeros_like(label) for label in labels]
    hull = mask_hull(R, trans, K, empty, np.arange(len(R)), np.zeros(3), 2.5, SfmConfig(hull_resolution=24))
    assert hull.shape == (0, 3)
