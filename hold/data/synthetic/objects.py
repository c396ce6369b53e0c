"""Objects to grasp: procedural shapes (analytic SDF → marching cubes) and user meshes.

Every object lives in its own frame, in metres, centred on its bounding-box centre, with +y its "up"
axis (the axis a bottle or mug stands on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from skimage.measure import marching_cubes

from hold.data.synthetic.config import SynthConfig
from hold.data.synthetic.texture import (
    Albedo,
    ProceduralAlbedo,
    ProceduralTexture,
    UVImageAlbedo,
    VertexColorAlbedo,
    albedo_at_vertices,
)

SdfFn = Callable[[np.ndarray], np.ndarray]  # (N, 3) points → (N,) signed distance, negative inside
_PAD_VOXELS = 2  # empty voxels around the shape's box so marching cubes closes every surface
_TEXTURE_SAMPLES = 20000  # surface samples that seed the texture's balls and marks
_UINT8_MAX = 255.0


@dataclass
class ObjectModel:
    """A textured object mesh in its own frame (metres, centred on its bounding box)."""

    name: str
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64
    albedo: Albedo
    wrap_axis: np.ndarray  # (3,) unit; a grasping hand's fingers curl around it
    approach: np.ndarray  # (3,) unit, orthogonal to wrap_axis; the palm comes from this side

    @property
    def radius(self) -> float:
        """Bounding radius about the frame origin, metres."""
        return float(np.linalg.norm(self.vertices, axis=1).max())

    def vertex_colors(self) -> np.ndarray:
        """(V, 3) uint8 colours of the vertices."""
        rgb = albedo_at_vertices(self.albedo, self.vertices, self.faces)
        return np.round(np.clip(rgb, 0, 1) * _UINT8_MAX).astype(np.uint8)

    def to_ply(self) -> bytes:
        """Binary PLY with vertex colours (the GT ``object.ply``)."""
        mesh = trimesh.Trimesh(self.vertices, self.faces, vertex_colors=self.vertex_colors(), process=False)
        return mesh.export(file_type="ply", encoding="binary")


# --------------------------------------------------------------------------------- analytic SDF pieces


def _capped_cylinder(p: np.ndarray, radius: float, y0: float, y1: float, rounding: float = 0.0) -> np.ndarray:
    """Cylinder about the y axis from y0 to y1, edges rounded by ``rounding``."""
    r, h = radius - rounding, 0.5 * (y1 - y0) - rounding
    d = np.stack([np.hypot(p[:, 0], p[:, 2]) - r, np.abs(p[:, 1] - 0.5 * (y0 + y1)) - h], -1)
    return np.minimum(d.max(1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=1) - rounding


def _round_box(p: np.ndarray, half: tuple[float, float, float], rounding: float) -> np.ndarray:
    q = np.abs(p) - (np.asarray(half) - rounding)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(1), 0.0) - rounding


def _smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: blends two shapes with a fillet of size ~k."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _bottle(p: np.ndarray) -> np.ndarray:
    body = _capped_cylinder(p, 0.032, -0.10, 0.03, rounding=0.006)
    neck = _capped_cylinder(p, 0.013, 0.0, 0.09, rounding=0.003)
    cap = _capped_cylinder(p, 0.015, 0.075, 0.10, rounding=0.002)
    return np.minimum(_smooth_union(body, neck, 0.025), cap)


def _can(p: np.ndarray) -> np.ndarray:
    return _capped_cylinder(p, 0.033, -0.06, 0.06, rounding=0.005)


def _box(p: np.ndarray) -> np.ndarray:
    return _round_box(p, (0.03, 0.065, 0.045), rounding=0.004)


def _mug(p: np.ndarray) -> np.ndarray:
    outer = _capped_cylinder(p, 0.04, -0.048, 0.048, rounding=0.003)
    inner = _capped_cylinder(p, 0.035, -0.041, 0.06, rounding=0.003)
    cup = np.maximum(outer, -inner)
    # Handle: a torus about the z axis, centred beside the cup wall, outer half only.
    major, minor, cx = 0.027, 0.0065, 0.042
    q = np.stack([np.hypot(p[:, 0] - cx, p[:, 1]) - major, p[:, 2]], -1)
    handle = np.maximum(np.linalg.norm(q, axis=1) - minor, 0.038 - p[:, 0])
    return _smooth_union(cup, handle, 0.004)


def _banana(p: np.ndarray) -> np.ndarray:
    """A tapered tube bent along a circular arc (clearly non-convex)."""
    bend, half_angle, r_mid, r_end = 0.11, np.deg2rad(55.0), 0.024, 0.013
    centre = np.array([0.0, -bend, 0.0])  # the arc's centre; the arc passes through the origin
    d = p - centre
    angle = np.clip(np.arctan2(d[:, 0], d[:, 1]), -half_angle, half_angle)
    nearest = centre + bend * np.stack([np.sin(angle), np.cos(angle), np.zeros_like(angle)], -1)
    radius = r_end + (r_mid - r_end) * np.cos(0.5 * np.pi * angle / half_angle)
    return np.linalg.norm(p - nearest, axis=1) - radius


def _extrude(d2: np.ndarray, z: np.ndarray, half_thickness: float, rounding: float) -> np.ndarray:
    """Extrude a 2D signed distance ``d2`` (in the xy plane) along z, edges rounded by ``rounding``."""
    w = np.stack([d2 + rounding, np.abs(z) - (half_thickness - rounding)], -1)
    return np.minimum(w.max(1), 0.0) + np.linalg.norm(np.maximum(w, 0.0), axis=1) - rounding


def _round_rect(x: np.ndarray, y: np.ndarray, half: tuple[float, float], radius: float) -> np.ndarray:
    """2D signed distance of a rectangle with corners rounded by ``radius``."""
    q = np.stack([np.abs(x) - (half[0] - radius), np.abs(y) - (half[1] - radius)], -1)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(1), 0.0) - radius


def _knife(p: np.ndarray) -> np.ndarray:
    """A 10 cm blade, 2.5 mm thick, along +x (edge down, rising to the tip) on a 12 cm handle along −x.

    The handle is the longer part, so a grasp centred on the knife holds the handle with the index
    finger and thumb at the blade's heel (the usual pinch grip).
    """
    heel_x, tip_x, handle_end = 0.01, 0.11, -0.11
    handle_half = (0.5 * (heel_x - handle_end), 0.011, 0.0095)
    handle = _round_box(p - [0.5 * (heel_x + handle_end), 0.0, 0.0], handle_half, rounding=0.007)
    # Blade outline in the xy plane: a straight spine, an edge arc rising from the heel to the tip.
    spine, heel = 0.01, -0.019
    length = tip_x - heel_x
    arc = (length**2 + (spine - heel) ** 2) / (2 * (spine - heel))  # through the heel's foot and the tip
    x = p[:, 0] - heel_x
    outline = np.maximum.reduce([p[:, 1] - spine, np.hypot(x, p[:, 1] - heel - arc) - arc, -x - 0.004])
    blade = _extrude(outline, p[:, 2], 0.00125, rounding=0.0004)
    return _smooth_union(handle, blade, 0.002)


def _card(p: np.ndarray) -> np.ndarray:
    """An ID-1 card (85.6 × 54 mm, corners rounded 3 mm), 3 mm thick so fingertips can pinch it."""
    return _extrude(_round_rect(p[:, 0], p[:, 1], (0.0428, 0.027), 0.003), p[:, 2], 0.0015, 0.0008)


def _marker(p: np.ndarray) -> np.ndarray:
    """A 13 cm marker pen, 18 mm across, with a slightly wider cap and a pocket clip at the top."""
    barrel = _capped_cylinder(p, 0.009, -0.065, 0.035, rounding=0.003)
    cap = _capped_cylinder(p, 0.0098, 0.018, 0.065, rounding=0.004)
    clip = _round_box(p - [0.0, 0.043, 0.0113], (0.0025, 0.019, 0.0018), rounding=0.0008)
    return np.minimum(barrel, _smooth_union(cap, clip, 0.002))


def _die(p: np.ndarray) -> np.ndarray:
    """A 30 mm die with rounded edges (small: it stays small in the frame)."""
    return _round_box(p, (0.015, 0.015, 0.015), rounding=0.004)


def _pear(p: np.ndarray) -> np.ndarray:
    """Two spheres blended by a wide smooth union (a waist), with a short stem on top."""
    body = np.linalg.norm(p - [0.0, -0.022, 0.0], axis=1) - 0.034
    top = np.linalg.norm(p - [0.0, 0.024, 0.0], axis=1) - 0.021
    stem = _capped_cylinder(p - [0.002, 0.0, 0.0], 0.003, 0.035, 0.056, rounding=0.0015)
    return _smooth_union(_smooth_union(body, top, 0.03), stem, 0.004)


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Shape:
    """A procedural shape: its SDF, a box that contains it and how a hand holds it."""

    sdf: SdfFn
    half_extent: tuple[float, float, float]  # metres, about the origin
    wrap_axis: tuple[float, float, float]  # the fingers curl around it; the thumb points along it
    approach: tuple[float, float, float]  # the palm comes from this side
    max_voxel_m: float = np.inf  # marching-cubes voxel cap: finer than the thinnest part (blade, card)


SHAPES: dict[str, Shape] = {
    "bottle": Shape(_bottle, (0.04, 0.11, 0.04), wrap_axis=_Y, approach=_X),
    "box": Shape(_box, (0.035, 0.07, 0.05), wrap_axis=_Y, approach=_Z),
    "can": Shape(_can, (0.04, 0.065, 0.04), wrap_axis=_Y, approach=_X),
    "mug": Shape(_mug, (0.085, 0.055, 0.045), wrap_axis=_Y, approach=(-1.0, 0.0, 0.0)),
    "banana": Shape(_banana, (0.115, 0.075, 0.03), wrap_axis=_X, approach=_Y),
    "knife": Shape(_knife, (0.112, 0.0205, 0.0105), wrap_axis=_X, approach=_Z, max_voxel_m=0.001),
    "card": Shape(_card, (0.0438, 0.028, 0.0025), wrap_axis=_X, approach=_Z, max_voxel_m=0.001),
    "marker": Shape(_marker, (0.0135, 0.066, 0.0145), wrap_axis=_Y, approach=_X),
    "die": Shape(_die, (0.016, 0.016, 0.016), wrap_axis=_Y, approach=_X),
    "pear": Shape(_pear, (0.035, 0.058, 0.035), wrap_axis=_Y, approach=_X),
}
"""Procedural objects by name."""


# ------------------------------------------------------------------------------------------ building


def mesh_from_sdf(shape: Shape, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of a shape's zero level set.

    Args:
        shape: signed distance function (negative inside) and bounds.
        voxel: grid spacing, metres.

    Returns:
        vertices (V, 3) float64 and faces (F, 3) int64, outward-facing, centred on the bounding box.
    """
    axes = [
        np.arange(-e - _PAD_VOXELS * voxel, e + (_PAD_VOXELS + 1) * voxel, voxel) for e in shape.half_extent
    ]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    values = shape.sdf(grid).reshape(*(len(a) for a in axes))
    if not (values < 0).any():
        raise ValueError("procedural shape is empty at this voxel size")
    border = np.concatenate([np.moveaxis(values, d, 0)[[0, -1]].ravel() for d in range(3)])
    if (border <= 0).any():
        raise ValueError("procedural shape leaves its bounding box: enlarge Shape.half_extent")
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(voxel,) * 3)
    verts = verts + np.array([a[0] for a in axes])
    faces = faces.astype(np.int64)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if mesh.volume < 0:  # make normals point outwards whatever marching cubes' convention is
        faces = faces[:, ::-1].copy()
    verts = verts - 0.5 * (verts.min(0) + verts.max(0))
    return verts.astype(np.float64), faces


