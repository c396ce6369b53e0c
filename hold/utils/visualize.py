"""Image panels for people: training renders side by side, label maps in colour."""

from __future__ import annotations

import numpy as np

# background, object, right hand, left hand (docs/formats.md labels 0–3)
CLASS_COLORS = np.array([[40, 40, 40], [230, 160, 40], [60, 140, 230], [90, 200, 120]], np.uint8)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] (H, W) or (H, W, C) → uint8 (H, W, 3)."""
    image = np.clip(np.nan_to_num(image), 0.0, 1.0)
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=-1)
    return (image * 255 + 0.5).astype(np.uint8)


def label_colors(labels: np.ndarray) -> np.ndarray:
    """(H, W) labels 0–3 (255 unknown → white) → (H, W, 3) uint8."""
    out = np.full((*labels.shape, 3), 255, np.uint8)
    known = labels < len(CLASS_COLORS)
    out[known] = CLASS_COLORS[labels[known]]
    return out


def render_panel(frame: dict[str, np.ndarray]) -> np.ndarray:
    """GT | render | normals | instance map | amodal mask per node, side by side.

    Args:
        frame: ``gt`` and ``rgb`` (h, w, 3), ``normal`` (h, w, 3) in [-1, 1], ``class_probs`` (h, w, 4),
            ``amodal`` (h, w, N).
    """
    tiles = [
        to_uint8(frame["gt"]),
        to_uint8(frame["rgb"]),
        to_uint8((frame["normal"] + 1.0) / 2.0),
        label_colors(frame["class_probs"].argmax(-1)),
    ]
    tiles += [to_uint8(frame["amodal"][..., i]) for i in range(frame["amodal"].shape[-1])]
    return np.concatenate(tiles, axis=1)
