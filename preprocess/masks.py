"""Step ``masks``: per-frame label maps (docs/formats.md labels) from an external segmenter or SAM.

Backends: ``import`` reads RAW/masks/NNNNN.png (one per input frame), ``sam`` runs segment-anything
(``preprocess.sam``), ``sam2`` SAM 2's video predictor prompted from the hand (``preprocess.sam2_masks``),
``static`` background subtraction for a fixed camera (``preprocess.static_masks``). Both are followed by the same clean-up (small components, small holes) and the
same check that the object is visible in most frames. Output ``work/masks/``: ``00000.png …`` and
``masks.json``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage
from tqdm import tqdm

from hold.config.hand import HandConfig
from hold.data.sequence import (
    LABEL_BACKGROUND,
    LABEL_LEFT,
    LABEL_OBJECT,
    LABEL_RIGHT,
    LABEL_UNKNOWN,
    MASK_LABELS,
)
from hold.utils.io import write_json, write_png
from hold.utils.logging import get_logger
from preprocess.config import MasksConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo

STEP = "masks"
FOREGROUND_LABELS = (LABEL_OBJECT, LABEL_RIGHT, LABEL_LEFT)
_MASK_NAME = re.compile(r"^(\d+)\.png$")
_EIGHT = np.ones((3, 3), bool)
log = get_logger("preprocess.masks")


def clean_labels(labels: np.ndarray, min_component_fraction: float, max_hole_fraction: float) -> np.ndarray:
    """Remove small components and fill small holes of each foreground label.

    Components (8-connected) smaller than ``min_component_fraction`` × the label's largest component
    become unknown (255); background or unknown holes enclosed by a label and smaller than
    ``max_hole_fraction`` × its area take the label. Holes filled by another foreground label (a hand
    in front of the object) are left alone.

    Args:
        labels: (H, W) uint8 label map.
        min_component_fraction: relative size below which a component is spurious.
        max_hole_fraction: relative size below which a hole is filled.

    Returns:
        (H, W) uint8 cleaned label map.
    """
    out = labels.copy()
    for label in FOREGROUND_LABELS:
        region = labels == label
        if not region.any():
            continue
        comp, n = ndimage.label(region, structure=_EIGHT)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            small = np.flatnonzero(sizes < min_component_fraction * sizes.max()) + 1
            out[np.isin(comp, small)] = LABEL_UNKNOWN
        region = out == label
        holes = ndimage.binary_fill_holes(region) & ~region
        if holes.any():
            hole_comp, m = ndimage.label(holes)
            sizes = np.bincount(hole_comp.ravel())[1:]
            fillable = (out == LABEL_BACKGROUND) | (out == LABEL_UNKNOWN)
            for k in np.flatnonzero(sizes < max_hole_fraction * region.sum()) + 1:
                hole = hole_comp == k
                if fillable[hole].all():
                    out[hole] = label
    return out


def _mask_files(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if _MASK_NAME.match(p.name)), key=lambda p: int(p.stem))
    if not files:
        raise PreprocessError(STEP, "no masks named like 00000.png (backend 'import')", folder)
    for i, p in enumerate(files):
        if int(p.stem) != i:
            raise PreprocessError(
                STEP,
                f"masks must be numbered 00000, 00001, … without gaps; found {p.name} at position {i}",
                folder,
            )
    return files


def read_label_map(
    path: Path, size: tuple[int, int], input_size: tuple[int, int] | None = None
) -> np.ndarray:
    """A label map resized (nearest) to ``size`` (H, W), with its labels checked. With ``input_size``
    the map must have the input frames' size (it is resized like them), not any other."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise PreprocessError(
                    STEP, f"expected a single-channel uint8 label map, found mode {im.mode}", path
                )
            found = (im.height, im.width)
            if input_size is not None and found not in (tuple(input_size), tuple(size)):
                raise PreprocessError(
                    STEP, f"mask size (H, W) {found} differs from the frames' {tuple(input_size)}", path
                )
            if found != tuple(size):
                im = im.resize(size[::-1], Image.Resampling.NEAREST)
            labels = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise PreprocessError(STEP, f"unreadable mask ({e})", path) from None
    bad = sorted(set(np.unique(labels).tolist()) - set(MASK_LABELS))
    if bad:
        raise PreprocessError(
            STEP,
            f"undefined label(s) {bad}; labels: " + ", ".join(f"{k} {v}" for k, v in MASK_LABELS.items()),
            path,
        )
    return labels


