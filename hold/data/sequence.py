"""SEQUENCE format v1 (docs/formats.md): the contract between preprocessing and training.

This module owns reading, writing and validating a SEQUENCE dir. Every problem is reported as a
``SequenceError`` naming the file, the key, what was expected and what was found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from hold.hand.spec import HAND_MODEL_SPECS
from hold.utils.io import atomic_open, write_json, write_npz, write_png

FORMAT_NAME = "hold-sequence"
FORMAT_VERSION = 1
HAND_SIDES = ("right", "left")
MASK_LABELS = {0: "background", 1: "object", 2: "right hand", 3: "left hand", 255: "unknown"}
LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT, LABEL_LEFT, LABEL_UNKNOWN = 0, 1, 2, 3, 255
OBJECT_SOURCES = {0: "sfm_registered", 1: "interpolated", 2: "hand_anchored", 3: "other_fallback"}
"""Codes of ``object.source``: where each frame's object pose came from."""
SOURCE_SFM, SOURCE_INTERPOLATED, SOURCE_HAND, SOURCE_OTHER = 0, 1, 2, 3
NUM_KEYPOINTS = 21
_FRAME_NAME = re.compile(r"^(\d{5})\.png$")


class SequenceError(ValueError):
    """A SEQUENCE dir (or the data about to be written as one) that breaks format v1."""


@dataclass
class HandTrack:
    """Per-frame parameters of one hand (docs/formats.md, keys ``<side>.*``)."""

    global_orient: np.ndarray  # (T, 3) axis-angle
    pose: np.ndarray  # (T, J, 3) axis-angle per articulated joint
    betas: np.ndarray  # (B,) shape, shared over frames
    transl: np.ndarray  # (T, 3) metres


@dataclass
class ObjectTrack:
    """Per-frame rigid pose and canonical point cloud of the object: x_cam = R(rot) · (s · x_can) + transl."""

    rot: np.ndarray  # (T, 3) axis-angle, canonical → camera
    transl: np.ndarray  # (T, 3) metres
    scale: float  # canonical units → metres
    points: np.ndarray  # (P, 3) canonical, inside the unit sphere
    colors: np.ndarray | None = None  # (P, 3) uint8
    source: np.ndarray | None = None  # (T,) uint8 codes of OBJECT_SOURCES

    def sfm_registered(self) -> np.ndarray:
        """(T,) bool: frames whose pose SfM registered; none when the track records no source."""
        if self.source is None:
            return np.zeros(len(self.rot), bool)
        return np.asarray(self.source) == SOURCE_SFM


@dataclass
class Sequence:
    """A SEQUENCE dir's metadata and arrays; images and masks are read on demand."""

    K: np.ndarray  # (3, 3) float64
    valid: np.ndarray  # (T,) bool
    hands: dict[str, HandTrack]
    object: ObjectTrack
    image_size: tuple[int, int]  # (H, W)
    hand_model: str = "anny"
    source: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None

    @property
    def num_frames(self) -> int:
        return int(self.valid.shape[0])

    def image_path(self, t: int) -> Path:
        return self._root() / "images" / f"{t:05d}.png"

    def mask_path(self, t: int) -> Path:
        return self._root() / "masks" / f"{t:05d}.png"

    def load_image(self, t: int) -> np.ndarray:
        """RGB frame t as uint8 (H, W, 3)."""
        return np.asarray(Image.open(self.image_path(t)).convert("RGB"))

    def load_mask(self, t: int) -> np.ndarray:
        """Label map of frame t as uint8 (H, W), labels in ``MASK_LABELS``."""
        return np.asarray(Image.open(self.mask_path(t)))

    def _root(self) -> Path:
        if self.root is None:
            raise SequenceError("this Sequence was built in memory and has no directory yet")
        return self.root


# ----------------------------------------------------------------------------------------------- reading


