"""Scene layout: camera, motion of the hand+object group, background wall and distractor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from hold.data.synthetic.config import SynthConfig

_IMAGE_RIGHT_UP = np.array([1.0, -0.35, 0.0])  # where the hand sits, seen from the camera: right, a bit up
_WOBBLE_FREQS = (1.0, 0.7, 0.5)  # cycles per clip of the group's slow translation along x, y, z
_WALL_MARGIN = 1.6  # the wall overfills the view by this factor (room for an orbiting camera)
_DISTRACTOR_PIXEL = (0.18, 0.8)  # where the distractor appears, as fractions of (W, H)
_DISTRACTOR_DEPTH = 1.3  # its distance, in units of the object's distance
_DISTRACTOR_HALF = (0.025, 0.04, 0.025)  # its half extents, metres


def intrinsics(cfg: SynthConfig) -> np.ndarray:
    """(3, 3) float64 pinhole intrinsics, principal point at the image centre.

    Pixel (i, j) covers [i, i+1) × [j, j+1) in K's coordinates (its centre is at i + 0.5), the
    convention of ``hold.data.rays``.
    """
    H, W = cfg.image_size
    f = cfg.focal_factor * W
    return np.array([[f, 0.0, W / 2.0], [0.0, f, H / 2.0], [0.0, 0.0, 1.0]])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking unit vector a onto unit vector b (the shortest arc)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return Rotation.from_rotvec(np.pi * perp / np.linalg.norm(perp)).as_matrix()
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


@dataclass
class Trajectory:
    """Per-frame rigid motions, both mapping into the camera frame of frame t."""

    group_R: np.ndarray  # (T, 3, 3) object frame → camera (the hand moves rigidly with it)
    group_t: np.ndarray  # (T, 3)
    world_R: np.ndarray  # (T, 3, 3) world (static background) → camera; identity for a static camera
    world_t: np.ndarray  # (T, 3)
    distance: float  # camera-to-pivot distance, metres


def make_trajectory(
    cfg: SynthConfig, axis: np.ndarray, points: np.ndarray, rng: np.random.Generator
) -> Trajectory:
    """The hand+object group spins about ``axis`` (object frame, through its origin) by ``rotation_deg``.

    The caller passes the object→palm direction: the palm then stays on the spin axis, beside the
    object, and never sweeps in front of it (SfM sees the object all round). The axis is laid in the
    image plane pointing right and slightly up, then tilted towards the camera so that the object's
    far end shows too.

    Args:
        cfg: settings.
        axis: (3,) unit spin axis in the object frame.
        points: (N, 3) hand and object vertices in the object frame (for the framing).
        rng: random generator (initial spin and wobble phases).
    """
    T, (H, W) = cfg.num_frames, cfg.image_size
    f = cfg.focal_factor * W
    # The spin sweeps every point around the axis: frame the centre of that swept volume.
    along = points @ axis
    across = np.linalg.norm(points - along[:, None] * axis, axis=1)
    centre = 0.5 * (along.min() + along.max())
    radius = float(np.sqrt((along - centre) ** 2 + across**2).max())
    distance = radius * f / (0.5 * cfg.fill_fraction * min(H, W)) + radius
    tilt = np.deg2rad(cfg.axis_tilt_deg)
    in_plane = _IMAGE_RIGHT_UP / np.linalg.norm(_IMAGE_RIGHT_UP)
    axis_cam = np.cos(tilt) * in_plane + np.sin(tilt) * np.array([0.0, 0.0, -1.0])
    pivot = (
        np.array([0.0, 0.0, distance]) - centre * axis_cam
    )  # object origin; the swept centre is on the optical axis
    R0 = rotation_between(axis, axis_cam)
    R0 = Rotation.from_rotvec(axis_cam * rng.uniform(0, 2 * np.pi)).as_matrix() @ R0  # random start roll
    frac = np.arange(T) / max(T - 1, 1)
    spin = Rotation.from_rotvec(np.outer(np.deg2rad(cfg.rotation_deg) * frac, axis_cam)).as_matrix()
    phases = rng.uniform(0, 2 * np.pi, 4)
    rock = Rotation.from_rotvec(
        np.outer(np.deg2rad(cfg.wobble_deg) * np.sin(2 * np.pi * frac + phases[3]), [1.0, 0.0, 0.0])
    ).as_matrix()
    wobble = cfg.wobble_m * np.stack(
        [np.sin(2 * np.pi * k * frac + p) for k, p in zip(_WOBBLE_FREQS, phases[:3])], -1
    )
    group_R = rock @ spin @ R0
    group_t = pivot + wobble
    if cfg.camera_motion == "orbit":
        yaw = np.deg2rad(cfg.camera_orbit_deg) * (frac - 0.5)
        world_R = Rotation.from_rotvec(np.outer(yaw, [0.0, 1.0, 0.0])).as_matrix()
    else:
        world_R = np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
    # The camera turns about the view centre: x_cam = Rc (x_world − c) + c.
    look_at = np.array([0.0, 0.0, distance])
    world_t = look_at - np.einsum("tij,j->ti", world_R, look_at)
    group_R = np.einsum("tij,tjk->tik", world_R, group_R)
    group_t = np.einsum("tij,tj->ti", world_R, group_t) + world_t
    return Trajectory(group_R, group_t, world_R, world_t, float(distance))


def wall_mesh(cfg: SynthConfig, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """A textured background wall facing the camera, world frame.

    Returns:
        vertices (4, 3) and faces (2, 3).
    """
    H, W = cfg.image_size
    z = cfg.background_depth_factor * distance
    half_w = _WALL_MARGIN * z * 0.5 * W / (cfg.focal_factor * W)
    half_h = _WALL_MARGIN * z * 0.5 * H / (cfg.focal_factor * W)
    half = max(half_w, half_h)
    verts = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return verts, np.array([[0, 1, 2], [0, 2, 3]])


def distractor_mesh(cfg: SynthConfig, distance: float, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box standing in the lower left of the view, behind the hand and object, world frame.

    Returns:
        vertices (8, 3) and faces (12, 3), outward facing.
    """
    H, W = cfg.image_size
    z = _DISTRACTOR_DEPTH * distance
    u, v = _DISTRACTOR_PIXEL[0] * W, _DISTRACTOR_PIXEL[1] * H
    centre = np.array([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z])
    corners = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], float) * 2 - 1
    yaw = Rotation.from_euler("y", 35.0, degrees=True).as_matrix()  # show two faces, not one
    verts = centre + (corners * np.asarray(_DISTRACTOR_HALF)) @ yaw.T
    faces = np.array(
        [[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
         [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]]
    )  # fmt: skip
    return verts, faces