def import_masks(raw: Path, info: FramesInfo) -> list[np.ndarray]:
    """RAW/masks/ label maps of the kept frames, at the output size.

    Raises:
        PreprocessError: no masks/, a count that differs from the frames, a bad file.
    """
    folder = raw / "masks"
    if not folder.is_dir():
        raise PreprocessError(
            STEP,
            "masks.backend=import needs RAW/masks/NNNNN.png (or use masks.backend=sam2, or static for a camera on a tripod)",
            folder,
        )
    files = _mask_files(folder)
    if len(files) != info.num_input_frames:
        raise PreprocessError(
            STEP,
            f"frame counts differ: {len(files)} masks but {info.num_input_frames} input frames in {Path(info.source).name}",
            folder,
        )
    return [
        read_label_map(files[i], info.image_size, info.input_size)
        for i in tqdm(info.source_indices, desc="masks", unit="frame", disable=None)
    ]


def run_masks(
    raw: Path,
    work: Path,
    out: Path,
    cfg: MasksConfig,
    hand_cfg: HandConfig | None = None,
    device: str = "cpu",
) -> dict:
    """Make, clean, check and write the label maps; returns the summary stored in ``done.json``.

    Args:
        raw: the RAW dir.
        work: ``SEQ/work`` with the finished ``frames`` (and, for ``sam2`` / ``static``, ``hands``) steps.
        out: this step's output dir.
        hand_cfg: the hand model of the ``hands`` step (``sam2`` / ``static``); None: the default.

    Raises:
        PreprocessError: missing inputs, or no object pixels in most frames.
    """
    frames_dir = work / "frames"
    info = FramesInfo.load(frames_dir / "frames.json")
    backend_report: dict = {}
    hand_cfg = hand_cfg or HandConfig()
    if cfg.backend == "import":
        masks = import_masks(raw, info)
    elif cfg.backend == "sam":
        from preprocess.sam import sam_masks

        masks = sam_masks(raw, frames_dir, info, cfg.sam, device)
    elif cfg.backend == "sam2":
        from preprocess.sam2_masks import sam2_masks

        masks, backend_report = sam2_masks(raw, frames_dir, work / "hands", info, cfg.sam2, hand_cfg, device)
    else:
        from preprocess.static_masks import mark_boundaries, static_masks

        masks, backend_report = static_masks(raw, frames_dir, work / "hands", info, cfg.static, hand_cfg)
    if cfg.cleanup:
        masks = [clean_labels(m, cfg.min_component_fraction, cfg.max_hole_fraction) for m in masks]
    if cfg.backend == "static":  # after the clean-up: a ring around every filled texture speck would stay
        masks = [mark_boundaries(m, cfg.static.border_px) for m in masks]
    fractions = np.array([(m == LABEL_OBJECT).mean() for m in masks])
    with_object = fractions >= cfg.min_object_fraction
    if with_object.mean() < cfg.min_frames_with_object:
        raise PreprocessError(
            STEP,
            f"no object pixels (label {LABEL_OBJECT}) in most frames: only {int(with_object.sum())} of {len(masks)} "
            f"frames have ≥ {cfg.min_object_fraction:.2%} object pixels; the object must be labelled "
            f"{LABEL_OBJECT} (see docs/formats.md)",
            raw / "masks" if cfg.backend == "import" else None,
        )
    for t, m in enumerate(masks):
        write_png(out / f"{t:05d}.png", m)
    summary = {
        "backend": cfg.backend,
        "frames_with_object": int(with_object.sum()),
        "object_fraction": [round(float(f), 6) for f in fractions],
        "hand_fraction": [round(float(np.isin(m, (LABEL_RIGHT, LABEL_LEFT)).mean()), 6) for m in masks],
        "unknown_fraction": [round(float((m == LABEL_UNKNOWN).mean()), 6) for m in masks],
    }
    if backend_report:
        summary[cfg.backend] = backend_report
    write_json(out / "masks.json", summary)
    log.info(
        "%d label maps (%s); the object is visible in %d", len(masks), cfg.backend, int(with_object.sum())
    )
    return {k: v for k, v in summary.items() if k in ("backend", "frames_with_object")}


def load_mask(masks_dir: Path, t: int) -> np.ndarray:
    """Label map t of a ``work/masks`` dir, uint8 (H, W)."""
    with Image.open(masks_dir / f"{t:05d}.png") as im:
        return np.asarray(im)
