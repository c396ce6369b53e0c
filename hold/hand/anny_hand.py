"""The open Anny hand (``pip install anny``, Apache-2.0) behind the ``HandModel`` interface.

Anny's hand rig (``rig='anny-hand.R|L'``, ``topology='hand.R|L'``) has 21 bones: root, wrist, three
thumb phalanges and, per finger, a metacarpal and three phalanges; 1609 vertices, 3196 triangles,
metres. We load its buffers once and re-implement its forward pass (phenotype blend shapes, cached
rest orientations, ``local-bone`` kinematics, dense LBS) in float32 without per-call Python overhead;
``tests/hand/test_anny.py`` checks that it matches ``anny.Anny`` itself.

Parameterisation:
    * ``global_orient`` / ``transl``: the root bone's world pose. Canonical space is the root bone's
      rest frame, origin at the wrist: fingers along +y, thumb towards +z, the right palm facing −x
      (the left hand is the mirror image in x). So the wrist keypoint is exactly ``transl``.
    * ``pose`` (B, 20, 3): axis-angle of bones 1..20 in their reference frames (x flexes towards the
      palm, y twists, z spreads). Zero is Anny's reference pose: a relaxed, slightly curled hand
      within ~1° of the rest mesh (``canonical_pose`` gives the exact rest).
    * ``betas`` (6,): Anny's phenotypes (gender, age, muscle, weight, height, proportions) minus 0.5,
      so zero is the average hand; useful range ±0.5 (Anny clamps the phenotypes to [0, 1]).

Keypoints: the wrist is the root's head; the thumb's 1–3 are the heads of its three phalanges, a
finger's 1–3 the heads of its three phalanges (knuckle, PIP, DIP). Anny has no fingertip joints, so
each tip is the vertex of the distal phalanx (largest skinning weight on the distal bone) that lies
farthest along that bone's axis in the average canonical mesh.
"""

from __future__ import annotations

import functools

import roma
import torch
from torch import Tensor

from hold.config.hand import HandConfig
from hold.hand import anatomy
from hold.hand.kinematics import linear_blend_skinning, rotvec_to_rotmat, special_procrustes
from hold.hand.model import HandModel, HandOutput

