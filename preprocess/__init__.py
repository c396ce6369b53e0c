"""Preprocessing: a video (RAW dir, DESIGN.md §4) → a SEQUENCE dir (DESIGN.md §3)."""

STEPS = ("frames", "masks", "hands", "sfm", "align", "build")
