"""What the finished preprocessing steps of a SEQUENCE dir wrote, read once for the report
(``preprocess.report``): the step JSONs and arrays, per-frame label areas, posed object points and
hand keypoints, the fingers' contact distances, the rotation track and the SfM model's statistics.

Every reader tolerates what is missing (a step not run yet) and records what it could not read in
``ReportData.problems`` instead of raising: the report is written beside a failing step too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

from hold.data.sequence import HAND_SIDES, LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN
from preprocess import STEPS
from preprocess.workdir import WORK_DIR, StepDir

FINGERTIPS = (4, 8, 12, 16, 20)
"""Keypoint indices of the five fingertips (docs/formats.md keypoint order)."""
AREA_LABELS = {
    "object": LABEL_OBJECT,
    "right hand": LABEL_RIGHT,
    "left hand": LABEL_LEFT,
    "unknown": LABEL_UNKNOWN,
}


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@dataclass
class ReportData:
    """The outputs of the finished steps (None where a step did not finish or a file is unreadable).

    Attributes:
        seq: the SEQUENCE dir.
        done: step → its ``done.json`` (finished steps only).
        num_frames: T (from step frames), or None.
        frames: ``frames.json``.
        masks: ``masks.json``.
        areas: label name → (T,) share of the image per frame (``AREA_LABELS``), from the label maps.
        hands, hands_json: ``hands.npz`` and ``hands.json``.
        mediapipe: ``work/hands/mediapipe/hands.npz`` (the raw detections) when that backend ran.
        sfm, sfm_json: ``sfm.npz`` and ``sfm.json``.
        align, align_json: ``align.npz`` and ``align.json``.
        sequence, sequence_json: ``sequence.npz`` and ``sequence.json`` (step build).
        problems: files that exist but could not be read, one line each.
    """

    seq: Path
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_frames: int | None = None
    frames: dict | None = None
    masks: dict | None = None
    areas: dict[str, np.ndarray] | None = None
    hands: dict[str, np.ndarray] | None = None
    hands_json: dict | None = None
    mediapipe: dict[str, np.ndarray] | None = None
    sfm: dict[str, np.ndarray] | None = None
    sfm_json: dict | None = None
    align: dict[str, np.ndarray] | None = None
    align_json: dict | None = None
    sequence: dict[str, np.ndarray] | None = None
    sequence_json: dict | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.seq / WORK_DIR

    @property
    def sides(self) -> list[str]:
        """The fitted hands (``right`` first)."""
        return [s for s in HAND_SIDES if self.hands is not None and f"{s}.valid" in self.hands]

    def config(self, step: str, section: str, key: str, default: Any) -> Any:
        """A setting the step ran with (from its ``done.json``), or ``default``."""
        return self.done.get(step, {}).get("config", {}).get(section, {}).get(key, default)

    def read(self, step: str, name: str, kind: str = "json") -> Any:
        """``work/<step>/<name>`` as JSON or npz arrays; None when absent, a problem when unreadable."""
        path = self.work / step / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text()) if kind == "json" else _npz(path)
        except (OSError, ValueError) as e:
            self.problems.append(f"{path}: unreadable ({e})")
            return None


def load_report_data(seq: Path) -> ReportData:
    """Read what the finished steps of ``seq`` wrote (see ``ReportData``)."""
    data = ReportData(seq=Path(seq))
    data.done = {s: StepDir(data.seq, s).done_info() for s in STEPS if StepDir(data.seq, s).is_done()}
    if "frames" in data.done:
        data.frames = data.read("frames", "frames.json")
        data.num_frames = (data.frames or {}).get("num_frames")
    if "masks" in data.done:
        data.masks = data.read("masks", "masks.json")
        data.areas = label_areas(data.work / "masks", data.problems)
    if "hands" in data.done:
        data.hands = data.read("hands", "hands.npz", "npz")
        data.hands_json = data.read("hands", "hands.json")
        data.mediapipe = data.read("hands", "mediapipe/hands.npz", "npz")
    if "sfm" in data.done:
        data.sfm = data.read("sfm", "sfm.npz", "npz")
        data.sfm_json = data.read("sfm", "sfm.json")
    if "align" in data.done:
        data.align = data.read("align", "align.npz", "npz")
        data.align_json = data.read("align", "align.json")
    if "build" in data.done and (data.seq / "sequence.json").is_file():
        try:
            data.sequence = _npz(data.seq / "sequence.npz")
            data.sequence_json = json.loads((data.seq / "sequence.json").read_text())
        except (OSError, ValueError) as e:
            data.problems.append(f"{data.seq / 'sequence.npz'}: unreadable ({e})")
    return data


def label_areas(masks_dir: Path, problems: list[str]) -> dict[str, np.ndarray] | None:
    """Share of each frame's pixels per label (``AREA_LABELS``), from ``work/masks/NNNNN.png``."""
    files = sorted(masks_dir.glob("[0-9]" * 5 + ".png"))
    if not files:
        return None
    rows = []
    try:
        for path in files:
            with Image.open(path) as im:
                counts = np.bincount(np.asarray(im, np.uint8).ravel(), minlength=256)
            rows.append([counts[label] / counts.sum() for label in AREA_LABELS.values()])
    except OSError as e:
        problems.append(f"{masks_dir}: unreadable label map ({e})")
        return None
    table = np.asarray(rows, np.float64)
    return {name: table[:, k] for k, name in enumerate(AREA_LABELS)}


