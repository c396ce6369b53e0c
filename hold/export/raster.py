"""A small exact z-buffer rasteriser for mesh renders (export previews), vectorised in PyTorch.

Each face is tested against the pixel centres inside its projected bounding box; faces are grouped by
box size so the candidate pixels of one group form a dense (faces, s, s) block. Depth is interpolated
perspective-correctly (linear in 1/z) and the nearest face wins each pixel. No gradients: the
differentiable silhouettes of stage 2 live in ``hold.refine.raster``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hold.geometry.camera import project

NEAR_M = 1e-3
"""Faces with a vertex closer to the camera plane than this (metres) are skipped."""
MAX_CANDIDATES = 4_000_000
"""Face × pixel candidates tested at once (bounds memory: ~40 bytes each)."""


@dataclass
class Fragments:
    """Per pixel: the visible face (−1 for none), its depth (inf for none) and barycentric coordinates.

    Attributes:
        face: (H, W) long.
        depth: (H, W) float, camera z in metres.
        bary: (H, W, 3) float, barycentric coordinates of the pixel centre in the visible face.
    """

    face: Tensor
    depth: Tensor
    bary: Tensor

    @property
    def mask(self) -> Tensor:
        return self.face >= 0


def _edge_bary(tri: Tensor, p: Tensor) -> Tensor:
    """Screen-space barycentric coordinates of points ``p`` (..., 2) in triangles ``tri`` (..., 3, 2)."""
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (
        c[..., 0] - a[..., 0]
    )
    w0 = (b[..., 0] - p[..., 0]) * (c[..., 1] - p[..., 1]) - (b[..., 1] - p[..., 1]) * (c[..., 0] - p[..., 0])
    w1 = (c[..., 0] - p[..., 0]) * (a[..., 1] - p[..., 1]) - (c[..., 1] - p[..., 1]) * (a[..., 0] - p[..., 0])
    w = torch.stack([w0, w1, area - w0 - w1], -1)
    return w / area[..., None]


@torch.no_grad()
def rasterize(vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int]) -> Fragments:
    """Rasterise one mesh (several meshes: concatenate them, offsetting the face indices).

    Args:
        vertices: (V, 3) camera frame (OpenCV axes), metres.
        faces: (F, 3) long.
        K: (3, 3) intrinsics.
        image_size: (H, W).
    """
    H, W = image_size
    vertices = vertices.double()
    K = K.double()
    z = vertices[:, 2]
    uv = project(vertices, K, NEAR_M)
    keep = (z[faces] > NEAR_M).all(1)
    face_ids = torch.nonzero(keep)[:, 0]
    tri = uv[faces[face_ids]]  # (F', 3, 2)
    # Pixel (i, j) has its centre at (j + 0.5, i + 0.5): the columns / rows whose centres the box holds.
    x0 = torch.ceil(tri[..., 0].min(1).values - 0.5).clamp(0, W).long()
    x1 = torch.floor(tri[..., 0].max(1).values - 0.5).clamp(-1, W - 1).long()
    y0 = torch.ceil(tri[..., 1].min(1).values - 0.5).clamp(0, H).long()
    y1 = torch.floor(tri[..., 1].max(1).values - 0.5).clamp(-1, H - 1).long()
    size = torch.maximum(x1 - x0, y1 - y0) + 1
    on_screen = (x1 >= x0) & (y1 >= y0)
    depth = torch.full((H * W,), math.inf, dtype=torch.float64)
    cand_pix, cand_face, cand_z = [], [], []
    # Groups of faces whose boxes fit in s × s pixels, s = 1, 2, 4, …
    bucket = torch.ceil(torch.log2(size.clamp_min(1).double())).long()
    for b in torch.unique(bucket[on_screen]).tolist():
        s = 2**b
        members = torch.nonzero(on_screen & (bucket == b))[:, 0]
        step = max(1, MAX_CANDIDATES // (s * s))
        dy, dx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        for start in range(0, len(members), step):
            m = members[start : start + step]
            px = x0[m, None, None] + dx  # (n, s, s)
            py = y0[m, None, None] + dy
            centre = torch.stack([px, py], -1).double() + 0.5
            w = _edge_bary(tri[m, None, None], centre)
            inside = (w >= 0).all(-1) & (px <= x1[m, None, None]) & (py <= y1[m, None, None])
            inside &= torch.isfinite(w).all(-1)  # degenerate (zero-area) faces cover nothing
            if not inside.any():
                continue
            inv_z = (w / z[faces[face_ids[m]]][:, None, None]).sum(-1)  # perspective-correct 1/z
            idx = torch.nonzero(inside, as_tuple=True)
            cand_pix.append(py[idx] * W + px[idx])
            cand_face.append(face_ids[m][idx[0]])
            cand_z.append(1.0 / inv_z[idx])
    face = torch.full((H * W,), -1, dtype=torch.long)
    if cand_pix:
        pix, fid, zc = torch.cat(cand_pix), torch.cat(cand_face), torch.cat(cand_z)
        depth.scatter_reduce_(0, pix, zc, reduce="amin")
        win = zc <= depth[pix]
        face[pix[win]] = fid[win]
    face = face.reshape(H, W)
    bary = torch.zeros(H, W, 3, dtype=torch.float64)
    hit = face >= 0
    if hit.any():
        ys, xs = torch.nonzero(hit, as_tuple=True)
        centre = torch.stack([xs, ys], -1).double() + 0.5
        w = _edge_bary(uv[faces[face[hit]]], centre)
        # Screen-space → perspective-correct barycentrics.
        w = w / z[faces[face[hit]]]
        bary[hit] = w / w.sum(-1, keepdim=True)
    return Fragments(face=face, depth=depth.reshape(H, W).float(), bary=bary.float())


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """(V, 3) area-weighted unit vertex normals (outward for counter-clockwise faces)."""
    tri = vertices[faces]
    fn = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, 0))
    return torch.nn.functional.normalize(vn, dim=-1)


def normal_image(
    vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Smooth-shaded normal map of a mesh, as colours.

    Returns:
        rgb (H, W, 3) in [0, 1] (``normal_to_rgb``, back faces flipped to face the camera), and the
        coverage mask (H, W) bool.
    """
    frags = rasterize(vertices, faces, K, image_size)
    vn = vertex_normals(vertices.float(), faces)
    hit = frags.mask
    normals = torch.zeros(*image_size, 3)
    if hit.any():
        n = (frags.bary[hit][..., None] * vn[faces[frags.face[hit]]]).sum(-2)
        # Surfaces seen from behind (through holes of an open mesh) are shown as if seen from the front.
        ys, xs = torch.nonzero(hit, as_tuple=True)
        rays = (
            torch.stack([xs + 0.5, ys + 0.5, torch.ones_like(xs, dtype=torch.float32)], -1)
            @ torch.linalg.inv(K).T
        )
        n = torch.where(((n * rays).sum(-1) > 0)[:, None], -n, n)
        normals[hit] = torch.nn.functional.normalize(n, dim=-1)
    return normal_to_rgb(normals) * hit[..., None], hit


def normal_to_rgb(normals: Tensor) -> Tensor:
    """Camera-frame unit normals (OpenCV axes) → colours in [0, 1]: x → red, up → green, towards the
    camera → blue (the usual normal-map look)."""
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=normals.dtype)
    return (normals * flip + 1.0) / 2.0
