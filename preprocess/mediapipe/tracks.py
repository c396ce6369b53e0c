"""Right/left hand tracks from mediapipe's per-frame detections (main process, no mediapipe needed).

Per frame, mediapipe returns up to N hands with a handedness probability. Each side (right, left)
takes at most one of them; the choice over the whole clip minimises, by dynamic programming (Viterbi
over the per-frame assignments),

    Σ_t Σ_side [ −log p(side | detection)  or  −log(min_handedness) when the side stays empty ]
  + Σ_t Σ_side [ weight_motion · motion / (motion_scale · hand size)  when the side has a detection
                 at t−1 and t;  track_change_cost when it had one at t−1 that goes on at t (moves by
                 less than motion_scale hand sizes) but leaves the side empty or goes to the other ],

so a side follows one hand through frames whose handedness label flips, and a stray detection (the
object taken for a hand) stays unassigned. Frames where a side gets no detection are invalid; the
``hands`` step interpolates them after fitting.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from preprocess.config import MediapipeConfig

SIDES = ("right", "left")
_EPS = 1e-6  # floor of probabilities before the logarithm
_MIN_SIZE_PX = 1.0  # floor of a hand's box diagonal (degenerate detections)


@dataclass
class Detections:
    """The worker's response (``worker.py`` documents every array), checked by the driver.

    Attributes:
        landmarks: (T, N, 21, 3) frame pixels x, y (edges at 0 and W), z; NaN in empty slots.
        world: (T, N, 21, 3) metric landmarks, origin at the hand's centre, camera axes, metres.
        handedness: (T, N) probability that mediapipe labelled the hand "Right".
        score: (T, N) mediapipe's handedness score.
        source: (T, N) 0 empty slot, 1 video mode, 2 detection fallback.
        count: (T,) detections per frame.
        image_size: (T, 2) (H, W).
        seconds: (T,) inference time per frame.
        version: the mediapipe version that ran.
    """

    landmarks: np.ndarray
    world: np.ndarray
    handedness: np.ndarray
    score: np.ndarray
    source: np.ndarray
    count: np.ndarray
    image_size: np.ndarray
    seconds: np.ndarray
    version: str

    @property
    def present(self) -> np.ndarray:
        """(T, N) bool: slots holding a detection."""
        return np.arange(self.landmarks.shape[1])[None, :] < self.count[:, None]


def side_probability(det: Detections, side: str, mirrored: bool) -> np.ndarray:
    """(T, N) probability that each detection is the ``side`` hand.

    mediapipe labels hands as seen in a mirrored (selfie) image: on an ordinary camera its "Right"
    is the left hand.
    """
    p_label_right = det.handedness if mirrored else 1.0 - det.handedness
    return p_label_right if side == "right" else 1.0 - p_label_right


def boxes(landmarks: np.ndarray) -> np.ndarray:
    """(..., 4) x0, y0, x1, y1 of the 2D keypoints (..., 21, ≥2)."""
    xy = landmarks[..., :2]
    return np.concatenate([xy.min(-2), xy.max(-2)], -1)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes x0, y0, x1, y1."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def drop_duplicates(det: Detections, max_iou: float) -> np.ndarray:
    """(T, N) bool: the detections kept; of two that overlap by more than ``max_iou``, the better scored."""
    keep = det.present.copy()
    box = boxes(det.landmarks)
    for t in range(len(keep)):
        order = np.argsort(-det.score[t])
        for i, j in itertools.combinations(order, 2):
            if keep[t, i] and keep[t, j] and box_iou(box[t, i], box[t, j]) > max_iou:
                keep[t, j] = False
    return keep


def usable_detections(det: Detections, cfg: MediapipeConfig) -> np.ndarray:
    """(T, N) bool: the detections that may be assigned a side.

    Of two overlapping detections (``duplicate_iou``) the better scored is kept; detections whose
    keypoint box is smaller than ``min_relative_size`` × the clip's median (a palm detector's false
    positives on texture are small) are dropped.
    """
    keep = drop_duplicates(det, cfg.duplicate_iou)
    if keep.any():
        box = boxes(det.landmarks)
        size = np.hypot(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1])
        keep &= np.nan_to_num(size) >= cfg.min_relative_size * np.median(size[keep])
    return keep


def _frame_states(candidates: list[int], num_sides: int) -> list[tuple[int, ...]]:
    """Assignments of one frame: per side a candidate index or −1, no candidate used twice."""
    options = [-1, *candidates]
    return [
        s
        for s in itertools.product(options, repeat=num_sides)
        if len({c for c in s if c >= 0}) == sum(c >= 0 for c in s)
    ]


def assign_sides(
    det: Detections, sides: tuple[str, ...], keep: np.ndarray, cfg: MediapipeConfig
) -> np.ndarray:
    """Choose, per frame and side, one detection (the cost in the module docstring).

    Args:
        det: the detections.
        sides: the sides to fill, e.g. ("right",) or ("right", "left").
        keep: (T, N) detections that may be assigned.
        cfg: costs.

    Returns:
        (T, len(sides)) int: the detection slot of each side, −1 where the side has none.
    """
    T = len(det.count)
    prob = np.stack([side_probability(det, s, cfg.mirrored) for s in sides], -1)  # (T, N, S)
    emission_cost = -np.log(np.clip(prob, _EPS, 1.0))
    empty_cost = -np.log(max(cfg.min_handedness, _EPS))
    xy = det.landmarks[..., :2]
    box = boxes(det.landmarks)
    size = np.maximum(np.hypot(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]), _MIN_SIZE_PX)

    states = [_frame_states([int(c) for c in np.flatnonzero(keep[t])], len(sides)) for t in range(T)]

    def emission(t: int, state: tuple[int, ...]) -> float:
        return sum(empty_cost if c < 0 else emission_cost[t, c, k] for k, c in enumerate(state))

    def motion(t: int, a: int, b: int) -> float:  # detection a at t−1 → b at t, in motion_scale units
        return (
            float(np.linalg.norm(xy[t, b] - xy[t - 1, a], axis=-1).mean() / size[t - 1, a]) / cfg.motion_scale
        )

    def transition(t: int, prev: tuple[int, ...], cur: tuple[int, ...]) -> float:
        cost = 0.0
        for a, b in zip(prev, cur):
            if a >= 0 and b >= 0:
                cost += cfg.weight_motion * motion(t, a, b)
            elif a >= 0 and any(motion(t, a, c) < 1.0 for c in np.flatnonzero(keep[t])):
                cost += cfg.track_change_cost  # the side's hand goes on, but the side lets it go
        return cost

    total = np.array([emission(0, s) for s in states[0]])
    back: list[np.ndarray] = []
    for t in range(1, T):
        trans = np.array([[transition(t, p, c) for p in states[t - 1]] for c in states[t]])  # (cur, prev)
        best = np.argmin(total[None, :] + trans, axis=1)
        total = total[best] + trans[np.arange(len(states[t])), best] + [emission(t, c) for c in states[t]]
        back.append(best)
    idx = int(np.argmin(total))
    out = np.full((T, len(sides)), -1, int)
    for t in range(T - 1, -1, -1):
        out[t] = states[t][idx]
        if t > 0:
            idx = int(back[t - 1][idx])
    return out


def choose_sides(
    det: Detections, keep: np.ndarray, cfg: MediapipeConfig
) -> tuple[tuple[str, ...], np.ndarray]:
    """The sides to output (``cfg.sides``) and their assignment (T, S).

    With ``auto``, both sides are assigned first and those filled in at least ``min_side_fraction`` of
    the frames are kept (assigned again on their own); when neither reaches it, the more frequent one.
    """
    if cfg.sides != "auto":
        sides = SIDES if cfg.sides == "both" else (cfg.sides,)
        return sides, assign_sides(det, sides, keep, cfg)
    both = assign_sides(det, SIDES, keep, cfg)
    filled = (both >= 0).mean(0)
    sides = tuple(s for s, f in zip(SIDES, filled) if f >= cfg.min_side_fraction) or (
        SIDES[int(np.argmax(filled))],
    )
    if sides == SIDES:
        return sides, both
    return sides, assign_sides(det, sides, keep, cfg)


def hand_estimates(det: Detections, sides: tuple[str, ...], assignment: np.ndarray) -> dict[str, np.ndarray]:
    """The RAW ``hands.npz`` arrays (docs/formats.md) of the assigned detections.

    Per side: ``kp2d`` (T, 21, 3) pixel x, y and the detection's score as the confidence of every
    keypoint (0 where invalid); ``kp3d`` (T, 21, 3) the world landmarks minus the wrist (root-relative,
    camera axes, metres); ``valid`` (T,).
    """
    T, _, J, _ = det.landmarks.shape
    arrays: dict[str, np.ndarray] = {}
    t_all = np.arange(T)
    for k, side in enumerate(sides):
        slot = assignment[:, k]
        valid = slot >= 0
        s = np.where(valid, slot, 0)
        kp2d = np.zeros((T, J, 3), np.float32)
        kp2d[..., :2] = det.landmarks[t_all, s, :, :2]
        kp2d[..., 2] = det.score[t_all, s][:, None]
        world = det.world[t_all, s]
        kp3d = (world - world[:, :1]).astype(np.float32)
        kp2d[~valid], kp3d[~valid] = 0.0, 0.0
        arrays |= {f"{side}.kp2d": kp2d, f"{side}.kp3d": kp3d, f"{side}.valid": valid}
    return arrays
