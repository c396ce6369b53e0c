"""Worker of the ``mediapipe`` hand backend. It runs INSIDE the mediapipe environment (.venv-mediapipe).

    <venv>/bin/python -I worker.py REQUEST.json RESPONSE.npz

It imports only the standard library and numpy at module level, mediapipe and cv2 (both in that
environment) where they are used — never ``hold``, ``preprocess`` or torch — so the main process
can drive it without ever importing mediapipe, and the tests can run its code path with a fake
estimator in the main environment.

Request (JSON, written by ``preprocess.mediapipe.driver``)::

    {"protocol": 1, "frames": ["/abs/00000.png", …], "options": {<the keys of OPTION_KEYS>}}

Response (npz, written atomically: a temporary name, then a rename), N = options.max_num_hands::

    protocol ()  int;  mediapipe_version ()  str;  image_size (T, 2) int32 (H, W)
    count (T,) int32           detections kept in each frame (slots ≥ count hold NaN / 0)
    landmarks (T, N, 21, 3)    pixel x, y of the input frame (edges at 0 and W; pixel i covers
                               [i, i+1)), z relative to the wrist in the same pixel units
    world (T, N, 21, 3)        mediapipe's metric "world" landmarks (origin at the hand's centre,
                               image-aligned axes: x right, y down, z away from the camera), metres
    handedness (T, N) float32  probability that mediapipe called the hand "Right" (its labels
                               assume a mirrored, selfie-camera image)
    score (T, N) float32       mediapipe's handedness score of the hand (its only per-hand score)
    source (T, N) int8         0 empty slot, 1 video mode (tracking), 2 detection fallback
    seconds (T,) float32       inference time of each frame

Exit status: 0 written; 2 a malformed request; 1 any other failure (a message on stderr).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

PROTOCOL = 1
NUM_LANDMARKS = 21
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SOURCE_EMPTY, SOURCE_VIDEO, SOURCE_DETECTION = 0, 1, 2
OPTION_KEYS = (
    "running_mode",  # "video": tracking between frames, palm detection when lost; "image": every frame alone
    "detection_fallback",  # video mode: frames without a hand are detected again as still images
    "max_num_hands",
    "model_complexity",  # 0 lite, 1 full (hand_landmark_full.tflite)
    "min_detection_confidence",
    "min_tracking_confidence",
    "fallback_min_detection_confidence",  # palm-detection score needed by the detection fallback
    "upscale_to",  # frames are enlarged so that their longer side is at least this (0: as they are)
    "pad_fraction",  # a black border of this fraction of the longer side is added on every side
)


class RequestError(ValueError):
    """The request file is missing, not JSON, or lacks a key (exit status 2)."""


@dataclass
class Detection:
    """One hand found by the estimator in a prepared image.

    Attributes:
        landmarks: (21, 3) x, y normalised to the prepared image (0..1), z in units of its width.
        world: (21, 3) metric landmarks, metres.
        label: ``"Right"`` or ``"Left"`` as mediapipe says.
        score: the handedness score.
    """

    landmarks: np.ndarray
    world: np.ndarray
    label: str
    score: float


class Estimator(Protocol):
    """What the worker needs of a hand-landmark estimator (mediapipe, or a fake in the tests)."""

    def __call__(self, rgb: np.ndarray) -> list[Detection]: ...

    def close(self) -> None: ...


EstimatorFactory = Callable[[bool, dict[str, Any]], Estimator]
"""``(static_image_mode, options) → Estimator``."""


class MediapipeHands:
    """mediapipe's bundled hand tracker (``solutions.hands``: palm detector + hand_landmark tflite)."""

    def __init__(self, static: bool, options: dict[str, Any]) -> None:
        import mediapipe as mp

        self._hands = mp.solutions.hands.Hands(
            static_image_mode=static,
            max_num_hands=int(options["max_num_hands"]),
            model_complexity=int(options["model_complexity"]),
            min_detection_confidence=float(options["min_detection_confidence"]),
            min_tracking_confidence=float(options["min_tracking_confidence"]),
        )

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        result = self._hands.process(np.ascontiguousarray(rgb))
        if not result.multi_hand_landmarks:
            return []
        out = []
        for image_lm, world_lm, handedness in zip(
            result.multi_hand_landmarks, result.multi_hand_world_landmarks, result.multi_handedness
        ):
            cls = handedness.classification[0]
            out.append(
                Detection(
                    landmarks=np.array([(p.x, p.y, p.z) for p in image_lm.landmark], np.float64),
                    world=np.array([(p.x, p.y, p.z) for p in world_lm.landmark], np.float64),
                    label=cls.label,
                    score=float(cls.score),
                )
            )
        return out

    def close(self) -> None:
        self._hands.close()


def mediapipe_version() -> str:
    """The installed mediapipe's version, or ``"none"`` (fake estimators)."""
    try:
        from importlib.metadata import version

        return version("mediapipe")
    except Exception:  # noqa: BLE001 - any failure means: not installed here
        return "none"


