"""The final model of a RUN dir, loaded for inference, and the meshes it reconstructs.

``hold.eval`` (metrics of a run) and ``hold.export`` (meshes, renders, the scene) both read a run through
this package.
"""
