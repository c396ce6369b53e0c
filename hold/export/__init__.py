"""Export of a trained run (DESIGN.md §1, EXPORT dir): meshes, per-frame poses, renders, preview video.

Modules:
    ``config``   ExportConfig (``cfg.export`` of a run).
    ``final``    the final model of a RUN dir and what it reconstructs (joints, object poses).
    ``meshes``   canonical hand / object meshes by marching cubes and their posed copies per frame.
    ``raster``   a small z-buffer triangle rasteriser for mesh renders.
    ``renders``  neural renders of chosen frames, mesh overlays, the preview video.
    ``scene``    the ``scene.glb`` of one frame.
    ``export``   ``export_run``: everything above into an EXPORT dir.

Only the config is imported here: ``hold.config`` imports it, and the other modules import
``hold.config`` (through ``hold.system``).
"""

from __future__ import annotations

from hold.export.config import ExportConfig

__all__ = ["ExportConfig"]
