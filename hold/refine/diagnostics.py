"""Per-frame residuals of a hand–object reconstruction: mask agreement, fingertip gaps, penetration.

Written to ``RUN/stage2/residuals.json`` before and after refinement, and used by the refinement
benchmark. Distances are exact (point-cloud-utils signed distance to the full-resolution object mesh),
not the grid approximations the optimisation uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from torch import Tensor

from hold.geometry.mesh import signed_distance
from hold.params import FrameParams
from hold.refine.scene import PoseBatch, PosedScene, pose_scene
from hold.refine.terms import RefineProblem
from hold.utils.units import M_TO_MM


def interaction_metrics(
    hand_vertices: np.ndarray,
    tips: list[np.ndarray],
    mesh: trimesh.Trimesh,
    R: np.ndarray,
    t: np.ndarray,
    s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fingertip–object gaps and hand-in-object penetration depth per frame.

    Args:
        hand_vertices: (T, V, 3) posed hand vertices, camera frame, metres.
        tips: vertex ids of each fingertip region (thumb..little).
        mesh: the object mesh in its canonical frame (watertight).
        R, t, s: object pose per frame (T, 3, 3), (T, 3) and the scale: x_cam = R (s x) + t.

    Returns:
        gaps (T, len(tips)): distance from each fingertip region to the object surface, 0 when it
        touches or penetrates; depth (T,): deepest hand vertex inside the object (0 if none). Metres.
    """
    x = np.einsum("tvi,tij->tvj", hand_vertices - t[:, None], R) / s
    sd = signed_distance(x.reshape(-1, 3), np.asarray(mesh.vertices), np.asarray(mesh.faces))
    sd = sd.reshape(x.shape[:2]) * s
    gaps = np.stack([np.clip(sd[:, ids].min(1), 0, None) for ids in tips], 1)
    return gaps, np.clip(-sd.min(1), 0, None)


def _iou(sil: Tensor, target: Tensor, weight: Tensor) -> np.ndarray:
    """IoU of silhouettes > 0.5 and masks > 0.5 over the pixels that count for the node. → (n,)"""
    s, m, c = sil > 0.5, target > 0.5, weight > 0.5
    inter = (s & m & c).sum((1, 2)).float()
    union = ((s | m) & c).sum((1, 2)).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter)).cpu().numpy()


@dataclass
class Residuals:
    """Per-frame residuals (T,) and their means.

    Attributes:
        iou_object, iou_hand: mask IoU of the object and of the hands (mean over sides).
        tip_gap_mm: (T, 5) fingertip–object gap per finger (first hand).
        penetration_mm: (T,) deepest hand vertex inside the object (first hand).
    """

    iou_object: np.ndarray
    iou_hand: np.ndarray
    tip_gap_mm: np.ndarray
    penetration_mm: np.ndarray

    def summary(self) -> dict[str, float]:
        return {
            "iou_object": float(self.iou_object.mean()),
            "iou_hand": float(self.iou_hand.mean()),
            "tip_gap_mm": float(self.tip_gap_mm.mean()),
            "penetration_mm": float(self.penetration_mm.mean()),
        }

    def per_frame(self) -> dict[str, list]:
        r = lambda a: np.round(a, 4).tolist()  # noqa: E731
        return {
            "iou_object": r(self.iou_object),
            "iou_hand": r(self.iou_hand),
            "tip_gap_mm": r(self.tip_gap_mm),
            "penetration_mm": r(self.penetration_mm),
        }


@torch.no_grad()
def silhouette_chunks(
    params: FrameParams, problem: RefineProblem, chunk: int = 16
) -> Iterator[tuple[Tensor, PosedScene, Tensor, dict[str, Tensor]]]:
    """Every frame's posed scene and soft silhouettes (object, per hand) for the values in ``params``,
    ``chunk`` frames at a time: (frames, posed, object silhouettes, hand silhouettes)."""
    T = params.object.rot.num_embeddings
    for start in range(0, T, chunk):
        frames = torch.arange(start, min(T, start + chunk), device=problem.K.device)
        posed = pose_scene(
            PoseBatch.from_params(params, frames, problem.cfg, False), problem.hands, problem.obj
        )
        yield frames, posed, *problem.silhouettes(posed)


@torch.no_grad()
def frame_residuals(params: FrameParams, problem: RefineProblem, chunk: int = 16) -> Residuals:
    """Residuals of every frame for the values in ``params``."""
    tg = problem.targets
    iou_o, iou_h, verts, Rs, ts = [], [], [], [], []
    side0 = next(iter(problem.hands))
    for frames, posed, sil_o, sil_h in silhouette_chunks(params, problem, chunk):
        iou_o.append(_iou(sil_o, tg.object_target[frames], tg.object_weight[frames]))
        sides = [_iou(sil_h[s], tg.hand_target[s][frames], tg.hand_weight[s][frames]) for s in sil_h]
        iou_h.append(np.mean(sides, axis=0))
        verts.append(posed.hands[side0].vertices.cpu().numpy())
        Rs.append(posed.pose.R.cpu().numpy())
        ts.append(posed.pose.t.cpu().numpy())
    s = float(params.object.scale)
    tips = [ids.cpu().numpy() for ids in problem.hands[side0].tips]
    gaps, depth = interaction_metrics(
        np.concatenate(verts), tips, problem.obj.mesh, np.concatenate(Rs), np.concatenate(ts), s
    )
    return Residuals(
        iou_object=np.concatenate(iou_o),
        iou_hand=np.concatenate(iou_h),
        tip_gap_mm=gaps * M_TO_MM,
        penetration_mm=depth * M_TO_MM,
    )
