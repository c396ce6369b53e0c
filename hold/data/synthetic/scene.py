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
_DRIFT_MAX_DEPTH = 0.25  # largest depth component of the drift direction (before normalising)
_WAVE_STEP = 0.2  # a waving finger starts this share of the span after the previous; moves for twice it


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
    far end shows too. Options: a randomly tilted spin axis (``spin_axis``), a linear drift
    (``translation_m``) and a faster part of the spin (``fast_segment_fraction``).

    Args:
        cfg: settings.
        axis: (3,) unit spin axis in the object frame.
        points: (N, 3) hand and object vertices in the object frame (for the framing).
        rng: random generator (initial spin and wobble phases, then the options' draws).
    """
    T, (H, W) = cfg.num_frames, cfg.image_size
    f = cfg.focal_factor * W
    roll = rng.uniform(0, 2 * np.pi)
    phases = rng.uniform(0, 2 * np.pi, 4)
    # The options draw after the defaults' draws: switching one on leaves every other value alone.
    if cfg.spin_axis == "random":
        axis = tilted_axis(axis, np.deg2rad(cfg.spin_axis_jitter_deg), rng)
    elif cfg.spin_axis != "palm":
        raise ValueError(f"spin_axis must be palm or random, not {cfg.spin_axis!r}")
    drift = cfg.translation_m * _drift_direction(rng) if cfg.translation_m > 0 else np.zeros(3)
    frac = np.arange(T) / max(T - 1, 1)
    progress = spin_progress(cfg, rng)
    # The spin sweeps every point around the axis: frame the centre of that swept volume.
    along = points @ axis
    across = np.linalg.norm(points - along[:, None] * axis, axis=1)
    centre = 0.5 * (along.min() + along.max())
    radius = float(np.sqrt((along - centre) ** 2 + across**2).max())
    reach = radius + 0.5 * cfg.translation_m  # the drift is centred on the framed position
    distance = reach * f / (0.5 * cfg.fill_fraction * min(H, W)) + reach
    tilt = np.deg2rad(cfg.axis_tilt_deg)
    in_plane = _IMAGE_RIGHT_UP / np.linalg.norm(_IMAGE_RIGHT_UP)
    axis_cam = np.cos(tilt) * in_plane + np.sin(tilt) * np.array([0.0, 0.0, -1.0])
    pivot = (
        np.array([0.0, 0.0, distance]) - centre * axis_cam
    )  # object origin; the swept centre is on the optical axis
    R0 = rotation_between(axis, axis_cam)
    R0 = Rotation.from_rotvec(axis_cam * roll).as_matrix() @ R0  # random start roll
    spin = Rotation.from_rotvec(np.outer(np.deg2rad(cfg.rotation_deg) * progress, axis_cam)).as_matrix()
    rock = Rotation.from_rotvec(
        np.outer(np.deg2rad(cfg.wobble_deg) * np.sin(2 * np.pi * frac + phases[3]), [1.0, 0.0, 0.0])
    ).as_matrix()
    wobble = cfg.wobble_m * np.stack(
        [np.sin(2 * np.pi * k * frac + p) for k, p in zip(_WOBBLE_FREQS, phases[:3])], -1
    )
    group_R = rock @ spin @ R0
    group_t = pivot + wobble
    if cfg.translation_m > 0:
        group_t = group_t + (frac - 0.5)[:, None] * drift
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


def tilted_axis(axis: np.ndarray, max_angle: float, rng: np.random.Generator) -> np.ndarray:
    """(3,) unit vector tilted from unit ``axis`` by an angle uniform in [0, max_angle] (radians),
    towards a uniformly random direction."""
    e1 = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    angle, azimuth = rng.uniform(0, max_angle), rng.uniform(0, 2 * np.pi)
    out = np.cos(angle) * axis + np.sin(angle) * (np.cos(azimuth) * e1 + np.sin(azimuth) * e2)
    return out / np.linalg.norm(out)


def _drift_direction(rng: np.random.Generator) -> np.ndarray:
    """(3,) random unit direction, camera frame, mostly in the image plane."""
    azimuth = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(azimuth), np.sin(azimuth), rng.uniform(-_DRIFT_MAX_DEPTH, _DRIFT_MAX_DEPTH)])
    return d / np.linalg.norm(d)


def spin_progress(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(T,) share of ``rotation_deg`` reached at each frame, 0 at the first and 1 at the last.

    Uniform unless ``fast_segment_fraction`` > 0: then a random contiguous part of the clip that long
    spins ``fast_segment_speedup`` times faster than the rest (the total rotation is unchanged).
    """
    frac = np.arange(cfg.num_frames) / max(cfg.num_frames - 1, 1)
    share, speedup = cfg.fast_segment_fraction, cfg.fast_segment_speedup
    if not 0.0 <= share <= 1.0 or speedup <= 0:
        raise ValueError(
            f"need 0 <= fast_segment_fraction <= 1 and fast_segment_speedup > 0, got {share}, {speedup}"
        )
    if share == 0:
        return frac
    start = rng.uniform(0, 1 - share)
    fast = np.clip(frac - start, 0.0, share)  # time spent in the fast part so far
    return (frac + (speedup - 1) * fast) / (1 + (speedup - 1) * share)


def finger_motion_weights(cfg: SynthConfig) -> np.ndarray:
    """(T, 4) how far each finger (index..little) is opened at each frame: 0 holds the grasp, 1 takes
    ``finger_motion_deg`` of flexion off; each motion is a smooth sin² bump.

    ``wave``: one finger after the other, each over 2/5 of ``finger_motion_span``, a fifth apart;
    ``regrasp``: all four together over the whole span.
    """
    T = cfg.num_frames
    frac = np.arange(T) / max(T - 1, 1)
    start, end = cfg.finger_motion_span
    if not 0.0 <= start < end <= 1.0:
        raise ValueError(
            f"finger_motion_span must satisfy 0 <= start < end <= 1, got {cfg.finger_motion_span}"
        )
    span = end - start
    if cfg.finger_motion == "none":
        return np.zeros((T, 4))
    if cfg.finger_motion == "regrasp":
        starts, length = np.full(4, start), span
    elif cfg.finger_motion == "wave":
        starts, length = start + _WAVE_STEP * span * np.arange(4), 2 * _WAVE_STEP * span
    else:
        raise ValueError(f"finger_motion must be none, wave or regrasp, not {cfg.finger_motion!r}")
    u = np.round((frac[:, None] - starts[None]) / length, 9)  # a window's end is exactly 1, not 1 - ulp
    return np.where((u > 0) & (u < 1), np.sin(np.pi * u) ** 2, 0.0)


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
