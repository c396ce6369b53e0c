"""Before/after overlay video of the pose refinement: silhouettes tinted over the input frames.

Each frame shows two panels, the stage-1 poses and the refined poses: hand silhouettes in blue, the
object in magenta, and the outlines of the input masks in white, so a misfit is visible at a glance.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from hold.data.sequence import Sequence
from hold.params import FrameParams
from hold.refine.diagnostics import silhouette_chunks
from hold.refine.terms import RefineProblem
from hold.utils.io import atomic_open

HAND_COLOR = np.array([60, 120, 255], np.float32)
OBJECT_COLOR = np.array([255, 0, 200], np.float32)
ALPHA = 0.5


@torch.no_grad()
def silhouette_masks(
    params: FrameParams, problem: RefineProblem, chunk: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Binary silhouettes (T, h, w) of the object and of all hands for the values in ``params``."""
    obj, hand = [], []
    for _, _, sil_o, sil_h in silhouette_chunks(params, problem, chunk):
        obj.append((sil_o > 0.5).cpu().numpy())
        hand.append(np.any([(s > 0.5).cpu().numpy() for s in sil_h.values()], axis=0))
    return np.concatenate(obj), np.concatenate(hand)


def _resize(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size[::-1], Image.NEAREST)) > 127


def _panel(
    image: np.ndarray, obj: np.ndarray, hand: np.ndarray, outline: np.ndarray, label: str
) -> np.ndarray:
    out = image.astype(np.float32)
    for mask, color in ((obj, OBJECT_COLOR), (hand, HAND_COLOR)):
        out[mask] = (1 - ALPHA) * out[mask] + ALPHA * color
    out[outline] = 255.0
    im = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(im).text((4, 2), label, fill=(255, 255, 255))
    return np.asarray(im)


def overlay_frames(
    seq: Sequence,
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
    height: int,
) -> list[np.ndarray]:
    """Side-by-side panels per frame.

    Args:
        seq: the sequence (images and masks).
        before, after: (object, hand) silhouettes (T, h, w) bool of the two pose sets.
        height: panel height in pixels.
    """
    H, W = seq.image_size
    size = (height, max(1, round(W * height / H)))
    frames = []
    for t in range(seq.num_frames):
        image = np.asarray(Image.fromarray(seq.load_image(t)).resize(size[::-1], Image.BILINEAR))
        labels = np.asarray(Image.fromarray(seq.load_mask(t)).resize(size[::-1], Image.NEAREST))
        fg = (labels != 0) & (labels != 255)
        outline = np.zeros(size, bool)
        for value in np.unique(labels[fg]):
            m = labels == value
            outline |= m ^ ndimage.binary_erosion(m)
        panels = [
            _panel(image, _resize(o[t], size), _resize(h[t], size), outline, name)
            for (o, h), name in ((before, f"{t:05d} stage 1"), (after, f"{t:05d} refined"))
        ]
        frames.append(np.concatenate(panels, axis=1))
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write frames as an animated GIF or an MP4 (by the suffix), atomically."""
    if path.suffix == ".gif":
        data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
    else:
        data = iio.imwrite("<bytes>", np.stack(frames), extension=path.suffix, fps=fps)
    with atomic_open(path, "wb") as f:
        f.write(data)
    return path
