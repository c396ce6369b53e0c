"""Stage 2: hand–object pose refinement with mesh-based terms (HOLD §3.3–3.4, plus interpenetration and
temporal smoothness from HOMan / HOnnotate).

- ``raster``: differentiable soft silhouettes (SoftRas-style, PyTorch; ``kaolin_raster``: DIB-R backend).
- ``geometry``, ``sdf_grid``: the object mesh from the stage-1 SDF, the hand's proxy mesh, SDF grids.
- ``targets``: occlusion-aware mask targets. ``losses``: the pure terms. ``terms``: the objective.
- ``scene``: the optimised values and the posed meshes. ``optimize``: HOLD's two-phase schedule.
- ``diagnostics``, ``overlay``: per-frame residuals and the before/after video. ``stage``: RUN/stage2/.
"""
