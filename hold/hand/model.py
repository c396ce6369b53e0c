"""The hand-model interface shared by the Anny and MANO adapters.

Conventions (docs/formats.md): metres, radians, camera frame = world frame. A hand model maps
``global_orient (B, 3)``, ``pose (B, J, 3)`` (axis-angle per articulated joint), ``betas (B, nb)`` and
``transl (B, 3)`` to posed vertices, the 21 keypoints in the common order and the per-bone LBS
transforms. The *canonical* space is the model's rest mesh for the given betas: the points that the
bone transforms move. Subclasses fill in the geometry; everything derived from it (sealed mesh,
contact regions, joint limits) is computed here once, from the model's own canonical mesh.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hold.config.hand import HandConfig, JointLimitsConfig
from hold.hand import anatomy
from hold.hand.spec import HAND_MODEL_SPECS

KEYPOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{i}" for finger in ("thumb", "index", "middle", "ring", "little") for i in range(1, 5)
)
"""The 21 keypoints in the common order: wrist, then each finger from base to tip (docs/formats.md)."""
FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
FINGER_KEYPOINTS: tuple[tuple[int, int, int, int], ...] = tuple(
    (1 + 4 * f, 2 + 4 * f, 3 + 4 * f, 4 + 4 * f) for f in range(5)
)
"""Keypoint indices of each finger, base to tip."""
TIP_KEYPOINTS: tuple[int, ...] = (4, 8, 12, 16, 20)
PALM_KEYPOINTS: tuple[int, ...] = (0, 1, 5, 9, 13, 17)
"""Wrist, thumb base and the four knuckles: nearly rigid with the back of the hand."""


@dataclass
class HandOutput:
    """Posed hand.

    Attributes:
        vertices: (B, V, 3) metres, camera frame.
        keypoints: (B, 21, 3) in ``KEYPOINT_NAMES`` order.
        bone_transforms: (B, nb, 4, 4) rigid transforms mapping canonical (rest) points to posed
            points; ``vertices ≈ Σ_b w_vb · T_b · canonical_v`` (exact for Anny; MANO adds its
            pose-corrective offsets).
    """

    vertices: Tensor
    keypoints: Tensor
    bone_transforms: Tensor


@dataclass
class ContactVertices:
    """Vertex ids of the regions that touch a held object, per finger in thumb..little order.

    Attributes:
        tips: five (n_k,) LongTensors, the fingertip caps.
        pads: five (m_k,) LongTensors, the palm-side skin of the distal phalanges.
        palm: (p,) LongTensor, the palm-side skin between the wrist crease and the knuckles.
    """

    tips: tuple[Tensor, ...]
    pads: tuple[Tensor, ...]
    palm: Tensor

    def all(self) -> Tensor:
        """(n,) sorted unique ids of every contact vertex."""
        return torch.unique(torch.cat([*self.tips, *self.pads, self.palm]))


class HandModel(nn.Module, ABC):
    """Abstract hand model; ``AnnyHand`` and ``ManoHand`` implement it.

    Attributes:
        side: ``"right"`` or ``"left"``.
        name: ``"anny"`` or ``"mano"``.
        num_pose_joints: J, articulated joints in ``pose``.
        num_betas: nb_shape, size of ``betas``.
        num_bones: nb, skinning bones (columns of ``skinning_weights``).
        faces: (F, 3) LongTensor buffer; the mesh is open at the wrist.
        skinning_weights: (V, nb) buffer, rows sum to 1.
        sealed_faces: (F + h, 3) LongTensor buffer; faces of the mesh with the wrist capped by a fan
            around one extra vertex per hole (see ``seal``).
        tip_vertex_ids: (5,) LongTensor buffer, the vertex used as each fingertip keypoint.
        joint_frames: (J, 3, 3) buffer, each articulated joint's anatomical frame in canonical
            coordinates, columns (flexion axis, bone axis, palm side).
    """

    side: str
    name: str
    num_pose_joints: int
    num_betas: int
    num_bones: int
    faces: Tensor
    skinning_weights: Tensor
    sealed_faces: Tensor
    tip_vertex_ids: Tensor

    joint_types: tuple[str, ...]
    """Per articulated joint, its type: a ``JointLimitsConfig`` field name."""
    finger_joints: tuple[tuple[int, ...], ...]
    """Indices (into ``pose``) of each finger's joints, thumb..little (Anny: metacarpal included)."""
    distal_joints: tuple[int, ...]
    """Index (into ``pose``) of each finger's distal joint, thumb..little."""
    finger_bones: tuple[tuple[int, ...], ...]
    """Skinning bones of each finger, base to tip (the last is the distal phalanx)."""
    palm_bones: tuple[int, ...]
    """Skinning bones of the palm."""

    def __init__(self, side: str) -> None:
        super().__init__()
        if side not in ("right", "left"):
            raise ValueError(f"side: expected 'right' or 'left', found {side!r}")
        self.side = side

    # ----------------------------------------------------------------------------- abstract API
    @abstractmethod
    def forward(self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> HandOutput:
        """Pose the hand.

        Args:
            global_orient: (B, 3) axis-angle of the root.
            pose: (B, J, 3) axis-angle per articulated joint.
            betas: (B, nb_shape), or (nb_shape,) / (1, nb_shape) shared by the batch.
            transl: (B, 3) metres.

        Returns:
            HandOutput with vertices (B, V, 3), keypoints (B, 21, 3), bone_transforms (B, nb, 4, 4).
        """

    @abstractmethod
    def canonical_vertices(self, betas: Tensor | None = None) -> Tensor:
        """(V, 3) canonical (rest) mesh for betas (nb_shape,) (None: the average hand)."""

    @abstractmethod
    def canonical_pose(self, betas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Parameters that reproduce the canonical mesh with ``transl = 0``.

        Returns:
            global_orient (3,) and pose (J, 3): ``forward`` with them gives ``canonical_vertices``
            and identity bone transforms.
        """

    def forward_keypoints(self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> Tensor:
        """(B, 21, 3) keypoints only; subclasses skip the full mesh where they can (fitting)."""
        return self.forward(global_orient, pose, betas, transl).keypoints

    # ------------------------------------------------------------------------------- helpers
    def check_inputs(
        self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Validate shapes; broadcast ``betas`` to ``(Bs, nb_shape)`` with Bs ∈ {1, B}.

        Raises:
            ValueError: naming the argument, the expected and the found shape.
        """
        if global_orient.dim() != 2 or global_orient.shape[1] != 3:
            raise ValueError(f"global_orient: expected shape (B, 3), found {tuple(global_orient.shape)}")
        b = global_orient.shape[0]
        j = self.num_pose_joints
        if pose.shape != (b, j, 3):
            raise ValueError(f"pose: expected shape ({b}, {j}, 3), found {tuple(pose.shape)}")
        if transl.shape != (b, 3):
            raise ValueError(f"transl: expected shape ({b}, 3), found {tuple(transl.shape)}")
        nb = self.num_betas
        if betas.dim() == 1:
            betas = betas[None]
        if betas.dim() != 2 or betas.shape[1] != nb or betas.shape[0] not in (1, b):
            raise ValueError(
                f"betas: expected shape ({b}, {nb}), (1, {nb}) or ({nb},), found {tuple(betas.shape)}"
            )
        return global_orient, pose, betas, transl

    def zero_params(self, batch_size: int = 1) -> dict[str, Tensor]:
        """Zero ``global_orient``, ``pose``, ``betas``, ``transl`` for a batch, on the model's device."""
        ref = self.skinning_weights
        z = lambda *s: torch.zeros(*s, dtype=ref.dtype, device=ref.device)  # noqa: E731
        return dict(
            global_orient=z(batch_size, 3),
            pose=z(batch_size, self.num_pose_joints, 3),
            betas=z(batch_size, self.num_betas),
            transl=z(batch_size, 3),
        )

    def canonical_output(self, betas: Tensor | None = None) -> HandOutput:
        """The canonical hand posed by ``canonical_pose``: batch of one, identity bone transforms."""
        go, pose = self.canonical_pose(betas)
        b = torch.zeros(self.num_betas, dtype=go.dtype, device=go.device) if betas is None else betas
        return self.forward(go[None], pose[None], b[None], torch.zeros_like(go)[None])

    def seal(self, vertices: Tensor) -> Tensor:
        """Append the cap centre of each wrist hole: (..., V, 3) → (..., V + h, 3) for ``sealed_faces``."""
        centres = [vertices[..., loop, :].mean(dim=-2, keepdim=True) for loop in self._loops()]
        return torch.cat([vertices, *centres], dim=-2)

    def sealed_canonical_mesh(self, betas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Watertight canonical mesh for the SDF prior: vertices (V + h, 3) and faces (F + h', 3)."""
        return self.seal(self.canonical_vertices(betas)), self.sealed_faces

    def contact_vertex_ids(self) -> ContactVertices:
        """Contact regions (tips, pads, palm) derived from the canonical mesh; see ``anatomy``."""
        ids, labels = self._contact_ids, self._contact_labels
        tips = tuple(ids[labels == k] for k in range(5))
        pads = tuple(ids[labels == 5 + k] for k in range(5))
        return ContactVertices(tips=tips, pads=pads, palm=ids[labels == 10])

    def pose_to_anatomical(self, pose: Tensor) -> Tensor:
        """(B, J, 3) pose → axis-angle in each joint's anatomical frame (x flexion, y twist, z spread)."""
        return torch.einsum("jik,bjk->bji", self._pose_frames, pose)

    def pose_limits(self, cfg: JointLimitsConfig) -> tuple[Tensor, Tensor]:
        """Lower and upper bounds (J, 3) of ``pose_to_anatomical(pose)``, mirrored for a left hand."""
        rows = torch.tensor([getattr(cfg, t) for t in self.joint_types], dtype=torch.float64)
        lo, hi = rows[:, 0::2].clone(), rows[:, 1::2].clone()
        if self.side == "left":  # the mirror image flips the sense of twist and spread
            lo[:, 1:], hi[:, 1:] = -rows[:, 1::2][:, 1:], -rows[:, 0::2][:, 1:]
        ref = self.skinning_weights
        return lo.to(ref), hi.to(ref)

    def anatomical_to_pose(self, angles: Tensor) -> Tensor:
        """Inverse of ``pose_to_anatomical``: (B, J, 3) anatomical axis-angles → ``pose``."""
        return torch.einsum("jki,bjk->bji", self._pose_frames, angles)

    def sample_pose(
        self, limits: JointLimitsConfig, n: int, generator: torch.Generator | None = None, scale: float = 1.0
    ) -> Tensor:
        """(n, J, 3) random poses, each anatomical angle uniform in ``scale ×`` its limits."""
        lo, hi = self.pose_limits(limits)
        u = torch.rand(n, *lo.shape, generator=generator).to(lo)
        return self.anatomical_to_pose(scale * (lo + u * (hi - lo)))

    # ------------------------------------------------------------------------ shared set-up
    def _setup_derived(self, cfg: HandConfig, joint_frames: Tensor, pose_frames: Tensor) -> None:
        """Compute and register the geometry derived from the average canonical mesh.

        Args:
            cfg: hand config (contact thresholds).
            joint_frames: (J, 3, 3) anatomical frame of each articulated joint in canonical
                coordinates, columns (flexion axis, bone axis, palm side).
            pose_frames: (J, 3, 3) frames in which ``pose`` is expressed; ``pose_to_anatomical``
                applies ``joint_frames^T · pose_frames`` (a world vector's components in the joint frame).
        """
        spec = HAND_MODEL_SPECS[self.name]
        if (spec.num_pose_joints, spec.num_betas) != (self.num_pose_joints, self.num_betas):
            raise RuntimeError(f"{self.name}: sizes disagree with hold.hand.spec: {spec}")
        sealed, loops = anatomy.seal_holes(self.faces, self.skinning_weights.shape[0])
        self.register_buffer("sealed_faces", sealed, persistent=False)
        self._num_loops = len(loops)
        for i, loop in enumerate(loops):
            self.register_buffer(f"_loop{i}", loop, persistent=False)
        self.register_buffer("joint_frames", joint_frames, persistent=False)
        self.register_buffer(
            "_pose_frames", torch.einsum("jki,jkl->jil", joint_frames, pose_frames), persistent=False
        )
        with torch.no_grad():
            verts = self.canonical_vertices()
            keypoints = self.canonical_output().keypoints[0]
        ids, labels = anatomy.contact_regions(
            verts,
            self.faces,
            self.skinning_weights,
            keypoints,
            joint_frames,
            self.finger_bones,
            self.palm_bones,
            self.distal_joints,
            self.side,
            tip_radius=cfg.contact_tip_radius,
            normal_cos=cfg.contact_normal_cos,
            palm_start=cfg.contact_palm_start,
        )
        self.register_buffer("_contact_ids", ids, persistent=False)
        self.register_buffer("_contact_labels", labels, persistent=False)

    def _loops(self) -> list[Tensor]:
        return [getattr(self, f"_loop{i}") for i in range(self._num_loops)]