def read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (cv2 in the mediapipe environment, else PIL)."""
    try:
        import cv2
    except ImportError:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"{path}: not a readable image")
    return np.ascontiguousarray(bgr[..., ::-1])


def prepare(rgb: np.ndarray, upscale_to: int, pad_fraction: float) -> tuple[np.ndarray, int]:
    """Enlarge (bicubic) and pad a frame for the estimator.

    Returns:
        (image, pad): the prepared image and the width of its black border in prepared pixels.
    """
    H, W = rgb.shape[:2]
    scale = upscale_to / max(H, W) if upscale_to > 0 else 1.0
    image = rgb
    if scale > 1.0:
        size = (round(W * scale), round(H * scale))
        try:
            import cv2

            image = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        except ImportError:
            from PIL import Image

            image = np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))
    pad = round(pad_fraction * max(image.shape[:2]))
    if pad > 0:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    return np.ascontiguousarray(image), pad


def to_frame_pixels(
    det: Detection, prepared_hw: tuple[int, int], frame_hw: tuple[int, int], pad: int
) -> np.ndarray:
    """(21, 3) landmarks in frame pixels (x, y; z in x's units, relative to the wrist).

    A prepared-image coordinate c (edges at 0 and its size) maps to (c − pad) / s, with s the
    enlargement along that axis.
    """
    (h, w), (H, W) = prepared_hw, frame_hw
    sx, sy = (w - 2 * pad) / W, (h - 2 * pad) / H
    out = np.empty((NUM_LANDMARKS, 3))
    out[:, 0] = (det.landmarks[:, 0] * w - pad) / sx
    out[:, 1] = (det.landmarks[:, 1] * h - pad) / sy
    out[:, 2] = det.landmarks[:, 2] * w / sx
    return out


def load_request(path: str | Path) -> dict[str, Any]:
    """Read and check a request file. Raises ``RequestError``."""
    try:
        request = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RequestError(f"{path}: not a readable JSON request ({e})") from None
    if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
        found = request.get("protocol") if isinstance(request, dict) else type(request).__name__
        raise RequestError(f"{path}: expected protocol {PROTOCOL}, found {found!r}")
    frames, options = request.get("frames"), request.get("options")
    if not isinstance(frames, list) or not frames or not all(isinstance(f, str) for f in frames):
        raise RequestError(f"{path}: 'frames' must be a non-empty list of image paths")
    missing = [k for k in OPTION_KEYS if not isinstance(options, dict) or k not in options]
    if missing:
        raise RequestError(f"{path}: 'options' lacks {missing}")
    if options["running_mode"] not in ("video", "image"):
        raise RequestError(f"{path}: options.running_mode must be 'video' or 'image'")
    return request


def process_request(
    request: dict[str, Any],
    make_estimator: EstimatorFactory = MediapipeHands,
    read: Callable[[str], np.ndarray] = read_image,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True),
) -> dict[str, np.ndarray]:
    """Run the estimator over the request's frames in order; returns the response arrays."""
    frames, opt = request["frames"], request["options"]
    T, N = len(frames), int(opt["max_num_hands"])
    video = opt["running_mode"] == "video"
    out = {
        "protocol": np.array(PROTOCOL),
        "mediapipe_version": np.array(mediapipe_version()),
        "image_size": np.zeros((T, 2), np.int32),
        "count": np.zeros(T, np.int32),
        "landmarks": np.full((T, N, NUM_LANDMARKS, 3), np.nan, np.float32),
        "world": np.full((T, N, NUM_LANDMARKS, 3), np.nan, np.float32),
        "handedness": np.full((T, N), np.nan, np.float32),
        "score": np.zeros((T, N), np.float32),
        "source": np.zeros((T, N), np.int8),
        "seconds": np.zeros(T, np.float32),
    }
    tracker = make_estimator(not video, opt)
    fallback = opt | {"min_detection_confidence": opt["fallback_min_detection_confidence"]}
    detector = make_estimator(True, fallback) if video and opt["detection_fallback"] else None
    try:
        for t, path in enumerate(frames):
            rgb = read(path)
            out["image_size"][t] = rgb.shape[:2]
            image, pad = prepare(rgb, int(opt["upscale_to"]), float(opt["pad_fraction"]))
            start = time.perf_counter()
            dets, source = tracker(image), SOURCE_VIDEO if video else SOURCE_DETECTION
            if not dets and detector is not None:
                dets, source = detector(image), SOURCE_DETECTION
            out["seconds"][t] = time.perf_counter() - start
            dets = dets[:N]
            out["count"][t] = len(dets)
            for k, det in enumerate(dets):
                out["landmarks"][t, k] = to_frame_pixels(det, image.shape[:2], rgb.shape[:2], pad)
                out["world"][t, k] = det.world
                out["handedness"][t, k] = det.score if det.label == "Right" else 1.0 - det.score
                out["score"][t, k] = det.score
                out["source"][t, k] = source
            if (t + 1) % 10 == 0 or t + 1 == T:
                log(
                    f"mediapipe worker: {t + 1}/{T} frames, {int((out['count'][: t + 1] > 0).sum())} with a hand"
                )
    finally:
        tracker.close()
        if detector is not None:
            detector.close()
    return out


def write_response(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the npz under a temporary name beside ``path``, then rename it (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None, make_estimator: EstimatorFactory = MediapipeHands) -> int:
    """Command line: ``worker.py REQUEST.json RESPONSE.npz``; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: worker.py REQUEST.json RESPONSE.npz", file=sys.stderr)
        return EXIT_USAGE
    try:
        request = load_request(args[0])
    except RequestError as e:
        print(f"mediapipe worker: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        write_response(args[1], process_request(request, make_estimator))
    except Exception as e:  # noqa: BLE001 - reported to the main process through stderr and the status
        traceback.print_exc()
        print(f"mediapipe worker: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
