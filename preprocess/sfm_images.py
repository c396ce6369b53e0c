"""The images SfM sees: each frame with every non-object pixel painted over, cropped and enlarged.

A held object covers a few thousand pixels of a frame; SIFT finds several times more features on it
when the image is enlarged. With known intrinsics each frame is cropped to its object-mask box plus a
margin and enlarged to ``upscale_to`` pixels (its own pinhole camera: the crop moves the principal
point, the enlargement scales it and the focal length); otherwise the whole frame is enlarged, so
that one shared camera can still be estimated. Frames without object pixels are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from hold.data.sequence import LABEL_OBJECT
from hold.utils.io import write_png
from preprocess.config import SfmConfig
from preprocess.frames import FramesInfo, load_frame
from preprocess.masks import load_mask


@dataclass
class SfmImages:
    """What ``object_only_images`` wrote.

    Attributes:
        image_dir: object-only images ``00000.png …`` (named by frame index).
        mask_dir: COLMAP feature masks ``<image name>.png`` (0 = no features).
        names: the image names, in frame order.
        frames: (N,) the frame index of each image.
        K: (N, 3, 3) intrinsics of each image (OpenCV pixel convention).
        cropped: each image has its own camera (crops) rather than one shared camera.
    """

    image_dir: Path
    mask_dir: Path
    names: list[str]
    frames: np.ndarray
    K: np.ndarray
    cropped: bool


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics of an image resized by (sx, sy) (pixel centres at integers)."""
    K = np.array(K, np.float64, copy=True)
    K[0, 0], K[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    K[0, 2], K[1, 2] = (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5
    return K


def crop_box(mask: np.ndarray, margin: float, min_part: float = 1.0) -> tuple[int, int, int, int]:
    """Square (x0, y0, x1, y1) around the box of the mask's largest component and of every component at
    least ``min_part`` × its size (the parts of an object that fingers cut in two; a segmenter's stray
    blobs, smaller, would blow the box up), enlarged by ``margin`` × its longer side on each side; may
    reach outside the image (the outside is painted like the background)."""
    components, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count > 1:
        sizes = np.bincount(components.ravel())[1:]
        mask = np.isin(components, np.flatnonzero(sizes >= min_part * sizes.max()) + 1)
    ys, xs = np.nonzero(mask)
    cx, cy = 0.5 * (xs.min() + xs.max() + 1), 0.5 * (ys.min() + ys.max() + 1)
    half = 0.5 * max(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) * (1 + 2 * margin)
    half = max(half, 8.0)
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def _crop(array: np.ndarray, box: tuple[int, int, int, int], fill: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    out = np.full((y1 - y0, x1 - x0, *array.shape[2:]), fill, array.dtype)
    H, W = array.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


def object_only_images(
    frames_dir: Path, masks_dir: Path, out: Path, info: FramesInfo, K: np.ndarray, crop: bool, cfg: SfmConfig
) -> SfmImages:
    """Write the SfM inputs (module docstring) and return where they are and their cameras.

    Feature masks are the object masks eroded by ``feature_mask_erode`` (fraction of the frame's
    longer side), so the painted silhouette gives no features.
    """
    image_dir, mask_dir = out / "images", out / "feature_masks"
    H, W = info.image_size
    radius = round(cfg.feature_mask_erode * max(H, W))
    erode = np.ones((2 * radius + 1,) * 2, bool) if radius > 0 else None
    names, frames, Ks = [], [], []
    for t in tqdm(range(info.num_frames), desc="sfm images", unit="frame", disable=None):
        obj = load_mask(masks_dir, t) == LABEL_OBJECT
        if not obj.any():
            continue
        rgb = load_frame(frames_dir, t).copy()
        rgb[~obj] = cfg.background_value
        inner = (ndimage.binary_erosion(obj, erode) if erode is not None else obj).astype(np.uint8) * 255
        K_t = np.array(K, np.float64, copy=True)
        if crop:
            box = crop_box(obj, cfg.crop_margin, cfg.crop_min_part)
            rgb, inner = _crop(rgb, box, cfg.background_value), _crop(inner, box, 0)
            K_t[0, 2] -= box[0]
            K_t[1, 2] -= box[1]
        h, w = inner.shape
        factor = max(1.0, cfg.upscale_to / max(h, w)) if cfg.upscale_to > 0 else 1.0
        if factor > 1:
            size = (round(w * factor), round(h * factor))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
            inner = np.asarray(Image.fromarray(inner).resize(size, Image.Resampling.NEAREST))
            K_t = scale_intrinsics(K_t, size[0] / w, size[1] / h)
        name = f"{t:05d}.png"
        write_png(image_dir / name, rgb)
        write_png(mask_dir / f"{name}.png", inner)
        names.append(name)
        frames.append(t)
        Ks.append(K_t)
    return SfmImages(
        image_dir, mask_dir, names, np.asarray(frames, np.int64), np.asarray(Ks).reshape(-1, 3, 3), crop
    )