def read_sequence(root: str | Path, check_pixels: bool = True) -> Sequence:
    """Read and validate a SEQUENCE dir.

    Args:
        root: the SEQUENCE dir.
        check_pixels: also decode every mask to check its labels (image sizes are always checked).

    Raises:
        SequenceError: naming the file, key, expected and found value of the first problem.
    """
    root = Path(root)
    if not root.is_dir():
        raise SequenceError(
            f"{root}: not a directory (expected a SEQUENCE dir, see docs/formats.md, SEQUENCE dir)"
        )
    meta = _read_meta(root / "sequence.json")
    T, (H, W) = meta["num_frames"], meta["image_size"]
    arrays = _read_npz(root / "sequence.npz")
    seq = _sequence_from_arrays(arrays, meta, str(root / "sequence.npz"))
    seq.root = root
    _check_frames(root / "images", T, (H, W), mode="image", check_pixels=False)
    _check_frames(root / "masks", T, (H, W), mode="mask", check_pixels=check_pixels)
    return seq


def validate_sequence(root: str | Path) -> None:
    """Full validation of a SEQUENCE dir, gt/ included when present; raises ``SequenceError``."""
    seq = read_sequence(root, check_pixels=True)
    if (Path(root) / "gt").exists():
        read_ground_truth(Path(root) / "gt", num_frames=seq.num_frames)


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SequenceError(f"{path}: missing (every SEQUENCE dir has a sequence.json)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SequenceError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise SequenceError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    for key in ("format", "version", "num_frames", "image_size", "hands", "hand_model"):
        if key not in meta:
            raise SequenceError(f"{path}: key '{key}' is missing")
    if meta["format"] != FORMAT_NAME:
        raise SequenceError(f"{path}: key 'format': expected {FORMAT_NAME!r}, found {meta['format']!r}")
    if meta["version"] != FORMAT_VERSION:
        raise SequenceError(
            f"{path}: key 'version': this hold reads version {FORMAT_VERSION}, found {meta['version']!r}"
        )
    T = meta["num_frames"]
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise SequenceError(f"{path}: key 'num_frames': expected a positive integer, found {T!r}")
    size = meta["image_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise SequenceError(f"{path}: key 'image_size': expected [H, W] positive integers, found {size!r}")
    hands = meta["hands"]
    if not isinstance(hands, list) or not hands or any(h not in HAND_SIDES for h in hands):
        raise SequenceError(
            f"{path}: key 'hands': expected a non-empty list of {HAND_SIDES}, found {hands!r}"
        )
    if len(set(hands)) != len(hands):
        raise SequenceError(f"{path}: key 'hands': duplicate entries in {hands!r}")
    if meta["hand_model"] not in HAND_MODEL_SPECS:
        raise SequenceError(
            f"{path}: key 'hand_model': expected one of {sorted(HAND_MODEL_SPECS)}, found {meta['hand_model']!r}"
        )
    meta["image_size"] = tuple(size)
    return meta


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise SequenceError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as e:  # numpy raises several types for a corrupt archive
        raise SequenceError(f"{path}: unreadable npz archive ({type(e).__name__}: {e})") from None


def _sequence_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any], where: str) -> Sequence:
    T = meta["num_frames"]
    spec = HAND_MODEL_SPECS[meta["hand_model"]]
    check = _ArrayChecker(arrays, where)
    K = check.get("K", (3, 3), "float")
    _check_intrinsics(K, where, meta["image_size"])
    valid = check.get("valid", (T,), "bool")
    if T > 0 and not valid.any():
        raise SequenceError(f"{where}: key 'valid': every frame is invalid; there is nothing to train on")
    hands = {}
    for side in meta["hands"]:
        missing = [k for k in ("global_orient", "pose", "betas", "transl") if f"{side}.{k}" not in arrays]
        if missing:
            raise SequenceError(
                f"{where}: sequence.json lists hand '{side}' (model '{meta['hand_model']}') but "
                f"key{'s' if len(missing) > 1 else ''} {', '.join(f'{side}.{k}' for k in missing)} "
                f"{'are' if len(missing) > 1 else 'is'} missing"
            )
        hands[side] = HandTrack(
            global_orient=check.get(f"{side}.global_orient", (T, 3), "float"),
            pose=check.get(f"{side}.pose", (T, spec.num_pose_joints, 3), "float"),
            betas=check.get(f"{side}.betas", (spec.num_betas,), "float"),
            transl=check.get(f"{side}.transl", (T, 3), "float"),
        )
    scale = check.get("object.scale", (), "float")
    if not float(scale) > 0:
        raise SequenceError(f"{where}: key 'object.scale': expected a positive number, found {float(scale)}")
    points = check.get("object.points", (None, 3), "float")
    if points.shape[0] == 0:
        raise SequenceError(f"{where}: key 'object.points': expected at least one point, found shape (0, 3)")
    radius = float(np.linalg.norm(points, axis=1).max())
    if radius > 1.0 + 1e-3:
        raise SequenceError(
            f"{where}: key 'object.points': expected points normalised to the unit sphere, "
            f"found a point at radius {radius:.4f}"
        )
    colors = None
    if "object.colors" in arrays:
        colors = check.get("object.colors", (points.shape[0], 3), "uint8")
    source = None
    if "object.source" in arrays:
        source = check.get("object.source", (T,), "uint8")
        unknown = sorted(set(np.unique(source).tolist()) - set(OBJECT_SOURCES))
        if unknown:
            raise SequenceError(
                f"{where}: key 'object.source': undefined code(s) {unknown}; allowed: "
                + ", ".join(f"{k} {v}" for k, v in OBJECT_SOURCES.items())
            )
    return Sequence(
        K=K.astype(np.float64),
        valid=valid,
        hands=hands,
        object=ObjectTrack(
            rot=check.get("object.rot", (T, 3), "float"),
            transl=check.get("object.transl", (T, 3), "float"),
            scale=float(scale),
            points=points,
            colors=colors,
            source=source,
        ),
        image_size=meta["image_size"],
        hand_model=meta["hand_model"],
        source=dict(meta.get("source", {})),
    )


