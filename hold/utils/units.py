"""Unit conversions of the reported numbers (lengths are metres everywhere inside the project)."""

M_TO_MM = 1e3
"""Metres → millimetres (MPJPE, translation errors, F-score thresholds)."""
M2_TO_CM2 = 1e4
"""Square metres → square centimetres (Chamfer distances, as HOLD reports them)."""
