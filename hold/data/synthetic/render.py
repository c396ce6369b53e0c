"""Ray-cast rendering of labelled, textured meshes: RGB, exact label map and depth at any resolution.

Ray–triangle intersection is Embree's, through point-cloud-utils (``pcu.ray_mesh_intersection``);
this module only builds the rays, merges the meshes and shades the hits (Lambert + ambient).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import point_cloud_utils as pcu

from hold.data.synthetic.texture import Albedo

_UINT8_MAX = 255.0


@dataclass
class RenderMesh:
    """One surface of the scene in the camera frame of the frame being rendered."""

    vertices: np.ndarray  # (V, 3) camera frame, metres
    faces: np.ndarray  # (F, 3)
    label: int  # label-map value of its pixels
    albedo: Albedo  # colour lookup, evaluated in the mesh's own frame
    local_vertices: np.ndarray  # (V, 3) the same vertices in that frame (texture coordinates)


@dataclass
class RenderOutput:
    """One rendered frame."""

    rgb: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) uint8, label of the nearest surface at the pixel centre
    depth: np.ndarray  # (H, W) float32 z-depth in metres at the pixel centre, 0 where no surface


@dataclass
class Lighting:
    """A directional light plus ambient light; optionally an area light whose soft shadows the labelled
    meshes (hand, object) cast on the background."""

    direction: np.ndarray  # (3,) unit vector towards the light, camera frame
    ambient: float  # 0..1; the directional light adds up to 1 - ambient
    gain: float = 1.0  # overall intensity (a drifting light or exposure)
    shadow_dirs: np.ndarray | None = (
        None  # (S, 3) unit directions sampling the light's disc; None: no shadows
    )


def light_disc(direction: np.ndarray, radius_deg: float, samples: int) -> np.ndarray:
    """(samples, 3) unit directions spread evenly (a sunflower pattern) over a light disc of angular
    radius ``radius_deg`` around unit ``direction``: the same samples every frame, so the penumbra
    does not flicker."""
    k = np.arange(samples) + 0.5
    r = np.tan(np.deg2rad(radius_deg)) * np.sqrt(k / samples)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    e1 = np.cross(direction, [1.0, 0.0, 0.0] if abs(direction[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(direction, e1)
    d = direction + r[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def pixel_rays(K: np.ndarray, size: tuple[int, int], supersample: int = 1) -> np.ndarray:
    """Unit ray directions through pixel (sub-)samples; pixel (i, j) is centred at (i + 0.5, j + 0.5).

    Args:
        K: (3, 3) intrinsics.
        size: (H, W).
        supersample: s, giving s × s samples per pixel on a regular grid.

    Returns:
        (H, W, s*s, 3) unit directions in the camera frame.
    """
    H, W = size
    offsets = (np.arange(supersample) + 0.5) / supersample
    ou, ov = np.meshgrid(offsets, offsets, indexing="xy")
    u = np.arange(W)[None, :, None] + ou.ravel()[None, None]
    v = np.arange(H)[:, None, None] + ov.ravel()[None, None]
    u, v = np.broadcast_arrays(u, v)
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    d = np.stack([x, y, np.ones_like(x)], -1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flat, weights = faces.ravel(), np.repeat(face_n, 3, axis=0)
    n = np.stack([np.bincount(flat, weights[:, c], minlength=len(vertices)) for c in range(3)], 1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def ray_cast(
    vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest ray–triangle hits (Embree through point-cloud-utils).

    Args:
        vertices: (V, 3); faces (F, 3).
        origins: (N, 3) ray origins; directions (N, 3) unit directions.

    Returns:
        face ids (N,) (-1 for a miss), barycentric coordinates (N, 3), distances t (N,) (inf for a miss).
    """
    n = len(directions)
    # pcu 0.34 misses with a single ray given as (1, 3) arrays: always send at least two.
    pad = max(0, 2 - n)
    o = np.concatenate([origins, np.repeat(origins[:1], pad, 0)]).astype(np.float32)
    d = np.concatenate([directions, np.repeat(directions[:1], pad, 0)]).astype(np.float32)
    fid, bary, t = pcu.ray_mesh_intersection(
        np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.int32), o, d
    )
    fid = np.asarray(fid).reshape(-1)[:n]
    bary = np.asarray(bary, np.float64).reshape(-1, 3)[:n]
    t = np.where(fid >= 0, np.asarray(t, np.float64).reshape(-1)[:n], np.inf)
    return fid, bary, t


