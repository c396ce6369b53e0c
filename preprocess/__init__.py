"""Preprocessing: a video (RAW dir, docs/formats.md) → a SEQUENCE dir (docs/formats.md)."""

STEPS = ("frames", "hands", "masks", "sfm", "align", "build")
"""In order; ``hands`` precedes ``masks`` because the ``sam2`` and ``static`` mask backends prompt from it."""
