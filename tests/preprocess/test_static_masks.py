"""The ``static`` mask backend: background by recurring colour, shadows, boundaries, end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN, MASK_LABELS
from hold.data.synthetic.generate import generate
from hold.utils.io import write_png
from preprocess.config import StaticMasksConfig, load_preprocess_config
from preprocess.errors import PreprocessError
from preprocess.pipeline import run_pipeline
from preprocess.report import REPORT_JSON
from preprocess.static_masks import (
    background_from_clip,
    foreground,
    leave_guesses_unknown,
    mark_boundaries,
    temporal_mode,
)

STATIC_CLIP = {
    "num_frames": 10,
    "image_size": (96, 128),
    "background_style": "photo",
    "shadows": True,
    "shadow_samples": 4,
    "light_drift": 0.04,
    "image_noise": 0.01,
    "background_depth_factor": 1.5,
    "light_dir": (-0.3, -0.45, -1.0),
}


def _scene(T: int = 12, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a textured static background with a plain square that sits on the centre in most
    frames; returns frames (T, H, W, 3) and the true background."""
    rng = np.random.default_rng(seed)
    background = rng.uniform(0.2, 0.8, (size, size, 3)).astype(np.float32)
    frames = np.repeat(background[None], T, 0).copy()
    for t in range(T):
        x = 8 if t < T - 3 else 20  # the square leaves the centre only in the last three frames
        frames[t, 8:16, x : x + 8] = (0.1, 0.3, 0.9)
    return frames + rng.normal(0, 0.005, frames.shape).astype(np.float32), background


def test_plain_object_that_lingers_is_not_taken_for_background():
    frames, truth = _scene()
    cfg = StaticMasksConfig()
    none = np.zeros(frames.shape[:3], bool)
    mode, votes = temporal_mode(frames, none, cfg)
    assert np.allclose(mode[10, 10], (0.1, 0.3, 0.9), atol=0.02)  # over all frames the square wins
    near = none.copy()
    near[: len(frames) - 3, 6:18, 6:18] = True  # where the hand's reach allows the held object
    background = background_from_clip(frames, none, near, cfg)
    assert np.allclose(background[10, 10], truth[10, 10], atol=0.02)  # out of reach, the background wins
    near[:, 6:18, 6:18] = True
    assert np.isnan(background_from_clip(frames, none, near, cfg)[10, 10]).all()  # never out of reach


def test_a_lingering_shadow_votes_for_the_lit_background():
    frames, truth = _scene()
    frames[:8, 20:28, 20:28] *= 0.5  # a shadow over that corner in 8 of 12 frames
    mode, _ = temporal_mode(frames, np.zeros(frames.shape[:3], bool), StaticMasksConfig())
    assert np.allclose(mode[24, 24], truth[24, 24], atol=0.02)


