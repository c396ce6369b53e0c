"""Procedural 3D textures and per-hit albedo lookups (procedural, vertex colours, UV image).

Textures are evaluated at the ray's hit point in the surface's own frame, so they stay sharp at any
resolution and move rigidly with the surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.spatial import cKDTree

from hold.data.synthetic.config import TextureConfig

_NOISE_TABLE = 64  # period, in lattice cells, of the value noise (> any object at its frequencies)
_LABEL_LINE_QUANTILE = 0.01  # the label's centre is picked among this share of samples nearest its axis
_LABEL_FIT_STEPS = 30  # bisection steps sizing a label to its share of the surface


class Albedo(Protocol):
    """Surface colour at ray hits."""

    def __call__(self, face_ids: np.ndarray, bary: np.ndarray, local_points: np.ndarray) -> np.ndarray:
        """Albedo at hits.

        Args:
            face_ids: (N,) face index of each hit in the surface's own face list.
            bary: (N, 3) barycentric coordinates of each hit in its face.
            local_points: (N, 3) hit points in the surface's own frame.

        Returns:
            (N, 3) float32 RGB in [0, 1].
        """
        ...


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """(N, 3) HSV in [0, 1] → (N, 3) RGB in [0, 1]."""
    h, s, v = hsv[:, 0] * 6.0, hsv[:, 1], hsv[:, 2]
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack(
        [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    )
    return table[i, np.arange(len(i))]


@dataclass
class Label:
    """A printed label: a rectangle projected onto a surface along its normal, on one side only."""

    centre: np.ndarray  # (3,) on the surface
    axes: np.ndarray  # (3, 3) rows: long side u, short side v, outward normal n
    half: np.ndarray  # (2,) half lengths of the sides along u and v, metres
    depth: float  # points farther than this behind the centre (along −n) lie on the other side

    @classmethod
    def fit(cls, rng: np.random.Generator, surface: np.ndarray, fraction: float, aspect: float) -> Label:
        """Place a label covering ``fraction`` of a surface on the side its thinnest axis faces.

        Args:
            rng: random generator (which of the two sides).
            surface: (S, 3) area-uniform surface samples, the surface's own frame.
            fraction: share of the samples (of the area) the label covers.
            aspect: long side / short side.
        """
        mean = surface.mean(0)
        rel = surface - mean
        _, _, axes = np.linalg.svd(rel, full_matrices=False)
        normal = axes[2] * rng.choice([-1.0, 1.0])
        axes = np.stack([axes[0], np.cross(normal, axes[0]), normal])
        # Centre: the outermost sample along the normal among those nearest the line mean + t·normal.
        height = rel @ normal
        off_line = np.linalg.norm(rel - height[:, None] * normal, axis=1)
        near = np.flatnonzero(off_line <= np.quantile(off_line, _LABEL_LINE_QUANTILE))
        centre = surface[near[height[near].argmax()]]
        local = (surface - centre) @ axes.T
        depth = 0.5 * float(np.ptp(height))
        shape = np.array([np.sqrt(aspect), 1.0 / np.sqrt(aspect)])
        lo, hi = 0.0, float(np.ptp(rel @ axes[0]))
        for _ in range(_LABEL_FIT_STEPS):  # bisection on the label's size: the covered share grows with it
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if _inside(local, mid * shape, depth).mean() < fraction else (lo, mid)
        return cls(centre, axes, hi * shape, depth)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(P,) bool: which of the points (P, 3) lie on the label."""
        return _inside((points - self.centre) @ self.axes.T, self.half, self.depth)


def _inside(local: np.ndarray, half: np.ndarray, depth: float) -> np.ndarray:
    return (np.abs(local[:, :2]) <= half).all(1) & (local[:, 2] >= -depth)