def load_object(name: str, cfg: SynthConfig, rng: np.random.Generator) -> ObjectModel:
    """A procedural shape by name, or a user mesh (.obj / .ply / …) by path.

    User meshes keep their texture (UV image) or vertex colours; without either they get the
    procedural texture. They are assumed to be in metres unless ``cfg.object_size_m`` rescales them.

    Raises:
        ValueError: unknown name, unreadable or empty mesh.
    """
    if name in SHAPES:
        shape = SHAPES[name]
        verts, faces = mesh_from_sdf(shape, min(cfg.object_voxel_m, shape.max_voxel_m))
        albedo = _procedural_albedo(verts, faces, cfg, rng)
        return ObjectModel(
            name, verts, faces, albedo, np.asarray(shape.wrap_axis), np.asarray(shape.approach)
        )
    path = Path(name)
    if not path.is_file():
        raise ValueError(
            f"object {name!r}: neither a procedural shape ({', '.join(SHAPES)}) nor an existing mesh file"
        )
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for bad files
        raise ValueError(f"{path}: cannot read mesh: {e}") from e
    if len(mesh.faces) == 0:
        raise ValueError(f"{path}: mesh has no faces")
    verts = np.asarray(mesh.vertices, np.float64)
    verts = verts - 0.5 * (verts.min(0) + verts.max(0))
    if cfg.object_size_m > 0:
        verts *= cfg.object_size_m / (verts.max(0) - verts.min(0)).max()
    faces = np.asarray(mesh.faces, np.int64)
    albedo = _file_albedo(mesh, faces) or _procedural_albedo(verts, faces, cfg, rng)
    # Unknown shape: wrap the hand around the longest principal axis, palm on the flattest side.
    _, _, axes = np.linalg.svd(verts - verts.mean(0), full_matrices=False)
    axes *= np.where(axes[np.arange(3), np.abs(axes).argmax(1)] < 0, -1.0, 1.0)[:, None]  # fixed signs
    return ObjectModel(path.stem, verts, faces, albedo, axes[0], axes[2])