def object_track(data: ReportData) -> dict[str, np.ndarray] | None:
    """The object's per-frame ``rot`` (T, 3), ``source`` (T,) and, once aligned, ``transl`` (T, 3),
    ``scale`` and canonical ``points`` (P, 3): from sequence.npz, else align.npz + sfm.npz, else sfm.npz."""
    if data.sequence is not None and "object.rot" in data.sequence:
        s = data.sequence
        out = {k: s[f"object.{k}"] for k in ("rot", "transl", "scale", "points")}
        out["source"] = s.get("object.source", data.sfm.get("source") if data.sfm else None)
        return out if out["source"] is not None else None
    if data.sfm is None:
        return None
    out = {"rot": data.sfm["rot"], "source": data.sfm["source"], "points": data.sfm["points"]}
    if data.align is not None:
        out |= {"transl": data.align["object.transl"], "scale": data.align["object.scale"]}
    return out


def camera(data: ReportData) -> np.ndarray | None:
    """The intrinsics the object poses use (sequence, else SfM, else the hand fit's)."""
    for arrays in (data.sequence, data.sfm, data.hands):
        if arrays is not None and "K" in arrays:
            return np.asarray(arrays["K"], np.float64)
    return None


def posed_object_points(track: dict[str, np.ndarray]) -> np.ndarray | None:
    """(T, P, 3) object points in the camera frame, or None before step align gave the metric pose."""
    if "transl" not in track:
        return None
    R = Rotation.from_rotvec(np.asarray(track["rot"], np.float64)).as_matrix()
    points = float(track["scale"]) * np.asarray(track["points"], np.float64)
    return np.einsum("tij,pj->tpi", R, points) + np.asarray(track["transl"], np.float64)[:, None]


def hand_keypoints(data: ReportData, side: str) -> np.ndarray | None:
    """(T, 21, 3) fitted keypoints in the camera frame, moved to the aligned hand translation when step
    align finished (a translation moves every keypoint alike)."""
    if data.hands is None or f"{side}.keypoints" not in data.hands:
        return None
    kp = np.asarray(data.hands[f"{side}.keypoints"], np.float64)
    if data.align is not None and f"{side}.transl" in data.align:
        kp = kp + (data.align[f"{side}.transl"] - data.hands[f"{side}.transl"])[:, None]
    return kp