def test_soft_shadows_are_background_and_objects_foreground():
    """A shadow with a penumbra (as area lights and the generator make) over a textured backdrop is
    background, shadow core and penumbra alike; a plain coloured object next to it is foreground."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:40, :40]
    background = (0.5 + 0.2 * np.sin(xx / 2.0)[..., None] * (0.8, 1.0, 0.9)).astype(np.float32)
    frame = background[None].copy()
    ring = np.maximum(np.abs(xx - 12), np.abs(yy - 12))
    frame[0] *= (1 - 0.45 * np.clip((10 - ring) / 5, 0, 1))[..., None]  # core 0.55, penumbra 5 px
    frame[0, 25:35, 25:35] = (0.9, 0.2, 0.1)
    frame += rng.normal(0, 0.003, frame.shape).astype(np.float32)
    fg, shadow, _, _ = foreground(frame, background, np.zeros((1, 40, 40), bool), StaticMasksConfig())
    assert not fg[0, :24, :24].any() and shadow[0, 7:18, 7:18].mean() > 0.85
    assert fg[0, 27:33, 27:33].all()


def test_boundaries_become_unknown():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:8, 2:8] = LABEL_OBJECT
    labels[4:6, 4:8] = LABEL_RIGHT
    out = mark_boundaries(labels, 1)
    assert out[0, 0] == LABEL_BACKGROUND and out[2, 2] == LABEL_UNKNOWN and out[1, 4] == LABEL_UNKNOWN
    assert out[4, 8] == LABEL_UNKNOWN  # hand next to background
    assert out[3, 3] == LABEL_UNKNOWN  # object next to hand (diagonal)
    assert np.array_equal(mark_boundaries(labels, 0), labels)


def test_never_seen_background_next_to_the_object_is_unknown():
    labels = np.zeros((12, 12), np.uint8)
    labels[4:8, 4:8] = LABEL_OBJECT
    unseen = np.zeros((12, 12), bool)
    unseen[:, :6] = True  # the left half's background was never seen: GrabCut guessed it
    out = labels.copy()
    count = leave_guesses_unknown(out, unseen, 2)
    assert out[5, 3] == LABEL_UNKNOWN and out[5, 2] == LABEL_UNKNOWN  # 1 and 2 px left of the object
    assert out[5, 1] == LABEL_BACKGROUND  # beyond the margin
    assert out[5, 9] == LABEL_BACKGROUND  # right of the object: background seen, kept
    assert np.array_equal(out[4:8, 4:8], labels[4:8, 4:8])  # the object is untouched
    assert count == int((out == LABEL_UNKNOWN).sum()) > 0
    assert leave_guesses_unknown(labels.copy(), unseen, 0) == 0


def test_static_needs_the_hands_step(tmp_path: Path):
    raw = tmp_path / "raw"
    write_png(raw / "frames" / "00000.png", np.zeros((8, 8, 3), np.uint8))
    cfg = load_preprocess_config(["masks.backend=static"])
    run_pipeline(raw, tmp_path / "seq", steps=["frames"], cfg=cfg)
    with pytest.raises(PreprocessError, match=r"needs the output of step 'hands'.*--steps hands,masks"):
        run_pipeline(raw, tmp_path / "seq", steps=["masks"], cfg=cfg)


@pytest.fixture(scope="module")
def static_clip(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("static") / "raw"
    generate(raw, preset="tiny", seed=3, overrides=STATIC_CLIP)
    return raw


@pytest.mark.slow
def test_static_backend_end_to_end(static_clip: Path, tmp_path: Path, caplog):
    """A static-camera clip with a photographic backdrop, soft shadows, lighting drift and noise: the
    labels match the exact ones and the backend says where it could not see the background."""
    seq = tmp_path / "seq"
    with caplog.at_level(logging.WARNING):
        run_pipeline(
            static_clip,
            seq,
            ["frames", "hands", "masks"],
            cfg=load_preprocess_config(["masks.backend=static"]),
        )
    summary = json.loads((seq / "work" / "masks" / "masks.json").read_text())
    report = summary["static"]
    assert report["background"] == "recurring colour" and 0.95 < report["gain_range"][0] < 1.0
    hand_ious = []
    for t in range(STATIC_CLIP["num_frames"]):
        pred = np.asarray(Image.open(seq / "work" / "masks" / f"{t:05d}.png"))
        gt = np.asarray(Image.open(static_clip / "synth" / "labels" / f"{t:05d}.png"))
        assert set(np.unique(pred).tolist()) <= set(MASK_LABELS)
        p, g = (pred == LABEL_RIGHT), (gt == LABEL_RIGHT) & (pred != LABEL_UNKNOWN)
        hand_ious.append((p & g).sum() / max((p | g).sum(), 1))
    assert np.median(_object_ious(seq, static_clip)) > 0.8 and np.median(hand_ious) > 0.9
    if report["never_uncovered_fraction"] > StaticMasksConfig().warn_unseen_fraction:
        assert "was never seen" in caplog.text
    page = {s["step"]: s for s in json.loads((seq / REPORT_JSON).read_text())["steps"]}["masks"]
    assert (
        "Background from the clip" in page["summary"]
        and page["numbers"]["static"]["background"] == "recurring colour"
    )
    assert page["warnings"] == report["warnings"]
    assert page["status"] == "warning" or not report["warnings"]


def _object_ious(seq: Path, raw: Path) -> list[float]:
    out = []
    for t in range(STATIC_CLIP["num_frames"]):
        pred = np.asarray(Image.open(seq / "work" / "masks" / f"{t:05d}.png"))
        gt = np.asarray(Image.open(raw / "synth" / "labels" / f"{t:05d}.png"))
        known = pred != LABEL_UNKNOWN
        p, g = (pred == LABEL_OBJECT) & known, (gt == LABEL_OBJECT) & known
        out.append((p & g).sum() / max((p | g).sum(), 1))
    return out


@pytest.mark.slow
def test_a_clean_plate_is_used_and_checked(static_clip: Path, tmp_path: Path):
    """A plate made of the frames' true background pixels (their median where any frame shows it)."""
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted((static_clip / "frames").glob("*.png"))])
    labels = np.stack(
        [np.asarray(Image.open(p)) for p in sorted((static_clip / "synth" / "labels").glob("*.png"))]
    )
    seen = np.where((labels == LABEL_BACKGROUND)[..., None], frames, np.nan)
    seen[:, (labels != LABEL_BACKGROUND).all(0)] = 128  # never shown in any frame
    plate = np.nanmedian(seen, axis=0)
    write_png(tmp_path / "plate.png", plate.astype(np.uint8))
    cfg = load_preprocess_config(
        ["masks.backend=static", f"masks.static.background={tmp_path / 'plate.png'}"]
    )
    run_pipeline(static_clip, tmp_path / "seq", ["frames", "hands", "masks"], cfg=cfg)
    report = json.loads((tmp_path / "seq" / "work" / "masks" / "masks.json").read_text())["static"]
    assert report["background"] == "clean plate" and report["never_uncovered_fraction"] == 0
    assert np.median(_object_ious(tmp_path / "seq", static_clip)) > 0.8
    cfg = load_preprocess_config(["masks.backend=static", f"masks.static.background={tmp_path / 'none.png'}"])
    with pytest.raises(PreprocessError, match="none.png: masks.static.background: no such image"):
        run_pipeline(static_clip, tmp_path / "seq", ["masks"], redo=True, cfg=cfg)
    (tmp_path / "bad.png").write_text("not an image")
    cfg = load_preprocess_config(["masks.backend=static", f"masks.static.background={tmp_path / 'bad.png'}"])
    with pytest.raises(PreprocessError, match="bad.png: unreadable clean plate"):
        run_pipeline(static_clip, tmp_path / "seq", ["masks"], redo=True, cfg=cfg)
    write_png(tmp_path / "tall.png", np.zeros((200, 100, 3), np.uint8))
    cfg = load_preprocess_config(["masks.backend=static", f"masks.static.background={tmp_path / 'tall.png'}"])
    with pytest.raises(
        PreprocessError, match=r"tall.png: the clean plate is 100×200, not the frames' aspect"
    ):
        run_pipeline(static_clip, tmp_path / "seq", ["masks"], redo=True, cfg=cfg)
