"""Fake estimators for the mediapipe worker (imported by the tests and by their fake worker scripts)."""

from __future__ import annotations

import numpy as np

try:  # in a fake worker script (worker.py's folder first on sys.path): no package, so no torch import
    from worker import Detection
except ImportError:
    from preprocess.mediapipe.worker import Detection

H, W = 40, 60
"""Size of the test frames."""
FRAME_PIXEL = (12.0, 30.0)
"""(x, y) of every fake landmark in frame pixels."""


class FakeHands:
    """Stands in for mediapipe: one right hand (mediapipe's label "Left", score 0.9) at ``FRAME_PIXEL``.

    Like mediapipe it only sees the prepared image, so it normalises the landmarks to it, applying the
    worker's enlargement and border as the options describe them. The tracker (video mode) misses
    every frame whose red channel peaks at an odd value, so the detection fallback must find those.
    """

    def __init__(self, static: bool, options: dict) -> None:
        self.static, self.options = static, options

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        if not self.static and int(rgb[..., 0].max()) % 2 == 1:
            return []
        h, w = rgb.shape[:2]
        upscale = self.options["upscale_to"]
        scale = upscale / max(H, W) if upscale > max(H, W) else 1.0
        inner_w, inner_h = round(W * scale), round(H * scale)
        pad = (w - inner_w) // 2
        lm = np.zeros((21, 3))
        lm[:, 0] = (FRAME_PIXEL[0] * inner_w / W + pad) / w
        lm[:, 1] = (FRAME_PIXEL[1] * inner_h / H + pad) / h
        lm[:, 2] = np.linspace(0, 0.1, 21)
        world = np.tile([0.01, 0.02, 0.03], (21, 1)) + np.arange(21)[:, None] * 0.001
        return [Detection(landmarks=lm, world=world, label="Left", score=0.9)]

    def close(self) -> None:
        pass


class Broken(FakeHands):
    """An estimator that fails on the first frame."""

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        raise RuntimeError("estimator exploded")