def _procedural_albedo(
    verts: np.ndarray, faces: np.ndarray, cfg: SynthConfig, rng: np.random.Generator
) -> Albedo:
    face, bary = sample_faces(verts, faces, _TEXTURE_SAMPLES, rng)
    samples = np.einsum("nk,nkc->nc", bary, verts[faces[face]])
    area = float(trimesh.Trimesh(verts, faces, process=False).area)
    return ProceduralAlbedo(ProceduralTexture.random(rng, cfg.texture, samples, area))


def sample_faces(
    verts: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples drawn from ``rng`` (trimesh's sampler has its own global state).

    Returns:
        face ids (n,) and barycentric coordinates (n, 3).
    """
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(area), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return face, np.stack([1 - u - v, u, v], -1)


def sample_surface(obj: ObjectModel, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points on the object surface and their colours.

    Returns:
        points (n, 3) object frame, metres; colors (n, 3) uint8.
    """
    face, bary = sample_faces(obj.vertices, obj.faces, n, rng)
    points = np.einsum("nk,nkc->nc", bary, obj.vertices[obj.faces[face]])
    rgb = obj.albedo(face, bary, points)
    return points, np.round(np.clip(rgb, 0, 1) * _UINT8_MAX).astype(np.uint8)


def _file_albedo(mesh: trimesh.Trimesh, faces: np.ndarray) -> Albedo | None:
    """The mesh file's own colours: a UV texture image, else vertex colours, else None."""
    visual = mesh.visual
    if isinstance(visual, trimesh.visual.texture.TextureVisuals) and visual.uv is not None:
        image = getattr(visual.material, "image", None)
        if image is None:
            image = getattr(visual.material, "baseColorTexture", None)
        if image is not None:
            rgb = np.asarray(image.convert("RGB"), np.float32) / _UINT8_MAX
            return UVImageAlbedo(faces, np.asarray(visual.uv, np.float64), rgb)
    if isinstance(visual, trimesh.visual.color.ColorVisuals) and visual.kind == "vertex":
        colors = np.asarray(visual.vertex_colors[:, :3], np.float32) / _UINT8_MAX
        return VertexColorAlbedo(faces, colors)
    return None
