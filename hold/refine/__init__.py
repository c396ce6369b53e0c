"""Stage 2: pose refinement with mesh-based terms (HOLD §3.3–3.4)."""