@dataclass
class Hits:
    """Nearest intersections of a batch of rays with the merged scene."""

    mesh: np.ndarray  # (N,) index of the mesh hit, -1 for a miss
    face: np.ndarray  # (N,) face index within that mesh
    bary: np.ndarray  # (N, 3) barycentric coordinates
    t: np.ndarray  # (N,) distance along the ray, inf for a miss


def cast(meshes: list[RenderMesh], directions: np.ndarray) -> Hits:
    """Nearest hit of rays from the camera centre (the origin) against all meshes at once.

    Args:
        meshes: the scene.
        directions: (N, 3) unit ray directions.
    """
    verts = np.concatenate([m.vertices for m in meshes])
    vert_offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    face_offsets = np.cumsum([0] + [len(m.faces) for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, vert_offsets[:-1])])
    fid, bary, t = ray_cast(verts, faces, np.zeros_like(directions), directions)
    hit = fid >= 0
    mesh = np.where(hit, np.searchsorted(face_offsets, fid, side="right") - 1, -1)
    face = np.where(hit, fid - face_offsets[np.maximum(mesh, 0)], 0)
    return Hits(mesh=mesh, face=face, bary=bary, t=t)


def light_visibility(casters: list[RenderMesh], points: np.ndarray, light: Lighting) -> np.ndarray:
    """(N,) share of the light's disc that ``points`` see past the ``casters`` (1 lit, 0 umbra)."""
    verts = np.concatenate([m.vertices for m in casters])
    offsets = np.cumsum([0] + [len(m.vertices) for m in casters])
    faces = np.concatenate([m.faces + o for m, o in zip(casters, offsets[:-1])])
    seen = np.zeros(len(points))
    for d in light.shadow_dirs:
        fid, _, _ = ray_cast(verts, faces, points, np.broadcast_to(d, points.shape))
        seen += fid < 0
    return seen / len(light.shadow_dirs)


def shade(meshes: list[RenderMesh], hits: Hits, directions: np.ndarray, light: Lighting) -> np.ndarray:
    """Lambert-shaded colour of each hit; black for misses. With ``light.shadow_dirs`` the labelled
    meshes shadow the background (label 0) ones.

    Returns:
        (N, 3) float RGB in [0, 1].
    """
    casters = [m for m in meshes if m.label != 0]
    rgb = np.zeros((len(hits.mesh), 3))
    for i, m in enumerate(meshes):
        sel = np.flatnonzero(hits.mesh == i)
        if len(sel) == 0:
            continue
        corners = m.faces[hits.face[sel]]  # (n, 3)
        bary = hits.bary[sel]
        local = np.einsum("nk,nkc->nc", bary, m.local_vertices[corners])
        normal = np.einsum("nk,nkc->nc", bary, vertex_normals(m.vertices, m.faces)[corners])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        # Face the viewer: shading must not depend on a user mesh's winding order.
        normal *= -np.sign((normal * directions[sel]).sum(1, keepdims=True) + 1e-12)
        lambert = np.clip(normal @ light.direction, 0.0, None)
        if light.shadow_dirs is not None and m.label == 0 and casters:
            lambert = lambert * light_visibility(casters, hits.t[sel, None] * directions[sel], light)
        albedo = m.albedo(hits.face[sel], bary, local)
        rgb[sel] = light.gain * albedo * (light.ambient + (1.0 - light.ambient) * lambert)[:, None]
    return np.clip(rgb, 0.0, 1.0)


def render(
    meshes: list[RenderMesh], K: np.ndarray, size: tuple[int, int], light: Lighting, supersample: int = 1
) -> RenderOutput:
    """Render one frame from a camera at the origin (OpenCV axes).

    Args:
        meshes: the scene, camera frame.
        K: (3, 3) intrinsics.
        size: (H, W).
        light: the lighting.
        supersample: s × s rays per pixel for the RGB image; labels and depth use the pixel centre.
    """
    H, W = size
    centre = pixel_rays(K, size, 1).reshape(-1, 3)
    hits = cast(meshes, centre)
    label_of_mesh = np.array([m.label for m in meshes] + [0], np.uint8)  # index -1 → background
    labels = label_of_mesh[hits.mesh].reshape(H, W)
    depth = np.where(np.isfinite(hits.t), hits.t * centre[:, 2], 0.0).reshape(H, W).astype(np.float32)
    if supersample == 1:
        rgb = shade(meshes, hits, centre, light).reshape(H, W, 3)
    else:
        rays = pixel_rays(K, size, supersample).reshape(-1, 3)
        rgb = shade(meshes, cast(meshes, rays), rays, light).reshape(H, W, supersample**2, 3).mean(2)
    return RenderOutput(rgb=np.round(rgb * _UINT8_MAX).astype(np.uint8), labels=labels, depth=depth)
