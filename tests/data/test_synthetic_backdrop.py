"""The generator's static-camera scenes: photographic backdrop, soft shadows, lighting drift, noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from hold.data.synthetic.generate import generate

BASE = {
    "num_frames": 4,
    "image_size": (64, 80),
    "background_style": "photo",
    "shadow_samples": 4,
    "background_depth_factor": 1.5,
    "light_dir": (-0.3, -0.45, -1.0),
}
VARIANTS = {
    "plain": {},
    "shadows": {"shadows": True},
    "shadows_again": {"shadows": True},
    "drift_noise": {"light_drift": 0.2, "image_noise": 0.02},
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("backdrop")
    for name, extra in VARIANTS.items():
        generate(root / name, preset="tiny", seed=4, overrides={**BASE, **extra})
    return root


def _load(root: Path, clip: str, sub: str, t: int) -> np.ndarray:
    return np.asarray(Image.open(root / clip / sub / f"{t:05d}.png")).astype(np.float64)


def test_shadows_darken_only_the_background_and_keep_the_labels(clips: Path):
    for t in range(BASE["num_frames"]):
        plain, shaded = _load(clips, "plain", "frames", t), _load(clips, "shadows", "frames", t)
        labels = _load(clips, "plain", "synth/labels", t)
        assert np.array_equal(labels, _load(clips, "shadows", "synth/labels", t))
        assert np.array_equal(shaded, _load(clips, "shadows_again", "frames", t))  # deterministic
        change = (shaded - plain).mean(-1)
        background = labels == 0
        assert 0.01 < (change[background] < -5).mean() < 0.5  # a shadow, not a blackout
        assert (change <= 0).all() and (change[~background] == 0).all()


def test_lighting_drifts_over_the_clip_and_noise_is_per_frame(clips: Path):
    ratios, residuals = [], []
    for t in range(BASE["num_frames"]):
        plain, drifted = _load(clips, "plain", "frames", t), _load(clips, "drift_noise", "frames", t)
        lit = (plain > 30) & (plain < 220)  # away from clipping
        ratios.append(np.median(drifted[lit] / plain[lit]))
        residuals.append(drifted - plain * ratios[-1])
    assert max(ratios) - min(ratios) > 0.05  # a 20 % drift over the clip
    noise = np.median([np.std(r) for r in residuals]) / 255
    assert 0.01 < noise < 0.04
    assert not np.allclose(residuals[0], residuals[1], atol=1)  # fresh noise in every frame


def test_a_static_camera_clip_comes_with_a_clean_plate(clips: Path):
    """synth/background.png is the scene without hand and object: the frames' background pixels."""
    plate = np.asarray(Image.open(clips / "plain" / "synth" / "background.png")).astype(np.float64)
    for t in range(BASE["num_frames"]):
        frame = _load(clips, "plain", "frames", t)
        background = ndimage.binary_erosion(_load(clips, "plain", "synth/labels", t) == 0, iterations=2)
        assert plate.shape == frame.shape and np.abs(plate - frame)[background].max() <= 1
