"""Preprocessing: a video (RAW dir, docs/formats.md) → a SEQUENCE dir (docs/formats.md)."""

STEPS = ("frames", "masks", "hands", "sfm", "align", "build")