class _ArrayChecker:
    """Fetches named arrays and checks shape, dtype kind and finiteness, naming the file and key."""

    def __init__(self, arrays: dict[str, np.ndarray], where: str):
        self.arrays, self.where = arrays, where

    def get(self, key: str, shape: tuple[int | None, ...], kind: str) -> np.ndarray:
        if key not in self.arrays:
            raise SequenceError(f"{self.where}: key '{key}' is missing (expected shape {_fmt(shape)})")
        a = np.asarray(self.arrays[key])
        if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
            raise SequenceError(f"{self.where}: key '{key}': expected shape {_fmt(shape)}, found {a.shape}")
        ok = {
            "float": a.dtype.kind == "f",
            "bool": a.dtype == np.bool_,
            "uint8": a.dtype == np.uint8,
        }[kind]
        if not ok:
            raise SequenceError(f"{self.where}: key '{key}': expected dtype {kind}, found {a.dtype}")
        if kind == "float" and not np.all(np.isfinite(a)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise SequenceError(
                f"{self.where}: key '{key}': expected finite values, found {a[bad]} at index {bad}"
            )
        return a


def _fmt(shape: tuple[int | None, ...]) -> str:
    return (
        "("
        + ", ".join("any" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _check_intrinsics(K: np.ndarray, where: str, image_size: tuple[int, int]) -> None:
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (fx > 0 and fy > 0):
        raise SequenceError(f"{where}: key 'K': focal lengths must be positive, found fx={fx}, fy={fy}")
    if not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
        raise SequenceError(
            f"{where}: key 'K': expected a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]], found {K.tolist()}"
        )
    H, W = image_size
    if not (0 < cx < W and 0 < cy < H):
        raise SequenceError(
            f"{where}: key 'K': principal point must be inside the {W}x{H} image, found cx={cx}, cy={cy}"
        )


def _check_frames(folder: Path, T: int, size: tuple[int, int], mode: str, check_pixels: bool) -> None:
    if not folder.is_dir():
        raise SequenceError(f"{folder}: missing (expected {T} {mode} PNGs 00000.png …)")
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")
    indices = [int(m.group(1)) for n in names if (m := _FRAME_NAME.match(n))]
    if len(indices) != T:
        raise SequenceError(
            f"{folder}: expected {T} frames (num_frames in sequence.json), found {len(indices)} PNGs"
        )
    expected = set(range(T))
    if set(indices) != expected:
        missing = sorted(expected - set(indices))
        raise SequenceError(
            f"{folder}: frame {missing[0]:05d}.png is missing (frames must be 00000…{T - 1:05d})"
        )
    for t in range(T):
        path = folder / f"{t:05d}.png"
        try:
            with Image.open(path) as im:
                found = (im.height, im.width)
                band_count = len(im.getbands())
                if mode == "mask" and check_pixels:
                    labels = np.unique(np.asarray(im))
        except (UnidentifiedImageError, OSError) as e:
            raise SequenceError(f"{path}: unreadable image ({e})") from None
        if found != tuple(size):
            raise SequenceError(f"{path}: expected size (H, W) = {tuple(size)} (image_size), found {found}")
        if mode == "mask":
            if band_count != 1:
                raise SequenceError(
                    f"{path}: expected a single-channel uint8 label map, found {band_count} channels"
                )
            if check_pixels:
                undefined = sorted(set(labels.tolist()) - set(MASK_LABELS))
                if undefined:
                    raise SequenceError(
                        f"{path}: undefined mask label(s) {undefined}; allowed: "
                        + ", ".join(f"{k} {v}" for k, v in MASK_LABELS.items())
                    )


# ----------------------------------------------------------------------------------------------- writing


def sequence_arrays(seq: Sequence) -> dict[str, np.ndarray]:
    """The ``sequence.npz`` arrays of a Sequence, with the dtypes of format v1."""
    out: dict[str, np.ndarray] = {
        "K": np.asarray(seq.K, np.float64),
        "valid": np.asarray(seq.valid, bool),
    }
    for side, h in seq.hands.items():
        for name in ("global_orient", "pose", "betas", "transl"):
            out[f"{side}.{name}"] = np.asarray(getattr(h, name), np.float32)
    o = seq.object
    out |= {
        "object.rot": np.asarray(o.rot, np.float32),
        "object.transl": np.asarray(o.transl, np.float32),
        "object.scale": np.asarray(o.scale, np.float32),
        "object.points": np.asarray(o.points, np.float32),
    }
    if o.colors is not None:
        out["object.colors"] = np.asarray(o.colors, np.uint8)
    if o.source is not None:
        out["object.source"] = np.asarray(o.source, np.uint8)
    return out


def pose_keys(seq: Sequence) -> list[str]:
    """The ``sequence.npz`` keys of the per-frame hand and object parameters (what stage 2 refines)."""
    hands = [f"{side}.{k}" for side in seq.hands for k in ("global_orient", "pose", "betas", "transl")]
    return [*hands, "object.rot", "object.transl", "object.scale"]


def with_poses(seq: Sequence, poses: dict[str, np.ndarray], where: str) -> Sequence:
    """A copy of ``seq`` whose hand and object parameters are those of ``poses`` (``pose_keys``),
    checked as the reader checks ``sequence.npz``.

    Raises:
        SequenceError: a key is missing or has the wrong shape or type (naming ``where`` and the key).
    """
    missing = [k for k in pose_keys(seq) if k not in poses]
    if missing:
        raise SequenceError(f"{where}: key '{missing[0]}' is missing")
    arrays = sequence_arrays(seq) | {k: poses[k] for k in pose_keys(seq)}
    out = _sequence_from_arrays(arrays, _read_meta_dict(sequence_meta(seq)), where)
    out.root = seq.root
    return out


def sequence_meta(seq: Sequence) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "num_frames": seq.num_frames,
        "image_size": [int(v) for v in seq.image_size],
        "hands": list(seq.hands),
        "hand_model": seq.hand_model,
        "source": seq.source,
    }


def write_sequence(
    root: str | Path, seq: Sequence, images: Iterable[np.ndarray], masks: Iterable[np.ndarray]
) -> Path:
    """Write a SEQUENCE dir; arrays are validated before anything is written.

    Every file is written atomically and ``sequence.json`` last, so a dir with a sequence.json is complete.

    Args:
        root: output dir (created).
        seq: metadata and arrays.
        images: T RGB frames, uint8 (H, W, 3).
        masks: T label maps, uint8 (H, W).
    """
    root = Path(root)
    meta, arrays = sequence_meta(seq), sequence_arrays(seq)
    # Round-trip through the reader's checks so a bad array is caught before any file is written.
    _sequence_from_arrays(arrays, _read_meta_dict(meta), "sequence.npz (to be written)")
    (root / "sequence.json").unlink(missing_ok=True)
    H, W = seq.image_size
    n_img = _write_frames(root / "images", images, (H, W, 3), "images")
    n_msk = _write_frames(root / "masks", masks, (H, W), "masks")
    if n_img != seq.num_frames or n_msk != seq.num_frames:
        raise SequenceError(
            f"{root}: expected {seq.num_frames} images and masks (length of 'valid'), got {n_img} and {n_msk}"
        )
    write_npz(root / "sequence.npz", arrays)
    write_json(root / "sequence.json", meta)
    seq.root = root
    return root


def _read_meta_dict(meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "image_size": tuple(meta["image_size"])}


def _write_frames(folder: Path, frames: Iterable[np.ndarray], shape: tuple[int, ...], what: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    n = 0
    for t, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != shape or frame.dtype != np.uint8:
            raise SequenceError(f"{what}[{t}]: expected uint8 {shape}, found {frame.dtype} {frame.shape}")
        if what == "masks":
            undefined = sorted(set(np.unique(frame).tolist()) - set(MASK_LABELS))
            if undefined:
                raise SequenceError(f"masks[{t}]: undefined mask label(s) {undefined}")
        write_png(folder / f"{t:05d}.png", frame)
        n += 1
    return n


# ------------------------------------------------------------------------------------------ ground truth


@dataclass
class GroundTruth:
    """Evaluation-only ground truth (``gt/``); never read by training."""

    joints: dict[str, np.ndarray]  # side → (T, 21, 3) camera frame, metres
    object_R: np.ndarray  # (T, 3, 3) GT object-mesh frame → camera
    object_t: np.ndarray  # (T, 3)
    valid: np.ndarray  # (T,) bool
    verts: dict[str, np.ndarray] = field(default_factory=dict)  # side → (T, V, 3), optional
    object_mesh_path: Path | None = None  # gt/object.ply, metres

    @property
    def num_frames(self) -> int:
        return int(self.valid.shape[0])


def read_ground_truth(gt_dir: str | Path, num_frames: int | None = None) -> GroundTruth:
    """Read and validate ``gt/`` (gt.npz and object.ply); ``num_frames`` checks T against the sequence."""
    gt_dir = Path(gt_dir)
    arrays = _read_npz(gt_dir / "gt.npz")
    where = str(gt_dir / "gt.npz")
    check = _ArrayChecker(arrays, where)
    valid = check.get("valid", (num_frames,), "bool")
    T = valid.shape[0]
    sides = [s for s in HAND_SIDES if f"{s}.joints" in arrays]
    if not sides:
        raise SequenceError(
            f"{where}: key 'right.joints' (or 'left.joints') is missing, expected shape ({T}, 21, 3)"
        )
    joints = {s: check.get(f"{s}.joints", (T, NUM_KEYPOINTS, 3), "float") for s in sides}
    verts = {s: check.get(f"{s}.verts", (T, None, 3), "float") for s in sides if f"{s}.verts" in arrays}
    mesh = gt_dir / "object.ply"
    if not mesh.is_file():
        raise SequenceError(f"{mesh}: missing (the GT object mesh, metres)")
    return GroundTruth(
        joints=joints,
        object_R=check.get("object.R", (T, 3, 3), "float"),
        object_t=check.get("object.t", (T, 3), "float"),
        valid=valid,
        verts=verts,
        object_mesh_path=mesh,
    )


def ground_truth_arrays(gt: GroundTruth) -> dict[str, np.ndarray]:
    out = {"valid": np.asarray(gt.valid, bool), "object.R": gt.object_R, "object.t": gt.object_t}
    out |= {f"{s}.joints": j for s, j in gt.joints.items()}
    out |= {f"{s}.verts": v for s, v in gt.verts.items()}
    return {k: (v if v.dtype == bool else np.asarray(v, np.float32)) for k, v in out.items()}


def write_ground_truth(gt_dir: str | Path, gt: GroundTruth, object_mesh_ply: bytes) -> None:
    """Write ``gt/gt.npz`` and ``gt/object.ply`` (PLY bytes, metres) atomically."""
    gt_dir = Path(gt_dir)
    write_npz(gt_dir / "gt.npz", ground_truth_arrays(gt))
    with atomic_open(gt_dir / "object.ply", "wb") as f:
        f.write(object_mesh_ply)
    gt.object_mesh_path = gt_dir / "object.ply"
