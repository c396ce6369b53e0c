"""Geometry derived from a hand model's own canonical mesh: sealed mesh, joint frames, contact regions.

Nothing here is tabulated per model: every region comes from the mesh, its skinning weights and its
keypoints, so Anny and MANO (and any later model) get them by the same rules.

* **Sealing.** The hand mesh is open at the wrist. Each boundary loop is capped by a fan of triangles
  around one new vertex at the loop's centroid, oriented against the loop's boundary edges so that
  the winding stays consistent (outward normals).
* **Palm normal.** ``s · (index knuckle − wrist) × (little knuckle − wrist)``, s = +1 for a right
  hand and −1 for a left one; it points out of the palm.
* **Joint frames** (for models without anatomical bone axes, i.e. MANO): y along the bone towards the
  child keypoint, z the palm-side direction orthogonalised to y, x = y × z. A positive rotation about
  x then moves the child towards the palm (flexion), matching Anny's local-bone axes. The thumb's
  palm side is halfway between the palm normal and the direction towards the index knuckle (the
  thumb opposes the fingers rather than folding onto the palm).
* **Contact regions.** Per finger, the vertices whose largest skinning weight is on the distal bone
  form the distal phalanx. Its *tip* is the part within ``tip_radius`` of the fingertip keypoint; its
  *pad* is the part whose outward normal lies within ``acos(normal_cos)`` of the distal joint's
  palm side (z axis). The *palm* is the skin of the palm bones whose normal lies within the same
  cone of the palm normal, between ``palm_start`` of the way from the wrist to the middle knuckle
  and the knuckle line.
"""

from __future__ import annotations

import torch
from torch import Tensor


def seal_holes(faces: Tensor, num_vertices: int) -> tuple[Tensor, list[Tensor]]:
    """Cap every boundary loop with a fan around a new centre vertex.

    Args:
        faces: (F, 3) triangles of a mesh whose only boundaries are simple loops.
        num_vertices: V; the centre of loop i gets index V + i.

    Returns:
        sealed faces (F + Σ len(loop), 3) and the loops, each (n,) vertex ids in boundary order.
    """
    f = faces.detach().cpu().tolist()
    directed = {(a, b) for tri in f for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0]))}
    boundary = {a: b for (a, b) in directed if (b, a) not in directed}
    loops: list[list[int]] = []
    while boundary:
        start, nxt = boundary.popitem()
        loop = [start]
        while nxt != start:
            loop.append(nxt)
            if nxt not in boundary:
                raise ValueError("faces: the mesh boundary is not a set of simple loops")
            nxt = boundary.pop(nxt)
        loops.append(loop)
    caps = []
    for i, loop in enumerate(loops):
        centre = num_vertices + i
        # boundary edge a→b belongs to a face; the cap must traverse it as b→a
        caps += [[loop[(k + 1) % len(loop)], loop[k], centre] for k in range(len(loop))]
    sealed = torch.cat([faces, torch.tensor(caps, dtype=faces.dtype, device=faces.device).reshape(-1, 3)])
    return sealed, [torch.tensor(loop, dtype=torch.long, device=faces.device) for loop in loops]


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """(V, 3) unit area-weighted vertex normals of a triangle mesh (V, 3), (F, 3)."""
    tri = vertices[faces]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(n, dim=-1)


def palm_normal(keypoints: Tensor, side: str) -> Tensor:
    """(3,) unit normal out of the palm from (21, 3) keypoints in the common order."""
    sign = 1.0 if side == "right" else -1.0
    n = torch.linalg.cross(keypoints[5] - keypoints[0], keypoints[17] - keypoints[0])
    return sign * torch.nn.functional.normalize(n, dim=0)


