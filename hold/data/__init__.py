"""Sequence format, datasets and the synthetic generator."""
