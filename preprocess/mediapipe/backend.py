"""Backend ``mediapipe`` of step ``hands``: the frames → mediapipe → right/left tracks → RAW hands.npz.

The result is written in the layout of RAW/hands.npz (docs/formats.md), for the frames of step
``frames`` (their pixels), to ``work/hands/mediapipe/hands.npz``; the ``hands`` step reads it with the
same checks as an imported file and fits the hand model to it exactly as for backend ``import``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hold.utils.io import write_npz
from hold.utils.logging import get_logger
from preprocess.config import MediapipeConfig
from preprocess.errors import PreprocessError
from preprocess.mediapipe.driver import STEP, detect
from preprocess.mediapipe.tracks import choose_sides, hand_estimates, usable_detections
from preprocess.mediapipe.worker import SOURCE_DETECTION

ESTIMATES_FILE = "hands.npz"
log = get_logger("preprocess.hands.mediapipe")


def estimate_hands(
    frames_dir: Path, num_frames: int, workdir: Path, cfg: MediapipeConfig
) -> tuple[Path, dict]:
    """Estimate the hands of ``frames_dir/00000.png …`` with mediapipe.

    Args:
        frames_dir: step ``frames``' output.
        num_frames: T, the frames to read.
        workdir: where the worker's files and ``hands.npz`` go.
        cfg: backend settings.

    Returns:
        (path of the written hands.npz, summary for the step's done.json).

    Raises:
        PreprocessError: a missing environment (with the command that creates it), a failing worker,
            missing frames, or no hand in any frame.
    """
    frames = [frames_dir / f"{t:05d}.png" for t in range(num_frames)]
    missing = [p for p in frames if not p.is_file()]
    if missing:
        raise PreprocessError(
            STEP, f"{len(missing)} of {num_frames} frames are missing; re-run step frames", missing[0]
        )
    det = detect(frames, workdir, cfg)
    if not det.count.any():
        raise PreprocessError(
            STEP, f"mediapipe found no hand in any of the {num_frames} frames; try hands.mediapipe.upscale_to=640, "
            "a lower hands.mediapipe.min_detection_confidence, or backend import", workdir / "worker.log",
        )  # fmt: skip
    keep = usable_detections(det, cfg)
    sides, assignment = choose_sides(det, keep, cfg)
    path = workdir / ESTIMATES_FILE
    write_npz(path, hand_estimates(det, sides, assignment))
    T = num_frames
    fallback = int((det.source == SOURCE_DETECTION).any(1).sum()) if cfg.running_mode == "video" else 0
    summary = {
        "mediapipe_version": det.version,
        "frames_with_detection": int((det.count > 0).sum()),
        "detection_fallback_frames": fallback,
        "detections_dropped": int((det.present & ~keep).sum()),
        "median_seconds_per_frame": round(float(np.median(det.seconds)), 4),
        "sides": {s: {"assigned": int((assignment[:, k] >= 0).sum())} for k, s in enumerate(sides)},
    }
    log.info(
        "mediapipe %s: a hand in %d/%d frames (%d by the detection fallback), %.0f ms per frame; %s",
        det.version, summary["frames_with_detection"], T, fallback, 1000 * summary["median_seconds_per_frame"],
        ", ".join(f"{s} {v['assigned']}/{T}" for s, v in summary["sides"].items()),
    )  # fmt: skip
    return path, summary
