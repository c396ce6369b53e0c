"""The refinement objective: every term of HOLD §3.4 plus interpenetration and temporal smoothness.

``RefineProblem`` holds what does not change while poses are optimised (meshes, SDF grids, mask
targets, initial shape and scale) and evaluates the unweighted terms for a ``PoseBatch``; the
weights of ``RefineLossConfig`` are applied by :func:`weighted_total`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from hold.config.refine import RefineConfig, RefineLossConfig
from hold.geometry.camera import project
from hold.geometry.rotations import axis_angle_to_matrix
from hold.hand.skinning import knn_skinning_weights, warp_to_canonical
from hold.params import FrameParams
from hold.refine import losses
from hold.refine.geometry import HandGeometry, ObjectGeometry
from hold.refine.raster import render_silhouettes
from hold.refine.scene import PoseBatch, PosedScene, pose_scene, stack_context
from hold.refine.targets import MaskTargets

_FAR = 1e3  # signed distance given to points outside a hand's skinning range (never inside it)


@dataclass
class Context:
    """Already refined frames just before a chunk (fixed), for the smoothness terms across chunks.

    Attributes:
        hand_transl, hand_R: per side (c, 3) and (c, 3, 3).
        obj_transl, obj_R: (c, 3) and (c, 3, 3).
        frames: (c,) their indices.
    """

    hand_transl: dict[str, Tensor]
    hand_R: dict[str, Tensor]
    obj_transl: Tensor
    obj_R: Tensor
    frames: Tensor

    @classmethod
    @torch.no_grad()
    def from_params(cls, params: FrameParams, frames: Tensor) -> Context:
        return cls(
            frames=frames,
            hand_transl={s: h.transl.weight[frames].clone() for s, h in params.hands.items()},
            hand_R={s: axis_angle_to_matrix(h.global_orient.weight[frames]) for s, h in params.hands.items()},
            obj_transl=params.object.transl.weight[frames].clone(),
            obj_R=axis_angle_to_matrix(params.object.rot.weight[frames]),
        )


@dataclass
class Anchors:
    """Hand keypoints at the start of an optimisation, per side: projections (n, 21, 2) in pixels and
    root-relative positions (n, 21, 3) in metres."""

    uv: dict[str, Tensor]
    relative: dict[str, Tensor]


def _root_relative(keypoints: Tensor) -> Tensor:
    return keypoints - keypoints[:, :1]


def weighted_total(terms: dict[str, Tensor], weights: RefineLossConfig) -> Tensor:
    """Σ weight · term over the terms present (every term has a weight of the same name)."""
    names = {f.name for f in fields(weights)}
    unknown = set(terms) - names
    if unknown:
        raise KeyError(f"refinement terms without a weight: {sorted(unknown)}")
    return sum(getattr(weights, k) * v for k, v in terms.items() if getattr(weights, k) != 0)


@dataclass
class RefineProblem:
    """Fixed data of the refinement.

    Attributes:
        hands: per side, the hand geometry. obj: the object geometry (canonical).
        targets: mask targets of every frame at raster size.
        K: (3, 3) full-resolution intrinsics (keypoint anchors).
        cfg: refinement settings.
        initial: the values before refinement (priors, anchors of the object's motion), frozen.
        penetration_ids: (Pp,) indices of the object points tested against the hand.
        fixed_object_rot: (T,) bool, frames whose object rotation stays as it is (``object_rot_frames``).
    """

    hands: dict[str, HandGeometry]
    obj: ObjectGeometry
    targets: MaskTargets
    K: Tensor
    cfg: RefineConfig
    initial: FrameParams
    penetration_ids: Tensor
    fixed_object_rot: Tensor | None = None

    def silhouettes(self, posed: PosedScene) -> tuple[Tensor, dict[str, Tensor]]:
        """Soft silhouettes (n, h, w) of the object and of each hand (its proxy mesh)."""
        t, rc = self.targets, self.cfg.raster
        obj = render_silhouettes(posed.object_vertices, self.obj.faces, t.K, t.size, rc)
        hands = {
            side: render_silhouettes(geo.proxy_vertices(posed.sealed[side]), geo.proxy_faces, t.K, t.size, rc)
            for side, geo in self.hands.items()
        }
        return obj, hands

    def anchors(self, posed: PosedScene) -> Anchors:
        """The hand keypoints of ``posed`` as anchors (detached)."""
        return Anchors(
            uv={
                s: project(o.keypoints, self.K, self.cfg.raster.near).detach() for s, o in posed.hands.items()
            },
            relative={s: _root_relative(o.keypoints).detach() for s, o in posed.hands.items()},
        )

    def terms(
        self,
        batch: PoseBatch,
        context: Context | None = None,
        anchors: Anchors | None = None,
        smooth: bool = True,
    ) -> dict[str, Tensor]:
        """Unweighted terms (scalars) for the batch's current values.

        Args:
            batch: the values being optimised.
            context: fixed preceding frames for the smoothness terms (phase 2).
            anchors: hand keypoints to stay near; None skips those terms.
            smooth: evaluate the smoothness terms (false when the frames are not consecutive).
        """
        cfg, u, f = self.cfg, self.cfg.length_unit, batch.frames
        tg = self.targets
        posed = pose_scene(batch, self.hands, self.obj)
        sil_obj, sil_hands = self.silhouettes(posed)
        out = {"mask_object": losses.silhouette_l1(sil_obj, tg.object_target[f], tg.object_weight[f]).mean()}
        parts: dict[str, list[Tensor]] = {k: [] for k in ("mask_hand", "contact", "penetration_hand")}
        parts |= {"penetration_object": [], "shape_prior": [], "keypoints_2d": [], "keypoints_3d": []}
        object_points_in = posed.object_points[:, self.penetration_ids]
        for side, geo in self.hands.items():
            hand, leaves = posed.hands[side], batch.hands[side]
            target, weight = tg.hand_target[side][f], tg.hand_weight[side][f]
            parts["mask_hand"].append(losses.silhouette_l1(sil_hands[side], target, weight).mean())
            ids = torch.cat(geo.contact_regions)
            dist = losses.nearest_distance(hand.vertices[:, ids], posed.object_points) / u
            local, start = [], 0
            for region in geo.contact_regions:
                local.append(torch.arange(start, start + len(region), device=ids.device))
                start += len(region)
            gaps = losses.contact_gaps(dist, local, cfg.contact_per)
            parts["contact"].append(losses.contact(gaps, cfg.contact_robust_distance / u))
            # Hand vertices inside the object: the object's canonical SDF grid, scaled to metres.
            sdf_h = self.obj.sdf(posed.pose.to_canonical(hand.vertices)) * posed.pose.s / u
            parts["penetration_hand"].append(losses.penetration(sdf_h))
            # Object points inside the sealed hand: inverse skinning into the canonical hand's SDF grid.
            # Skinning weights of the points are found without gradient (they barely change over a
            # step); the inverse of the blended bone transform carries the gradient w.r.t. the poses.
            d, stride = geo.deformer, cfg.skinning_vertex_stride
            with torch.no_grad():
                w, dist = knn_skinning_weights(
                    object_points_in,
                    hand.vertices[:, ::stride],
                    d.model.skinning_weights[::stride],
                    d.k,
                    d.sigma,
                    d.chunk,
                )
            valid = dist < d.max_dist
            x_can = warp_to_canonical(object_points_in, w, hand.bone_transforms)
            x_can = torch.where(valid[..., None], x_can, torch.zeros_like(x_can))
            sdf_o = torch.where(valid, geo.sdf(x_can), torch.full_like(dist, _FAR)) / u
            parts["penetration_object"].append(losses.penetration(sdf_o))
            betas0 = self.initial.hands[side].betas.detach()
            parts["shape_prior"].append(losses.squared_deviation(leaves.betas, betas0))
            if anchors is not None:
                uv = project(hand.keypoints, self.K, cfg.raster.near)
                parts["keypoints_2d"].append(losses.keypoint_anchor(uv, anchors.uv[side]))
                rel = (_root_relative(hand.keypoints) - anchors.relative[side]) / u
                parts["keypoints_3d"].append(rel.square().sum(-1).mean())
        out |= {k: torch.stack(v).sum() for k, v in parts.items() if v}
        out["scale_prior"] = losses.squared_deviation(batch.log_scale, self.initial.object.log_scale.detach())
        out |= self._object_motion(batch, posed, context)
        if smooth:
            out |= self._smoothness(batch, posed, context)
        return out

    def _object_motion(
        self, batch: PoseBatch, posed: PosedScene, context: Context | None
    ) -> dict[str, Tensor]:
        """Keep the object's initial motion: its pose corrections, expressed in its own frame
        (R = R0 ΔR, t = t0 + R0 Δt), should be the same in every frame.

        SfM recovers the object's motion between frames far better than any single frame's placement
        relative to the hand; a correction common to all frames (a change of the canonical frame) is
        free, frame-to-frame changes of the correction are not. A chunk after the first continues the
        correction of its context frames: otherwise each chunk of 10 frames could take a correction of its
        own, and the object's rotation jumps between chunks (suite v1: 0.7° → 5.4° median on a box).
        """
        u = self.cfg.length_unit
        frames = batch.frames if context is None else torch.cat([context.frames, batch.frames])
        R = stack_context(None if context is None else context.obj_R, posed.pose.R)
        t = stack_context(None if context is None else context.obj_transl, batch.obj_transl)
        init = self.initial.object
        R0 = axis_angle_to_matrix(init.rot.weight[frames].detach())
        dR = R0.transpose(1, 2) @ R
        dt = ((t - init.transl.weight[frames].detach())[:, None] @ R0)[:, 0] / u  # R0ᵀ (t − t0)
        fixed = 0 if context is None else len(context.frames)
        return {
            "object_motion_transl": losses.spread(dt, fixed),
            "object_motion_rot": losses.spread(dR, fixed),
        }

    def _smoothness(self, batch: PoseBatch, posed: PosedScene, context: Context | None) -> dict[str, Tensor]:
        u = self.cfg.length_unit
        transl = [stack_context(None if context is None else context.obj_transl, batch.obj_transl)]
        rots = [stack_context(None if context is None else context.obj_R, posed.pose.R)]
        for side, h in batch.hands.items():
            transl.append(stack_context(None if context is None else context.hand_transl[side], h.transl))
            R = axis_angle_to_matrix(h.global_orient)
            rots.append(stack_context(None if context is None else context.hand_R[side], R))
        return {
            "smooth_transl": sum(losses.translation_smoothness(x / u, 0) for x in transl),
            "smooth_transl_accel": sum(losses.translation_smoothness(x / u, 1) for x in transl),
            "smooth_rot": sum(losses.rotation_smoothness(R, 0) for R in rots),
            "smooth_rot_accel": sum(losses.rotation_smoothness(R, 1) for R in rots),
        }
