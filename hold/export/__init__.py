"""Export of a trained run (the EXPORT dir, docs/formats.md): meshes, per-frame poses, renders, preview video.

Modules:
    ``config``   ExportConfig (``cfg.export`` of a run).
    ``raster``   a small z-buffer triangle rasteriser for mesh renders.
    ``renders``  neural renders of chosen frames, mesh overlays, the preview video.
    ``scene``    the ``scene.glb`` of one frame.
    ``export``   ``export_run``: the final model's meshes (``hold.final``) and everything above into an
                 EXPORT dir.
"""
