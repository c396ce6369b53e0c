"""The parameters one refinement step optimises and the posed hand/object meshes they produce.

A ``PoseBatch`` holds copies of the rows of ``FrameParams`` for the frames being refined, as leaf
tensors with their own optimiser groups; ``write_back`` returns them to the tables. ``pose_scene``
poses the hand model(s) and the canonical object (``x_cam = R (s x_can) + t``) for those frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hold.config.refine import RefineConfig
from hold.geometry.camera import ObjectPose
from hold.geometry.rotations import axis_angle_to_matrix
from hold.hand.model import HandOutput
from hold.params import FrameParams
from hold.refine.geometry import HandGeometry, ObjectGeometry


@dataclass
class HandLeaves:
    """One hand's optimised values for n frames: global_orient (n, 3), pose (n, J, 3), transl (n, 3),
    betas (B,) shared."""

    global_orient: Tensor
    pose: Tensor
    transl: Tensor
    betas: Tensor


@dataclass
class PoseBatch:
    """The values refined for the frames ``frames`` (n,): hands, object rot (n, 3), transl (n, 3) and
    the shared log scale ()."""

    frames: Tensor
    hands: dict[str, HandLeaves]
    obj_rot: Tensor
    obj_transl: Tensor
    log_scale: Tensor

    @classmethod
    def from_params(
        cls,
        params: FrameParams,
        frames: Tensor,
        cfg: RefineConfig,
        shared: bool,
        fixed_rot: Tensor | None = None,
    ) -> PoseBatch:
        """Copy the rows of ``frames``; ``shared`` also optimises β and s (phase 1), as configured.
        ``fixed_rot`` (n,) bool marks frames whose object rotation stays: their gradient rows are zeroed,
        and Adam never moves a row whose gradient stays zero."""

        def leaf(t: Tensor, grad: bool) -> Tensor:
            return t.detach().clone().requires_grad_(grad)

        hands = {}
        for side, hp in params.hands.items():
            hands[side] = HandLeaves(
                global_orient=leaf(hp.global_orient.weight[frames], cfg.optimize_hand_rot),
                pose=leaf(hp.pose.weight[frames].reshape(len(frames), -1, 3), cfg.optimize_articulation),
                transl=leaf(hp.transl.weight[frames], True),
                betas=leaf(hp.betas, shared and cfg.optimize_betas),
            )
        obj = params.object
        obj_rot = leaf(obj.rot.weight[frames], True)
        if fixed_rot is not None and bool(fixed_rot.any()):
            moving = (~fixed_rot).to(obj_rot.dtype)[:, None]
            obj_rot.register_hook(lambda grad: grad * moving)
        return cls(
            frames=frames,
            hands=hands,
            obj_rot=obj_rot,
            obj_transl=leaf(obj.transl.weight[frames], True),
            log_scale=leaf(obj.log_scale, shared and cfg.optimize_scale),
        )

    def param_groups(self, cfg: RefineConfig) -> list[dict]:
        """Adam groups with their learning rates; frozen values are left out."""
        groups = {
            "rot": ([self.obj_rot] + [h.global_orient for h in self.hands.values()], cfg.lr_rot),
            "transl": ([self.obj_transl] + [h.transl for h in self.hands.values()], cfg.lr_transl),
            "pose": ([h.pose for h in self.hands.values()], cfg.lr_pose),
            "betas": ([h.betas for h in self.hands.values()], cfg.lr_betas),
            "scale": ([self.log_scale], cfg.lr_scale),
        }
        out = []
        for name, (tensors, lr) in groups.items():
            trainable = [t for t in tensors if t.requires_grad]
            if trainable:
                out.append({"name": name, "params": trainable, "lr": lr})
        return out

    @torch.no_grad()
    def write_back(self, params: FrameParams, per_frame: bool, shared: bool) -> None:
        """Copy the refined values into ``params``: the frames' rows and/or the shared β and s."""
        f = self.frames
        for side, h in self.hands.items():
            hp = params.hands[side]
            if per_frame:
                hp.global_orient.weight[f] = h.global_orient
                hp.pose.weight[f] = h.pose.reshape(len(f), -1)
                hp.transl.weight[f] = h.transl
            if shared:
                hp.betas.copy_(h.betas)
        if per_frame:
            params.object.rot.weight[f] = self.obj_rot
            params.object.transl.weight[f] = self.obj_transl
        if shared:
            params.object.log_scale.copy_(self.log_scale)


@dataclass
class PosedScene:
    """Hand(s) and object posed for the frames of a batch, camera frame, metres.

    Attributes:
        hands: per side, the hand model's output (vertices (n, V, 3), keypoints, bone transforms).
        sealed: per side, (n, V + h, 3) vertices of the sealed (watertight) hand mesh.
        pose: the object's pose in those frames.
        object_vertices: (n, Vo, 3) vertices of the decimated object mesh.
        object_points: (n, P, 3) object surface samples.
    """

    hands: dict[str, HandOutput]
    sealed: dict[str, Tensor]
    pose: ObjectPose
    object_vertices: Tensor
    object_points: Tensor


def pose_scene(batch: PoseBatch, hands: dict[str, HandGeometry], obj: ObjectGeometry) -> PosedScene:
    """Pose every hand and the object for the batch's frames."""
    posed, sealed = {}, {}
    for side, h in batch.hands.items():
        model = hands[side].model
        out = model(h.global_orient, h.pose, h.betas, h.transl)
        posed[side], sealed[side] = out, model.seal(out.vertices)
    pose = ObjectPose(axis_angle_to_matrix(batch.obj_rot), batch.obj_transl, batch.log_scale.exp())
    return PosedScene(posed, sealed, pose, pose.to_camera(obj.vertices), pose.to_camera(obj.points))


def stack_context(context: Tensor | None, values: Tensor) -> Tensor:
    """Prepend fixed context values (c, ...) of the preceding frames to the batch's values (n, ...)."""
    return values if context is None or len(context) == 0 else torch.cat([context.detach(), values])