def contact_distances(data: ReportData, side: str) -> tuple[np.ndarray, str, float] | None:
    """Per finger the distance from the hand to the nearest object point, once step align finished.

    Returns:
        (T, 5) distances in metres; what they were measured from; and the offset (m) that contact has
        in that measure: 0 for the tip and pad vertices that step align records (``<side>.contact_m``),
        the fingertip radius (``hand.contact_tip_radius``) for the fingertip keypoints (joint centres,
        inside the finger) used for an older align output without them. None before step align.
    """
    if data.align is None:
        return None
    if f"{side}.contact_m" in data.align:
        return np.asarray(data.align[f"{side}.contact_m"], np.float64), "tip and pad vertices", 0.0
    track, kp = object_track(data), hand_keypoints(data, side)
    points = posed_object_points(track) if track is not None else None
    if points is None or kp is None:
        return None
    tips = kp[:, FINGERTIPS]
    dist = np.stack([np.linalg.norm(points - tips[:, [f]], axis=-1).min(-1) for f in range(5)], -1)
    radius = float(data.done["align"].get("config", {}).get("hand", {}).get("contact_tip_radius", 0.008))
    return dist, "fingertip keypoints (an align output without contact_m)", radius


def rotation_track(rot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The object's rotation over time, in degrees.

    Args:
        rot: (T, 3) axis-angle, canonical → camera.

    Returns:
        The angle of the motion since frame 0 (``R_t R_0ᵀ``, 0–180°) (T,); the angle turned in total,
        summed over consecutive frames (T,); and the rotation from each frame to the next as a rotation
        vector in camera axes (T − 1, 3) (smooth for a held object; a jump is a pose error).
    """
    R = Rotation.from_rotvec(np.asarray(rot, np.float64))
    since_first = np.degrees((R * R[0].inv()).magnitude())
    step = np.degrees((R[1:] * R[:-1].inv()).as_rotvec()) if len(R) > 1 else np.zeros((0, 3))
    total = np.concatenate([[0.0], np.cumsum(np.linalg.norm(step, axis=-1))])
    return since_first, total, step


def sfm_model_stats(sfm_dir: Path, num_frames: int) -> dict | None:
    """Per-frame mean reprojection error and 3D points seen, and the track lengths, of the largest
    SfM model left on disk (``work/sfm/sparse*/N/``); None without one or without pycolmap."""
    try:
        import pycolmap
    except ImportError:
        return None
    best = None
    for model_dir in sorted(sfm_dir.glob("sparse*/*/")):
        if not (model_dir / "images.bin").is_file() and not (model_dir / "images.txt").is_file():
            continue
        rec = pycolmap.Reconstruction(str(model_dir))
        if best is None or rec.num_reg_images() > best[1].num_reg_images():
            best = (model_dir, rec)
    if best is None:
        return None
    model_dir, rec = best
    error, seen = np.full(num_frames, np.nan), np.zeros(num_frames, int)
    for im in rec.images.values():
        t = int(Path(im.name).stem) if Path(im.name).stem.isdigit() else -1
        if not 0 <= t < num_frames:
            continue
        obs = [p for p in im.points2D if p.has_point3D()]
        if not obs:
            continue
        xy = np.array([p.xy for p in obs])
        X = np.array([rec.points3D[p.point3D_id].xyz for p in obs])
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        M = np.asarray(pose.matrix())
        cam = X @ M[:, :3].T + M[:, 3]
        uv = np.asarray(rec.cameras[im.camera_id].img_from_cam(cam))[:, :2]
        error[t], seen[t] = float(np.linalg.norm(uv - xy, axis=1).mean()), len(obs)
    tracks = np.array([p.track.length() for p in rec.points3D.values()], int)
    return {
        "model": str(model_dir.relative_to(sfm_dir)),
        "images": int(rec.num_reg_images()),
        "error": error,
        "seen": seen,
        "tracks": tracks,
    }


def frame_ranges(frames: np.ndarray | list[int], limit: int = 12) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"0–2, 5, 7–8"``; at most ``limit`` ranges, then ``…``."""
    idx = sorted(int(i) for i in np.asarray(frames).ravel())
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:limit]]
    return ", ".join(text) + (", …" if len(runs) > limit else "")