def frames_from_keypoints(keypoints: Tensor, side: str) -> Tensor:
    """Anatomical frames of the 15 finger joints from canonical keypoints (common order).

    Args:
        keypoints: (21, 3) canonical keypoints.
        side: ``"right"`` or ``"left"``.

    Returns:
        (5, 3, 3, 3): per finger (thumb..little) and per joint (base, middle, distal) a rotation
        whose columns are the flexion axis x, the bone axis y and the palm side z.
    """
    n = palm_normal(keypoints, side)
    frames = []
    for f in range(5):
        k = [1 + 4 * f + i for i in range(4)]
        side_dir = n
        if f == 0:
            towards_index = torch.nn.functional.normalize(keypoints[5] - keypoints[k[2]], dim=0)
            side_dir = torch.nn.functional.normalize(n + towards_index, dim=0)
        finger = []
        for i in range(3):
            y = torch.nn.functional.normalize(keypoints[k[i + 1]] - keypoints[k[i]], dim=0)
            z = torch.nn.functional.normalize(side_dir - (side_dir @ y) * y, dim=0)
            finger.append(torch.stack([torch.linalg.cross(y, z), y, z], dim=1))
        frames.append(torch.stack(finger))
    return torch.stack(frames)


def contact_regions(
    vertices: Tensor,
    faces: Tensor,
    weights: Tensor,
    keypoints: Tensor,
    joint_frames: Tensor,
    finger_bones: tuple[tuple[int, ...], ...],
    palm_bones: tuple[int, ...],
    distal_joints: tuple[int, ...],
    side: str,
    *,
    tip_radius: float,
    normal_cos: float,
    palm_start: float,
) -> tuple[Tensor, Tensor]:
    """Contact vertex ids by the rules in the module docstring.

    Args:
        vertices: (V, 3) canonical mesh; faces (F, 3); weights (V, nb) skinning weights.
        keypoints: (21, 3) canonical keypoints.
        joint_frames: (J, 3, 3) anatomical frames (columns x, y, z) of the articulated joints.
        finger_bones: per finger, its skinning bones base→tip (the last is the distal bone).
        palm_bones: skinning bones of the palm.
        distal_joints: per finger, the index into ``joint_frames`` of its distal joint.
        side: ``"right"`` or ``"left"``.
        tip_radius, normal_cos, palm_start: thresholds (see ``HandConfig``).

    Returns:
        ids (n,) and labels (n,): 0–4 tips, 5–9 pads (thumb..little), 10 palm.
    """
    dominant = weights.argmax(dim=1)
    normals = vertex_normals(vertices, faces)
    ids, labels = [], []
    for k in range(5):
        on_distal = dominant == finger_bones[k][-1]
        tip = keypoints[4 + 4 * k]
        tip_mask = on_distal & ((vertices - tip).norm(dim=1) < tip_radius)
        pad_mask = on_distal & (normals @ joint_frames[distal_joints[k]][:, 2] > normal_cos)
        for mask, label in ((tip_mask, k), (pad_mask, 5 + k)):
            sel = torch.nonzero(mask).flatten()
            ids.append(sel)
            labels.append(torch.full_like(sel, label))
    axis = keypoints[9] - keypoints[0]
    along = (vertices - keypoints[0]) @ axis / (axis @ axis)
    on_palm = torch.isin(dominant, torch.tensor(palm_bones, device=dominant.device))
    palm_mask = (
        on_palm
        & (normals @ palm_normal(keypoints, side) > normal_cos)
        & (along >= palm_start)
        & (along <= 1.0)
    )
    sel = torch.nonzero(palm_mask).flatten()
    ids.append(sel)
    labels.append(torch.full_like(sel, 10))
    return torch.cat(ids), torch.cat(labels)


def farthest_along(vertices: Tensor, candidates: Tensor, origin: Tensor, direction: Tensor) -> int:
    """Index (into ``vertices``) of the candidate farthest from ``origin`` along ``direction``.

    Args:
        vertices: (V, 3); candidates: (V,) bool mask; origin, direction: (3,).
    """
    proj = (vertices - origin) @ direction
    proj = torch.where(candidates, proj, torch.full_like(proj, -torch.inf))
    return int(proj.argmax())
