"""The ``mediapipe`` backend of step ``hands`` (mediapipe 0.10.21's bundled hand tracker).

``driver`` runs ``worker`` in the separate environment made by ``make mediapipe-env``; ``tracks`` turns
the per-frame detections into right/left hands; ``backend`` writes them as a RAW hands.npz (docs/formats.md) for the hand fitting. Nothing here imports mediapipe.
"""

from __future__ import annotations

from preprocess.mediapipe.backend import estimate_hands
from preprocess.mediapipe.driver import MAKE_COMMAND, environment_ready, mediapipe_python

__all__ = ["MAKE_COMMAND", "environment_ready", "estimate_hands", "mediapipe_python"]
