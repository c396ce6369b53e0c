"""Evaluation of hand and object reconstructions: MPJPE, CD, F-score, CD_h, object scale and pose errors.

HOLD §4, docs/evaluation.md.
"""