@dataclass
class ProceduralTexture:
    """Random-coloured Voronoi cells and discs × fine brightness cells × value noise.

    With ``cfg.plain`` the surface is one plain colour and this texture shows only on the label.
    """

    cells: cKDTree  # coloured cell centres
    colors: np.ndarray  # (N, 3) RGB per coloured cell
    spots: cKDTree  # centres of the coloured discs drawn over the cells
    spot_radii: np.ndarray  # (S,) disc radii
    spot_colors: np.ndarray  # (S, 3) RGB
    fine_cells: cKDTree  # brightness cell centres
    fine_gain: np.ndarray  # (M,) brightness factor per fine cell
    noise_table: np.ndarray  # (_NOISE_TABLE³,) random lattice values, periodic
    cfg: TextureConfig
    label: Label | None = None  # where the texture shows on a plain surface (``cfg.plain``)

    @classmethod
    def random(
        cls, rng: np.random.Generator, cfg: TextureConfig, surface: np.ndarray, area: float
    ) -> ProceduralTexture:
        """Draw a texture whose cells lie on a surface.

        Args:
            rng: random generator (the only source of randomness).
            cfg: texture settings.
            surface: (S, 3) area-uniform samples of the surface to decorate, in its own frame.
            area: the surface's area, m² (sets the number of cells).
        """
        n = max(int(area / cfg.cell_size_m**2), 2)
        m = max(int(area / cfg.fine_cell_size_m**2), 2)
        centers = surface[rng.choice(len(surface), n, replace=n > len(surface))]
        fine = surface[rng.choice(len(surface), m, replace=m > len(surface))]
        # Jitter off the sample set so coincident picks cannot make ambiguous nearest neighbours.
        centers = centers + rng.normal(0.0, 0.05 * cfg.cell_size_m, centers.shape)
        fine = fine + rng.normal(0.0, 0.05 * cfg.fine_cell_size_m, fine.shape)
        hsv = np.stack(
            [rng.random(n), rng.uniform(0.1, cfg.saturation, n), rng.uniform(cfg.value_min, 1, n)], -1
        )
        k = int(area / cfg.spot_spacing_m**2) if cfg.spot_spacing_m > 0 else 0
        spots = surface[rng.choice(len(surface), max(k, 1), replace=k > len(surface))]
        spot_hsv = np.stack(
            [rng.random(len(spots)), rng.uniform(0.1, cfg.saturation, len(spots)), rng.random(len(spots))], -1
        )
        texture = cls(
            cells=cKDTree(centers),
            colors=hsv_to_rgb(hsv),
            spots=cKDTree(spots),
            spot_radii=rng.uniform(*cfg.spot_radius_m, len(spots)) if k > 0 else np.zeros(1),
            spot_colors=hsv_to_rgb(spot_hsv),
            fine_cells=cKDTree(fine),
            fine_gain=1.0 + cfg.fine_contrast * (rng.random(m) - 0.5),
            noise_table=rng.random(_NOISE_TABLE**3),
            cfg=cfg,
        )
        if cfg.plain and cfg.label_fraction > 0:  # drawn last: the draws above do not depend on it
            texture.label = Label.fit(rng, surface, cfg.label_fraction, cfg.label_aspect)
        return texture

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(P, 3) points in the texture's frame → (P, 3) float32 RGB in [0, 1]."""
        p = np.asarray(points, np.float64)
        if self.cfg.plain:
            rgb = np.empty((len(p), 3), np.float32)
            rgb[:] = np.clip(self.cfg.base_rgb, 0.0, 1.0)
            on_label = self.label.contains(p) if self.label is not None else np.zeros(len(p), bool)
            rgb[on_label] = self._textured(p[on_label])
            return rgb
        return self._textured(p)

    def _textured(self, p: np.ndarray) -> np.ndarray:
        """(P, 3) float64 points → (P, 3) float32 RGB of the cells, discs and noise."""
        cfg = self.cfg
        _, idx = self.cells.query(p, k=1)
        rgb = self.colors[idx]
        spot_dist, spot = self.spots.query(p, k=1)
        in_spot = spot_dist < self.spot_radii[spot]
        rgb = np.where(in_spot[:, None], self.spot_colors[spot], rgb)
        _, fine = self.fine_cells.query(p, k=1)
        gain = self.fine_gain[fine]
        noise = np.zeros(len(p))
        for octave in range(cfg.noise_octaves):
            noise += 0.5**octave * (self._value_noise(p * cfg.noise_frequency * 2**octave) - 0.5)
        gain = gain * (1.0 + cfg.noise_amplitude * noise)
        return np.clip(rgb * gain[:, None], 0.0, 1.0).astype(np.float32)

    def _value_noise(self, x: np.ndarray) -> np.ndarray:
        """Trilinearly interpolated lattice noise with smoothstep weights, values in [0, 1]."""
        size = _NOISE_TABLE
        i0 = np.floor(x).astype(np.int64)
        f = x - i0
        w = f * f * (3.0 - 2.0 * f)
        i0 %= size
        i1 = (i0 + 1) % size

        def lattice(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
            return self.noise_table[(ix * size + iy) * size + iz]

        x0, x1, y0, y1, z0, z1 = i0[:, 0], i1[:, 0], i0[:, 1], i1[:, 1], i0[:, 2], i1[:, 2]
        wx, wy, wz = w[:, 0], w[:, 1], w[:, 2]
        lerp = lambda a, b, t: a + t * (b - a)  # noqa: E731
        c00 = lerp(lattice(x0, y0, z0), lattice(x1, y0, z0), wx)
        c10 = lerp(lattice(x0, y1, z0), lattice(x1, y1, z0), wx)
        c01 = lerp(lattice(x0, y0, z1), lattice(x1, y0, z1), wx)
        c11 = lerp(lattice(x0, y1, z1), lattice(x1, y1, z1), wx)
        return lerp(lerp(c00, c10, wy), lerp(c01, c11, wy), wz)


@dataclass
class ProceduralAlbedo:
    """Albedo from a procedural texture evaluated at the hit point (surface frame)."""

    texture: ProceduralTexture

    def __call__(self, face_ids: np.ndarray, bary: np.ndarray, local_points: np.ndarray) -> np.ndarray:
        return self.texture(local_points)


@dataclass
class VertexColorAlbedo:
    """Albedo interpolated barycentrically from per-vertex colours."""

    faces: np.ndarray  # (F, 3)
    colors: np.ndarray  # (V, 3) float in [0, 1]

    def __call__(self, face_ids: np.ndarray, bary: np.ndarray, local_points: np.ndarray) -> np.ndarray:
        return np.einsum("nk,nkc->nc", bary, self.colors[self.faces[face_ids]]).astype(np.float32)


@dataclass
class UVImageAlbedo:
    """Albedo from a texture image through per-vertex UV coordinates (nearest texel)."""

    faces: np.ndarray  # (F, 3)
    uv: np.ndarray  # (V, 2) in [0, 1], v up (OBJ convention)
    image: np.ndarray  # (h, w, 3) float in [0, 1]

    def __call__(self, face_ids: np.ndarray, bary: np.ndarray, local_points: np.ndarray) -> np.ndarray:
        uv = np.einsum("nk,nkc->nc", bary, self.uv[self.faces[face_ids]]) % 1.0
        h, w = self.image.shape[:2]
        col = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
        row = np.clip(((1.0 - uv[:, 1]) * h).astype(int), 0, h - 1)
        return self.image[row, col].astype(np.float32)


def albedo_at_vertices(albedo: Albedo, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Evaluate an albedo at mesh vertices (for coloured PLY export and oracle point colours).

    Returns:
        (V, 3) float32 RGB in [0, 1].
    """
    face_of_vertex = np.zeros(len(vertices), np.int64)
    corner = np.zeros(len(vertices), np.int64)
    # The last face listing a vertex wins: any face touching it gives the same colour at the corner.
    face_of_vertex[faces.ravel()] = np.repeat(np.arange(len(faces)), 3)
    corner[faces.ravel()] = np.tile(np.arange(3), len(faces))
    bary = np.eye(3)[corner]
    return albedo(face_of_vertex, bary, vertices)


@dataclass
class PlaneAlbedo:
    """Albedo of a flat rectangle from a texture baked once into an image (bilinear lookup).

    The wall behind the scene covers most pixels: a baked image is ~100× cheaper than evaluating
    the procedural texture at every hit.
    """

    origin: np.ndarray  # (3,) corner of the rectangle, its own frame
    axis_u: np.ndarray  # (3,) edge vector along the image's columns
    axis_v: np.ndarray  # (3,) edge vector along the image's rows
    image: np.ndarray  # (h, w, 3) float32

    @classmethod
    def bake(
        cls,
        texture: ProceduralTexture,
        origin: np.ndarray,
        axis_u: np.ndarray,
        axis_v: np.ndarray,
        texels: int,
    ) -> PlaneAlbedo:
        """Evaluate ``texture`` on a ``texels`` × ``texels`` grid over the rectangle."""
        t = (np.arange(texels) + 0.5) / texels
        tu, tv = np.meshgrid(t, t, indexing="xy")
        points = origin + tu.reshape(-1, 1) * axis_u + tv.reshape(-1, 1) * axis_v
        return cls(origin, axis_u, axis_v, texture(points).reshape(texels, texels, 3))

    def __call__(self, face_ids: np.ndarray, bary: np.ndarray, local_points: np.ndarray) -> np.ndarray:
        h, w = self.image.shape[:2]
        rel = local_points - self.origin
        u = np.clip(rel @ self.axis_u / (self.axis_u @ self.axis_u) * w - 0.5, 0, w - 1)
        v = np.clip(rel @ self.axis_v / (self.axis_v @ self.axis_v) * h - 0.5, 0, h - 1)
        u0, v0 = np.minimum(u.astype(int), w - 2), np.minimum(v.astype(int), h - 2)
        fu, fv = (u - u0)[:, None], (v - v0)[:, None]
        img = self.image
        top = img[v0, u0] * (1 - fu) + img[v0, u0 + 1] * fu
        bottom = img[v0 + 1, u0] * (1 - fu) + img[v0 + 1, u0 + 1] * fu
        return (top * (1 - fv) + bottom * fv).astype(np.float32)