_JOINT_TYPES = ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip") + ("metacarpal", "mcp", "pip", "dip") * 4
_FINGER_BONES = ((2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
# bones whose heads are the non-tip keypoints, in keypoint order (the root's head is the wrist)
_HEAD_BONES = (0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20)
_HEAD_SLOTS = (0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19)


@functools.lru_cache(maxsize=2)
def _anny_buffers(letter: str) -> dict[str, object]:
    """Float64 buffers of Anny's hand (one instantiation per side and process)."""
    import anny

    m = anny.Anny(
        rig=f"anny-hand.{letter}",
        topology=f"hand.{letter}",
        pose_parameterization="local-bone",
        skinning_method="lbs",
    )
    # our re-implementation covers this configuration only; fail loudly if a new anny changes it
    if m.bone_orientation != "cached" or m.root_identity_orientation or m.rest_orientation_refiner:
        raise RuntimeError(f"anny {anny.__version__}: unsupported hand rig configuration")
    if m.phenotype_blendshape_projection is None or m.local_change_labels or m.facial_action_labels:
        raise RuntimeError(f"anny {anny.__version__}: unexpected phenotype blend shapes")
    return dict(
        template=m.template_vertices,
        blendshapes=m.blendshapes,
        heads=m.template_bone_heads,
        heads_blendshapes=m.bone_heads_blendshapes,
        orient=m.bone_template_orientation_matrices,
        orient_blendshapes=m.bone_orientation_blendshapes,
        ref_orient=m.reference_bone_orientations,
        weights=m.dense_vertex_bone_weights,
        faces=m.faces,
        mask=m.stacked_phenotype_blend_shapes_mask,
        projection=m.phenotype_blendshape_projection,
        anchors={k: m.anchors[k] for k in ("age", "gender", "muscle", "weight", "height", "proportions")}
        | {k: m.anchors[k] for k in ("cupsize", "firmness")},
        phenotype_labels=list(m.phenotype_labels),
        bone_labels=list(m.bone_labels),
        bone_parents=[int(p) for p in m.bone_parents],
    )


class AnnyHand(HandModel):
    """Anny hand model; see the module docstring for the parameterisation.

    Args:
        cfg: hand config (contact thresholds).
        side: ``"right"`` or ``"left"``.
    """

    name = "anny"
    num_pose_joints = 20
    num_betas = 6
    num_bones = 21
    joint_types = _JOINT_TYPES
    finger_bones = _FINGER_BONES
    palm_bones = (0, 1, 5, 9, 13, 17)
    distal_joints = (3, 7, 11, 15, 19)
    finger_joints = ((1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15), (16, 17, 18, 19))

    def __init__(self, cfg: HandConfig | None = None, side: str = "right") -> None:
        super().__init__(side)
        cfg = cfg or HandConfig()
        data = _anny_buffers("R" if side == "right" else "L")
        dt = torch.get_default_dtype()
        self.phenotype_labels: list[str] = data["phenotype_labels"]
        self.bone_labels: list[str] = data["bone_labels"]
        parents = data["bone_parents"]
        self.bone_parents = parents
        if self.phenotype_labels != ["gender", "age", "muscle", "weight", "height", "proportions"]:
            raise RuntimeError(f"anny: unexpected phenotypes {self.phenotype_labels}")
        if len(parents) != self.num_bones:
            raise RuntimeError(f"anny: expected {self.num_bones} hand bones, found {len(parents)}")

        def buf(name: str, value: Tensor) -> None:  # copies: the loaded arrays are shared by all instances
            value = value.detach().clone()
            self.register_buffer(name, value.to(dt) if value.is_floating_point() else value, persistent=False)

        buf("faces", data["faces"].long())
        buf("skinning_weights", data["weights"])
        buf("template", data["template"])
        n_coeff = data["blendshapes"].shape[0]
        buf("blendshapes", data["blendshapes"].reshape(n_coeff, -1))
        buf("heads_template", data["heads"])
        buf("heads_blendshapes", data["heads_blendshapes"].reshape(n_coeff, -1))
        buf("orient_template", data["orient"])
        buf("orient_blendshapes", data["orient_blendshapes"].reshape(n_coeff, -1))
        buf("phenotype_mask", data["mask"])
        buf("phenotype_projection", data["projection"])
        self._anchor_names = list(data["anchors"])
        for k, v in data["anchors"].items():
            buf(f"anchor_{k}", v)
        ref = data["ref_orient"]
        parent_idx = torch.tensor(parents[1:])
        buf("ref_orient", ref)
        # K_c rotation = U_p^T U_c D_c: the constant part U_p^T U_c (bones 1..nb-1)
        buf("ref_relative", ref[parent_idx].transpose(-1, -2) @ ref[1:])
        self.register_buffer("parent_idx", parent_idx, persistent=False)
        order, local, self._level_slices = _depth_order(parents)
        self.register_buffer("_order", torch.tensor(order[1:]) - 1, persistent=False)  # non-root bones
        self.register_buffer("_inverse_order", torch.argsort(torch.tensor(order)), persistent=False)
        self.register_buffer("_local_parent", torch.tensor(local), persistent=False)
        # keypoints = cat([bone heads, tip vertices])[:, _keypoint_index]
        kp_index = [0] * 21
        for slot, bone in zip(_HEAD_SLOTS, _HEAD_BONES):
            kp_index[slot] = bone
        for f, slot in enumerate((4, 8, 12, 16, 20)):
            kp_index[slot] = self.num_bones + f
        self.register_buffer("_keypoint_index", torch.tensor(kp_index), persistent=False)

        self._rest_cache: tuple | None = None
        buf("tip_template", data["template"][:5])  # placeholders until the tips are known
        buf("tip_blendshapes", data["blendshapes"][:, :5].reshape(n_coeff, -1))
        with torch.no_grad():
            verts, heads, rot, _ = self._rest_uncached(torch.zeros(1, self.num_betas, dtype=dt), True)
            # the root's children must share its head: Anny offsets them by U_0^T, not R_0^T
            root_children = [c for c in range(1, self.num_bones) if parents[c] == 0]
            if (heads[0, root_children] - heads[0, :1]).norm(dim=-1).max() > 1e-6:
                raise RuntimeError("anny: the wrist bone does not start at the root's head")
            can = self._to_canonical(verts, heads, rot)[0]
            can_heads = self._to_canonical(heads, heads, rot)[0]
            can_rot = rot[0, 0].T @ rot[0]
            dominant = self.skinning_weights.argmax(dim=1)
            tips = [
                anatomy.farthest_along(can, dominant == fb[-1], can_heads[fb[-1]], can_rot[fb[-1]][:, 1])
                for fb in _FINGER_BONES
            ]
        self.register_buffer("tip_vertex_ids", torch.tensor(tips), persistent=False)
        buf("tip_template", data["template"][tips])
        buf("tip_blendshapes", data["blendshapes"][:, tips].reshape(n_coeff, -1))
        buf("tip_weights", data["weights"][tips])
        # anatomical frames = reference frames in canonical coordinates; pose is expressed in them
        frames = (rot[0, 0].T @ self.ref_orient[1:]).to(dt)
        self._setup_derived(cfg, frames, frames)

    # ----------------------------------------------------------------------------- rest model
    def _blend_coefficients(self, betas: Tensor) -> Tensor:
        """(Bs, 6) betas → (Bs, C) coefficients of Anny's compact phenotype blend shapes."""
        from anny.models.phenotype import phenotype_blendshape_weights

        anchors = {k: getattr(self, f"anchor_{k}") for k in self._anchor_names}
        w = phenotype_blendshape_weights(
            betas + 0.5, self.phenotype_labels, anchors, self.phenotype_mask, extrapolate=False
        )
        return w @ self.phenotype_projection

    def _rest(
        self, betas: Tensor, with_vertices: bool = True
    ) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        """Anny's rest model for betas (Bs, 6).

        Returns:
            vertices (Bs, V, 3) or None, bone heads (Bs, nb, 3), rest rotations (Bs, nb, 3, 3) and the
            fingertip vertices (Bs, 5, 3), in Anny's world frame. Cached for constant betas that need
            no gradient (the usual case: one shape for a whole sequence).
        """
        if betas.requires_grad:
            return self._rest_uncached(betas, with_vertices)
        if betas.shape[0] > 1 and bool((betas == betas[:1]).all()):
            betas = betas[:1]  # one shape repeated per frame: compute it once, broadcast later
        key = (betas.shape, betas.dtype, betas.device, with_vertices)
        cached = self._rest_cache
        if cached is not None and cached[0] == key and torch.equal(cached[1], betas):
            return cached[2]
        with torch.no_grad():
            out = self._rest_uncached(betas, with_vertices)
        self._rest_cache = (key, betas.detach().clone(), out)
        return out

    def _rest_uncached(
        self, betas: Tensor, with_vertices: bool
    ) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        c = self._blend_coefficients(betas)
        bs, nb = c.shape[0], self.num_bones
        heads = self.heads_template + (c @ self.heads_blendshapes).view(bs, nb, 3)
        m = self.orient_template + (c @ self.orient_blendshapes).view(bs, nb, 3, 3)
        rot = special_procrustes(m)
        verts = self.template + (c @ self.blendshapes).view(bs, -1, 3) if with_vertices else None
        tips = self.tip_template + (c @ self.tip_blendshapes).view(bs, 5, 3)
        return verts, heads, rot, tips

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - nn.Module hook: .to() drops the cache
        self._rest_cache = None
        return super()._apply(fn, recurse)

    @staticmethod
    def _to_canonical(points: Tensor, heads: Tensor, rot: Tensor) -> Tensor:
        """Anny's world (Bs, N, 3) → the root's rest frame: R_0^T (x − h_0)."""
        return (points - heads[:, :1]) @ rot[:, 0]

    def canonical_vertices(self, betas: Tensor | None = None) -> Tensor:
        b = self._betas_or_zero(betas)
        verts, heads, rot, _ = self._rest(b)
        return self._to_canonical(verts, heads, rot)[0]

    def canonical_pose(self, betas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _, _, rot, _ = self._rest(self._betas_or_zero(betas), with_vertices=False)
        rot = rot[0]
        u = self.ref_orient
        p = self.parent_idx
        # W_c = P_0^{-1} P_c for all c  ⇔  D_c = U_c^T U_p R_p^T R_c
        d = u[1:].transpose(-1, -2) @ u[p] @ rot[p].transpose(-1, -2) @ rot[1:]
        return torch.zeros(3, dtype=rot.dtype, device=rot.device), roma.rotmat_to_rotvec(d)

    def _betas_or_zero(self, betas: Tensor | None) -> Tensor:
        if betas is None:
            return self.template.new_zeros(1, self.num_betas)
        return betas.reshape(1, self.num_betas).to(self.template)

    # ---------------------------------------------------------------------------- kinematics
    def _pose_bones(
        self, global_orient: Tensor, pose: Tensor, heads: Tensor, rot: Tensor, transl: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Bone world poses and canonical→posed transforms.

        Returns:
            rotations (B, nb, 3, 3) and heads (B, nb, 3) of the posed bones, and the LBS transforms
            (B, nb, 3, 4) acting on canonical points.
        """
        b = global_orient.shape[0]
        p = self.parent_idx
        k_rot = self.ref_relative @ rotvec_to_rotmat(pose)  # (B, nb-1, 3, 3)
        # K_c translation: R_p^T (h_c − h_p), or U_0^T (h_c − h_0) for the root's children (zero)
        offsets = heads[:, 1:] - heads[:, p]
        k_t = (rot[:, p].transpose(-1, -2) @ offsets[..., None])[..., 0]
        k_t = torch.where((p == 0)[None, :, None], torch.zeros_like(k_t), k_t).expand(b, -1, -1)
        # chain W_c = W_p K_c one depth level at a time, bones in depth order (root first)
        k_rot, k_t = k_rot[:, self._order], k_t[:, self._order]
        rots = [rotvec_to_rotmat(global_orient)[:, None]]
        trans = [transl[:, None]]
        for first, last in self._level_slices[1:]:
            local = self._local_parent[first:last]
            rp, tp = rots[-1][:, local], trans[-1][:, local]
            rots.append(rp @ k_rot[:, first - 1 : last - 1])
            trans.append((rp @ k_t[:, first - 1 : last - 1, :, None])[..., 0] + tp)
        w_rot = torch.cat(rots, dim=1)[:, self._inverse_order]
        w_t = torch.cat(trans, dim=1)[:, self._inverse_order]
        # T'_c = W_c P_c^{-1} P_0 = [G_c R_0 | w_c + G_c (h_0 − h_c)],  G_c = V_c R_c^T
        g = w_rot @ rot.transpose(-1, -2)
        lin = g @ rot[:, :1]
        t_lbs = w_t + (g @ (heads[:, :1] - heads)[..., None])[..., 0]
        return w_rot, w_t, torch.cat([lin, t_lbs[..., None]], dim=-1)

    @staticmethod
    def _skin(points: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
        """LBS of canonical points (Bs, N, 3) with weights (N, nb) and transforms (B, nb, 3, 4)."""
        return linear_blend_skinning(points, weights, transforms)

    def forward(self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> HandOutput:
        global_orient, pose, betas, transl = self.check_inputs(global_orient, pose, betas, transl)
        verts, heads, rot, _ = self._rest(betas)
        can = self._to_canonical(verts, heads, rot)
        _, w_t, tf = self._pose_bones(global_orient, pose, heads, rot, transl)
        vertices = self._skin(can, self.skinning_weights, tf)
        keypoints = self._keypoints(w_t, vertices[:, self.tip_vertex_ids])
        eye_row = tf.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(*tf.shape[:2], 1, 4)
        return HandOutput(
            vertices=vertices, keypoints=keypoints, bone_transforms=torch.cat([tf, eye_row], -2)
        )

    def forward_keypoints(self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> Tensor:
        global_orient, pose, betas, transl = self.check_inputs(global_orient, pose, betas, transl)
        _, heads, rot, tips = self._rest(betas, with_vertices=False)
        _, w_t, tf = self._pose_bones(global_orient, pose, heads, rot, transl)
        tips = self._skin(self._to_canonical(tips, heads, rot), self.tip_weights, tf)
        return self._keypoints(w_t, tips)

    def _keypoints(self, heads: Tensor, tips: Tensor) -> Tensor:
        """Assemble (B, 21, 3) from posed bone heads (B, nb, 3) and tip vertices (B, 5, 3)."""
        return torch.cat([heads, tips], dim=1)[:, self._keypoint_index]


def _depth_order(parents: list[int]) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Bones in depth order (root first) for a level-by-level kinematic chain.

    Returns:
        order: bone ids by depth; local: for each position in ``order``, its parent's position within
        the previous level (root: 0); slices: (first, last) positions of each depth level.
    """
    depth = [0] * len(parents)
    for c in range(1, len(parents)):
        depth[c] = depth[parents[c]] + 1
    order, local, slices = [], [], []
    for d in range(max(depth) + 1):
        level = [c for c in range(len(parents)) if depth[c] == d]
        prev = order[slices[-1][0] : slices[-1][1]] if slices else []
        slices.append((len(order), len(order) + len(level)))
        local += [prev.index(parents[c]) if d > 0 else 0 for c in level]
        order += level
    return order, local, slices
