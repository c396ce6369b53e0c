"""``scene.glb``: one frame's posed hand and object meshes for a browser glTF viewer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from hold.utils.io import atomic_open

OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])
"""OpenCV camera axes (x right, y down, z forward) → glTF's (x right, y up, z towards the viewer)."""


@dataclass
class SceneMesh:
    """One named mesh of the scene, camera frame (OpenCV axes), metres.

    Attributes:
        name: node name shown by viewers (``object``, ``hand_right`` …).
        vertices: (V, 3). faces: (F, 3).
        colors: (V, 3) uint8 vertex colours, or (3,) uint8 one colour for the whole mesh.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray


def write_scene(path: Path, meshes: list[SceneMesh]) -> Path:
    """Write the meshes as a binary glTF scene (axes converted to glTF's y-up convention), atomically."""
    scene = trimesh.Scene()
    for m in meshes:
        colors = np.asarray(m.colors, np.uint8)
        if colors.ndim == 1:
            colors = np.broadcast_to(colors, (len(m.vertices), 3))
        rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
        mesh = trimesh.Trimesh(
            np.asarray(m.vertices, np.float64) @ OPENCV_TO_GLTF.T,
            np.asarray(m.faces),
            vertex_colors=rgba,
            process=False,
        )
        scene.add_geometry(mesh, node_name=m.name, geom_name=m.name)
    data = scene.export(file_type="glb")
    with atomic_open(path, "wb") as f:
        f.write(data)
    return path
