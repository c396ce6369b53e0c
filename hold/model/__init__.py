"""HOLD-Net: hand, object and background nodes with per-frame parameters (HOLD §3.2)."""
