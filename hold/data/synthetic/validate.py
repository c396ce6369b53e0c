"""Validation of a RAW dir (docs/formats.md): every problem names the file, the key, expected and found."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hold.data.sequence import MASK_LABELS, NUM_KEYPOINTS, SequenceError, read_ground_truth

_FRAME_NAME = re.compile(r"^(\d{5})\.(png|jpg|jpeg)$", re.IGNORECASE)
_MASK_NAME = re.compile(r"^(\d{5})\.png$")
_CAMERA_KEYS = ("fx", "fy", "cx", "cy")
_HAND_SIDES = ("right", "left")


class RawError(ValueError):
    """A RAW dir that breaks docs/formats.md."""


def validate_raw(root: str | Path) -> int:
    """Check a RAW dir: frames, camera.json, masks/, hands.npz and gt/ (each optional part if present).

    Args:
        root: the RAW dir.

    Returns:
        T, the number of frames (0 when the frames come as video.mp4, which is not decoded here).

    Raises:
        RawError: naming the file, key, expected and found value of the first problem.
    """
    root = Path(root)
    if not root.is_dir():
        raise RawError(f"{root}: not a directory (expected a RAW dir, see docs/formats.md, RAW dir)")
    frames_dir = root / "frames"
    if frames_dir.is_dir():
        T, size = _check_frames(frames_dir)
    elif (root / "video.mp4").is_file():
        T, size = 0, None
    else:
        raise RawError(f"{root}: has neither frames/ (00000.png …) nor video.mp4")
    if (root / "camera.json").exists():
        _check_camera(root / "camera.json")
    if (root / "masks").exists():
        _check_masks(root / "masks", T, size)
    if (root / "hands.npz").exists():
        _check_hands(root / "hands.npz", T)
    if (root / "gt").exists():
        try:
            read_ground_truth(root / "gt", num_frames=T or None)
        except SequenceError as e:
            raise RawError(str(e)) from None
    return T


def _numbered(folder: Path, pattern: re.Pattern[str], what: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    if not files:
        raise RawError(f"{folder}: no {what} named like 00000.png")
    for i, p in enumerate(files):
        if int(pattern.match(p.name).group(1)) != i:
            raise RawError(
                f"{folder}: {what} must be numbered 00000, 00001, … without gaps; found {p.name} at position {i}"
            )
    return files


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise RawError(f"{path}: not a readable image ({e})") from None
    return image


def _check_frames(folder: Path) -> tuple[int, tuple[int, int]]:
    files = _numbered(folder, _FRAME_NAME, "frames")
    size = None
    for p in files:
        image = _open(p)
        if image.mode not in ("RGB", "L", "RGBA"):
            raise RawError(f"{p}: expected an RGB image, found mode {image.mode}")
        hw = (image.height, image.width)
        if size is not None and hw != size:
            raise RawError(f"{p}: expected size (H, W) = {size} like {files[0].name}, found {hw}")
        size = hw
    return len(files), size


def _check_camera(path: Path) -> None:
    try:
        cam = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RawError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cam, dict):
        raise RawError(f"{path}: expected an object with keys {_CAMERA_KEYS}, found {type(cam).__name__}")
    for key in _CAMERA_KEYS:
        value = cam.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise RawError(f"{path}: key '{key}' must be a finite number, found {value!r}")
    for key in ("fx", "fy"):
        if cam[key] <= 0:
            raise RawError(f"{path}: key '{key}' must be positive, found {cam[key]}")


def _check_masks(folder: Path, T: int, size: tuple[int, int] | None) -> None:
    files = _numbered(folder, _MASK_NAME, "masks")
    if T and len(files) != T:
        raise RawError(f"{folder}: expected {T} masks (one per frame), found {len(files)}")
    for p in files:
        image = _open(p)
        if image.mode not in ("L", "P"):
            raise RawError(f"{p}: expected a single-channel uint8 label map, found mode {image.mode}")
        if size is not None and (image.height, image.width) != size:
            raise RawError(
                f"{p}: expected size (H, W) = {size} like the frames, found {(image.height, image.width)}"
            )
        bad = sorted(set(np.unique(np.asarray(image)).tolist()) - set(MASK_LABELS))
        if bad:
            raise RawError(f"{p}: undefined label(s) {bad}; valid labels: {sorted(MASK_LABELS)}")


def _check_hands(path: Path, T: int) -> None:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise RawError(f"{path}: not a readable .npz ({e})") from None
    sides = [s for s in _HAND_SIDES if f"{s}.kp2d" in arrays]
    if not sides:
        raise RawError(f"{path}: key 'right.kp2d' (or 'left.kp2d') is missing, expected shape (T, 21, 3)")
    for side in sides:
        kp2d = _get(arrays, path, f"{side}.kp2d", (T or None, NUM_KEYPOINTS, 3))
        n = kp2d.shape[0]
        conf = kp2d[..., 2]
        if not np.isfinite(kp2d).all():
            raise RawError(f"{path}: key '{side}.kp2d' has non-finite values")
        if conf.min() < 0 or conf.max() > 1:
            raise RawError(
                f"{path}: key '{side}.kp2d' confidences must lie in [0, 1], found [{conf.min()}, {conf.max()}]"
            )
        if f"{side}.kp3d" in arrays:
            kp3d = _get(arrays, path, f"{side}.kp3d", (n, NUM_KEYPOINTS, 3))
            if not np.isfinite(kp3d).all():
                raise RawError(f"{path}: key '{side}.kp3d' has non-finite values")
        valid = _get(arrays, path, f"{side}.valid", (n,))
        if valid.dtype != bool:
            raise RawError(f"{path}: key '{side}.valid' must be bool, found {valid.dtype}")


def _get(arrays: dict[str, np.ndarray], path: Path, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    expected = "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"
    if key not in arrays:
        raise RawError(f"{path}: key '{key}' is missing, expected shape {expected}")
    a = arrays[key]
    if a.ndim != len(shape) or any(s is not None and s != f for s, f in zip(shape, a.shape)):
        raise RawError(f"{path}: key '{key}' expected shape {expected}, found {a.shape}")
    return a
