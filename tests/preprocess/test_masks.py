from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hold.utils.io import write_png
from preprocess.config import FramesConfig, MasksConfig
from preprocess.errors import PreprocessError
from preprocess.frames import run_frames
from preprocess.masks import clean_labels, load_mask, run_masks


def test_clean_labels_removes_blobs_and_fills_small_holes():
    labels = np.zeros((40, 40), np.uint8)
    labels[5:25, 5:25] = 1  # object
    labels[12:14, 12:14] = 0  # small hole: filled
    labels[15:20, 15:20] = 2  # a hand in front of the object: not a hole to fill
    labels[35:37, 35:37] = 1  # spurious blob: unknown
    labels[30:38, 2:10] = 2  # hand
    out = clean_labels(labels, min_component_fraction=0.1, max_hole_fraction=0.05)
    assert (out[12:14, 12:14] == 1).all()
    assert (out[15:20, 15:20] == 2).all()
    assert (out[35:37, 35:37] == 255).all()
    assert (out[30:38, 2:10] == 2).all()


def _raw(root: Path, n_frames: int, n_masks: int, object_frames: int) -> None:
    for i in range(n_frames):
        write_png(root / "frames" / f"{i:05d}.png", np.full((16, 16, 3), 128, np.uint8))
    for i in range(n_masks):
        m = np.zeros((16, 16), np.uint8)
        if i < object_frames:
            m[4:12, 4:12] = 1
        write_png(root / "masks" / f"{i:05d}.png", m)


def test_import_follows_the_frame_stride(tmp_path: Path):
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw, 6, 6, 6)
    write_png(raw / "masks" / "00002.png", np.full((16, 16), 2, np.uint8))  # mark input frame 2
    run_frames(raw, work / "frames", FramesConfig(stride=2))
    summary = run_masks(raw, work, work / "masks", MasksConfig())
    assert summary["frames_with_object"] == 2  # kept frames 0, 2, 4; frame 2 is all hand
    assert (load_mask(work / "masks", 1) == 2).all()


def test_mask_count_must_match_frames(tmp_path: Path):
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw, 5, 4, 4)
    run_frames(raw, work / "frames", FramesConfig())
    with pytest.raises(PreprocessError, match="frame counts differ: 4 masks but 5 input frames"):
        run_masks(raw, work, work / "masks", MasksConfig())


def test_no_object_in_most_frames_is_an_error(tmp_path: Path):
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw, 5, 5, 1)
    run_frames(raw, work / "frames", FramesConfig())
    with pytest.raises(PreprocessError, match="no object pixels .* only 1 of 5 frames"):
        run_masks(raw, work, work / "masks", MasksConfig())


def test_undefined_labels_are_an_error(tmp_path: Path):
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw, 2, 2, 2)
    write_png(raw / "masks" / "00001.png", np.full((16, 16), 7, np.uint8))
    run_frames(raw, work / "frames", FramesConfig())
    with pytest.raises(PreprocessError, match=r"00001.png: undefined label\(s\) \[7\]"):
        run_masks(raw, work, work / "masks", MasksConfig())


def test_masks_of_another_size_than_the_frames_are_an_error(tmp_path: Path):
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw, 2, 2, 2)
    write_png(raw / "masks" / "00001.png", np.full((16, 20), 1, np.uint8))  # frames are 16×16
    run_frames(raw, work / "frames", FramesConfig())
    with pytest.raises(
        PreprocessError, match=r"00001.png: mask size \(H, W\) \(16, 20\) differs from the frames' \(16, 16\)"
    ):
        run_masks(raw, work, work / "masks", MasksConfig())
