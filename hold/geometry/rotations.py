"""Axis-angle / matrix conversions and rotation interpolation, batched, in PyTorch and NumPy."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp
from torch import Tensor


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula, stable near zero angle. (..., 3) → (..., 3, 3)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    small = angle < 1e-6
    safe = torch.where(small, torch.ones_like(angle), angle)
    axis = axis_angle / safe
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis.shape[:-1], 3, 3)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    rot = eye + s * skew + (1 - c) * (skew @ skew)
    # First-order expansion keeps gradients finite at the identity.
    aa = axis_angle
    ax, ay, az = aa.unbind(-1)
    z0 = torch.zeros_like(ax)
    first_order = eye + torch.stack([z0, -az, ay, az, z0, -ax, -ay, ax, z0], -1).reshape(skew.shape)
    return torch.where(small[..., None], first_order, rot)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """(..., 3, 3) → (..., 3), via scipy (not differentiable; used for initialisation and I/O)."""
    flat = matrix.detach().cpu().double().reshape(-1, 3, 3).numpy()
    out = Rotation.from_matrix(flat).as_rotvec()
    return torch.as_tensor(out, dtype=matrix.dtype, device=matrix.device).reshape(*matrix.shape[:-2], 3)


class EndMotion(NamedTuple):
    """How the frames beyond one end of the valid frames continue its motion (``end_motions``).

    Attributes:
        frames: (n,) the frames to fill; edge: the valid frame at that end; ref: another valid frame,
            on the inner side of edge; scale: (n,) multiples of the motion ref → edge to add to edge.
    """

    frames: np.ndarray
    edge: int
    ref: int
    scale: np.ndarray


def end_motions(valid: np.ndarray, window: int, horizon: int) -> list[EndMotion]:
    """Constant-velocity continuation of the motion at both ends of the valid frames.

    At each end, the velocity is the motion from the valid frame farthest inside within ``window``
    frames of the edge (several frames average out per-frame noise) to the edge; frames up to
    ``horizon`` frames beyond the edge follow it, farther ones stop there (a bound on the guess).
    An end without a second valid frame within the window (or ``window``/``horizon`` 0) is held.
    """
    valid = np.asarray(valid, bool)
    times = np.flatnonzero(valid)
    if len(times) < 2 or window <= 0 or horizon <= 0:
        return []
    out = []
    for edge, inside, beyond in (
        (times[-1], times[times >= times[-1] - window][0], np.arange(times[-1] + 1, len(valid))),
        (times[0], times[times <= times[0] + window][-1], np.arange(times[0])),
    ):
        if inside != edge and len(beyond):
            steps = np.minimum(np.abs(beyond - edge), horizon)
            out.append(EndMotion(beyond, int(edge), int(inside), steps / abs(edge - inside)))
    return out


def slerp_fill(rotvecs: np.ndarray, valid: np.ndarray, window: int = 0, horizon: int = 0) -> np.ndarray:
    """Replace the rotations of invalid frames by SLERP between the nearest valid ones.

    Frames before the first / after the last valid frame copy it, or with ``window`` and ``horizon``
    continue its rotation at constant angular velocity (``end_motions``). ``rotvecs``: (T, ..., 3)
    axis-angle; ``valid``: (T,) bool with at least one True.
    """
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("slerp_fill: no valid frame to interpolate from")
    T = rotvecs.shape[0]
    flat = rotvecs.reshape(T, -1, 3)
    times = np.flatnonzero(valid)
    query = np.clip(np.arange(T), times[0], times[-1])
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        if len(times) == 1:
            out[:, j] = flat[times[0], j]
            continue
        slerp = Slerp(times, Rotation.from_rotvec(flat[times, j]))
        out[:, j] = slerp(query).as_rotvec()
    for end in end_motions(valid, window, horizon):
        edge = Rotation.from_rotvec(flat[end.edge])  # (J,) rotations
        step = (edge * Rotation.from_rotvec(flat[end.ref]).inv()).as_rotvec()  # (J, 3) ref → edge
        for t, scale in zip(end.frames, end.scale):
            out[t] = (Rotation.from_rotvec(scale * step) * edge).as_rotvec()
    out[valid] = flat[valid]
    return out.reshape(rotvecs.shape)


def lerp_fill(values: np.ndarray, valid: np.ndarray, window: int = 0, horizon: int = 0) -> np.ndarray:
    """``slerp_fill`` for vectors (T, ..., D): linear interpolation between the nearest valid frames,
    and at the ends a copy of the edge frame or, with ``window`` and ``horizon``, constant velocity."""
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("lerp_fill: no valid frame to interpolate from")
    T = values.shape[0]
    flat = values.reshape(T, -1)
    times = np.flatnonzero(valid)
    out = np.stack([np.interp(np.arange(T), times, flat[times, k]) for k in range(flat.shape[1])], -1)
    for end in end_motions(valid, window, horizon):
        out[end.frames] = flat[end.edge] + end.scale[:, None] * (flat[end.edge] - flat[end.ref])
    return out.reshape(values.shape)
