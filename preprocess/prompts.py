"""Prompt files of the segment-anything mask backends (RAW/prompts.json, docs/formats.md).

In pixels and frame numbers of the input video (before ``frames.stride`` / ``max_size``)::

    {"object": {"box": [x0, y0, x1, y1]},                          # frame 0
     "right":  [{"frame": 0, "points": [[x, y], [x, y]], "labels": [1, 0]},
                {"frame": 40, "box": [x0, y0, x1, y1]}]}

A target (``object``, ``right``, ``left``) holds one prompt or a list of them; each prompt has points
(labels 1 foreground, 0 background; all 1 when omitted), a box, or both, and a ``frame`` (default 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo

STEP = "masks"
TARGETS = ("object", "right", "left")
_KEYS = {"frame", "points", "labels", "box"}


@dataclass
class Prompt:
    """Prompts of one target on one frame, in output pixels."""

    points: np.ndarray | None = None  # (N, 2) x, y
    labels: np.ndarray | None = None  # (N,) 1 foreground, 0 background
    box: np.ndarray | None = None  # (4,) x0, y0, x1, y1
    logits: np.ndarray | None = None  # (1, 256, 256) previous low-resolution logits (segment-anything v1)


def read_prompts(path: Path, info: FramesInfo) -> dict[str, dict[int, Prompt]]:
    """Every prompt of the file, by target and output frame index, mapped to output pixels.

    Raises:
        PreprocessError: a missing file, invalid JSON, or a malformed entry (naming the target, the
            entry and the problem).
    """
    if not path.is_file():
        raise PreprocessError(STEP, "prompt file not found", path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PreprocessError(STEP, f"not valid JSON ({e})", path) from None
    if not isinstance(data, dict):
        raise PreprocessError(STEP, 'expected a JSON object like {"object": {"box": [x0, y0, x1, y1]}}', path)
    unknown = sorted(set(data) - set(TARGETS))
    if unknown:
        raise PreprocessError(STEP, f"unknown target(s) {unknown}; targets are {list(TARGETS)}", path)
    kept = {int(s): t for t, s in enumerate(info.source_indices)}
    out: dict[str, dict[int, Prompt]] = {}
    for target, entries in data.items():
        entries = entries if isinstance(entries, list) else [entries]
        out[target] = {}
        for k, entry in enumerate(entries):
            where = f"'{target}'" + (f" entry {k}" if len(entries) > 1 else "")
            frame, prompt = _parse(entry, where, path, info)
            if frame not in kept:
                raise PreprocessError(
                    STEP,
                    f"{where}: frame {frame} is not one of the {info.num_frames} input frames kept "
                    f"({_ranges(info.source_indices)}; frames.stride and frames.max_frames choose them)",
                    path,
                )
            if kept[frame] in out[target]:
                raise PreprocessError(STEP, f"{where}: a second prompt for frame {frame}", path)
            out[target][kept[frame]] = prompt
    return out


def _ranges(indices: list[int]) -> str:
    if len(indices) <= 6:
        return ", ".join(map(str, indices))
    return f"{indices[0]}, {indices[1]}, …, {indices[-1]}"


def _parse(entry: object, where: str, path: Path, info: FramesInfo) -> tuple[int, Prompt]:
    if not isinstance(entry, dict):
        raise PreprocessError(STEP, f"{where}: expected an object with points, box and frame", path)
    extra = sorted(set(entry) - _KEYS)
    if extra:
        raise PreprocessError(STEP, f"{where}: unknown key(s) {extra}; keys are {sorted(_KEYS)}", path)
    frame = entry.get("frame", 0)
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
        raise PreprocessError(
            STEP, f"{where}: frame must be an input frame number ≥ 0, found {frame!r}", path
        )
    try:
        points = np.asarray(entry["points"], float).reshape(-1, 2) if "points" in entry else None
        labels = np.asarray(entry.get("labels", [1] * (0 if points is None else len(points))), int).reshape(
            -1
        )
        box = np.asarray(entry["box"], float).reshape(4) if "box" in entry else None
    except (TypeError, ValueError) as e:
        raise PreprocessError(
            STEP, f"{where}: points must be [[x, y], …], labels [1, 0, …], box [x0, y0, x1, y1] ({e})", path
        ) from None
    if points is None and box is None:
        raise PreprocessError(STEP, f"{where}: give 'points', 'box' or both", path)
    if points is not None and len(labels) != len(points):
        raise PreprocessError(STEP, f"{where}: {len(points)} points but {len(labels)} labels", path)
    if not set(labels.tolist()) <= {0, 1}:
        raise PreprocessError(STEP, f"{where}: labels must be 1 (foreground) or 0 (background)", path)
    if box is not None and not (box[0] < box[2] and box[1] < box[3]):
        raise PreprocessError(STEP, f"{where}: box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1", path)
    H, W = info.input_size
    coords = [c for c in (points, None if box is None else box.reshape(2, 2)) if c is not None]
    if any(((c < -0.5) | (c > [W - 0.5, H - 0.5])).any() for c in coords):
        raise PreprocessError(
            STEP, f"{where}: a point or box corner lies outside the {W}×{H} input frame", path
        )
    return frame, Prompt(
        points=None if points is None else info.map_pixels(points),
        labels=None if points is None else labels,
        box=None if box is None else info.map_pixels(box.reshape(2, 2)).reshape(4),
    )
