"""A plausible static grasp: the hand pose that puts the fingertips on the object without penetration.

The hand is first placed analytically (palm against the object's ``approach`` side, fingers curling
around its ``wrap_axis``, thumb along it, fingers pre-shaped), then its global pose and joint angles
are optimised with Adam: fingertip and palm regions are pulled onto the surface, every vertex inside
the object is pushed out, and the joint angles stay within anatomical limits near the pre-shape.
Distances come from point-cloud-utils' mesh signed distance; the gradient flows through the
closest surface point held fixed (the exact gradient of the distance to a fixed surface).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import point_cloud_utils as pcu
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from torch import Tensor

from hold.config.hand import JointLimitsConfig
from hold.data.synthetic.config import GraspConfig
from hold.data.synthetic.objects import ObjectModel, sample_faces
from hold.data.synthetic.render import ray_cast
from hold.hand.anatomy import palm_normal, vertex_normals
from hold.hand.model import HandModel

_MIDDLE_KNUCKLE, _INDEX_KNUCKLE, _LITTLE_KNUCKLE, _WRIST = 9, 5, 17, 0
_FAR = 1.0  # metres: a ray start surely outside any hand-held object


@dataclass
class Grasp:
    """A hand pose in the object's frame and how well it holds the object."""

    global_orient: np.ndarray  # (3,) axis-angle
    pose: np.ndarray  # (J, 3)
    betas: np.ndarray  # (nb,)
    transl: np.ndarray  # (3,) metres
    vertices: np.ndarray  # (V, 3) object frame
    keypoints: np.ndarray  # (21, 3) object frame
    tip_distance: np.ndarray  # (5,) signed surface distance of each fingertip region (thumb..little)
    hand_penetration: float  # deepest hand vertex inside the object, metres (0 if none)
    object_penetration: float  # deepest object vertex inside the (sealed) hand, metres (0 if none)
    steps: int  # optimisation steps taken (it stops early once converged)


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Small tensors run faster on one thread, and one thread makes the sums bit-reproducible."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def exact_signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,) signed distance of points (N, 3) to a closed mesh, negative inside (for the final check)."""
    s, _, _ = pcu.signed_distance_to_mesh(np.asarray(points, np.float64), vertices, faces)
    return np.asarray(s)


class SurfaceDistance:
    """Fast differentiable signed distance to a mesh: point-to-plane distance to the nearest of
    dense surface samples (exact for points whose nearest surface point lies on that sample's face;
    within curvature × spacing² elsewhere near the surface).

    Args:
        vertices: (V, 3) closed mesh; faces (F, 3).
        spacing: mean distance between the surface samples, metres.
        rng: random generator of the samples.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, spacing: float, rng: np.random.Generator):
        tri = vertices[faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = 0.5 * np.linalg.norm(cross, axis=1)
        face, bary = sample_faces(vertices, faces, max(int(area.sum() / spacing**2), len(faces)), rng)
        self.points = np.einsum("nk,nkc->nc", bary, tri[face])
        self.normals = cross[face] / np.maximum(np.linalg.norm(cross[face], axis=1, keepdims=True), 1e-20)
        self.tree = cKDTree(self.points)

    def __call__(self, points: Tensor, bound: float = np.inf) -> Tensor:
        """(N, 3) → (N,) signed distances, differentiable in the points.

        Points farther than ``bound`` from the surface get ``bound`` (no gradient): a cheaper query.
        """
        dist, idx = self.tree.query(
            points.detach().cpu().numpy().astype(np.float64), distance_upper_bound=bound
        )
        near = torch.as_tensor(np.isfinite(dist))
        idx = np.minimum(idx, len(self.points) - 1)
        s = torch.as_tensor(self.points[idx], dtype=points.dtype)
        n = torch.as_tensor(self.normals[idx], dtype=points.dtype)
        return torch.where(near, ((points - s) * n).sum(1), torch.full_like(points[:, 0], bound))


def _hand_frame(keypoints: Tensor, side: str) -> np.ndarray:
    """(3, 3) columns: finger direction, palm normal, their cross product (right-handed)."""
    kp = keypoints.detach().double()
    n = palm_normal(kp, side).numpy()
    f = (kp[_MIDDLE_KNUCKLE] - kp[_WRIST]).numpy()
    f = f - (f @ n) * n
    f /= np.linalg.norm(f)
    return np.stack([f, n, np.cross(f, n)], 1)


def _anatomical_matrices(hand: HandModel) -> Tensor:
    """(J, 3, 3) A with pose_to_anatomical(pose)_j = A_j pose_j."""
    basis = torch.eye(3, dtype=hand.skinning_weights.dtype)
    cols = [hand.pose_to_anatomical(basis[i].expand(1, hand.num_pose_joints, 3))[0] for i in range(3)]
    return torch.stack(cols, -1)


def _preshape(hand: HandModel, cfg: GraspConfig) -> Tensor:
    """(J, 3) anatomical angles (flexion, twist, spread) of the pre-shaped grasp."""
    flex = {
        "thumb_mcp": cfg.thumb_preshape[0],
        "thumb_ip": cfg.thumb_preshape[1],
        "mcp": cfg.finger_preshape[0],
        "pip": cfg.finger_preshape[1],
        "dip": cfg.finger_preshape[2],
    }
    anat = torch.zeros(hand.num_pose_joints, 3, dtype=hand.skinning_weights.dtype)
    anat[:, 0] = torch.tensor([flex.get(t, 0.0) for t in hand.joint_types])
    anat[[t == "thumb_cmc" for t in hand.joint_types]] = torch.tensor(
        cfg.thumb_cmc_preshape, dtype=anat.dtype
    )
    return anat


def _initial_placement(
    hand: HandModel, obj: ObjectModel, cfg: GraspConfig, pose: Tensor, betas: Tensor, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Global orientation (3,) and translation (3,) that lay the palm on the object's approach side."""
    zero = torch.zeros(1, 3, dtype=pose.dtype)
    with torch.no_grad():
        rest = hand(zero, pose[None], betas[None], zero)
    frame_rest = _hand_frame(rest.keypoints[0], hand.side)
    wrap = obj.wrap_axis / np.linalg.norm(obj.wrap_axis)
    azimuth = np.deg2rad(cfg.approach_deg + rng.uniform(-1, 1) * cfg.approach_jitter_deg)
    approach = Rotation.from_rotvec(wrap * azimuth).apply(obj.approach)
    approach = approach - (approach @ wrap) * wrap
    approach /= np.linalg.norm(approach)
    normal = -approach  # the palm faces the object
    best = None
    for sign in (1.0, -1.0):  # pick the finger direction that puts the thumb along +wrap_axis
        fingers = sign * np.cross(wrap, approach)
        target = np.stack([fingers, normal, np.cross(fingers, normal)], 1)
        R = target @ frame_rest.T
        thumb = R @ (rest.keypoints[0, 4] - rest.keypoints[0, 1]).double().numpy()
        if best is None or thumb @ wrap > best[0]:
            best = (thumb @ wrap, R)
    R = best[1]
    go = Rotation.from_matrix(R).as_rotvec()
    with torch.no_grad():
        turned = hand(torch.as_tensor(go, dtype=pose.dtype)[None], pose[None], betas[None], zero)
    palm_skin = turned.vertices[0, hand.contact_vertex_ids().palm].mean(0).double().numpy()
    # Surface point on the approach side at the chosen height along the wrap axis.
    along = obj.vertices @ wrap
    height = along.min() + cfg.height_fraction * (along.max() - along.min())
    origin = wrap * height + approach * _FAR
    fid, _, t = ray_cast(obj.vertices, obj.faces, origin[None], -approach[None])
    if fid[0] < 0:
        raise ValueError(f"object {obj.name}: no surface on the approach side at the grasp height")
    hit = origin - approach * float(t[0])
    transl = hit + approach * cfg.palm_gap_m - palm_skin
    return go, transl


def _hand_surface_distance(probes: Tensor, verts: Tensor, normals: Tensor, bound: float) -> Tensor:
    """(P,) signed distance of probe points to the hand: point-to-plane to the nearest vertex.

    Probes farther than ``bound`` from every vertex get ``bound`` (no gradient).
    """
    tree = cKDTree(verts.detach().numpy())
    dist, idx = tree.query(probes.numpy(), distance_upper_bound=bound)
    near = np.isfinite(dist)
    out = torch.full((len(probes),), bound, dtype=verts.dtype)
    i = torch.as_tensor(idx[near])
    out[torch.as_tensor(near)] = ((probes[near] - verts[i]) * normals[i]).sum(1)
    return out


def optimise_grasp(hand: HandModel, obj: ObjectModel, cfg: GraspConfig, rng: np.random.Generator) -> Grasp:
    """Find a grasp of ``obj`` (object frame) by the average-shaped hand.

    Args:
        hand: hand model.
        obj: the object, its own frame.
        cfg: grasp settings.
        rng: random generator (jitter of the approach, surface samples).
    """
    with _single_thread():
        dtype = hand.skinning_weights.dtype
        A = _anatomical_matrices(hand)
        anat0 = _preshape(hand, cfg)
        to_pose = lambda anat: torch.linalg.solve(A, anat[..., None])[..., 0]  # noqa: E731
        betas = torch.zeros(hand.num_betas, dtype=dtype)
        go0, transl0 = _initial_placement(hand, obj, cfg, to_pose(anat0), betas, rng)
        lo, hi = hand.pose_limits(JointLimitsConfig())
        contacts = hand.contact_vertex_ids()
        tip_ids = torch.cat(contacts.tips)
        tip_sizes = [len(ids) for ids in contacts.tips]
        with torch.no_grad():
            init = hand(torch.as_tensor(go0, dtype=dtype)[None], to_pose(anat0)[None], betas[None],
                        torch.as_tensor(transl0, dtype=dtype)[None]).vertices[0]  # fmt: skip
        palm0 = init[contacts.palm].mean(0)
        wrap = torch.as_tensor(obj.wrap_axis / np.linalg.norm(obj.wrap_axis), dtype=dtype)
        # Object points that could end up inside the hand: those near where it starts.
        near, _ = cKDTree(init.numpy()).query(obj.vertices, distance_upper_bound=cfg.probe_radius_m)
        probes = torch.as_tensor(obj.vertices[np.isfinite(near)][:: cfg.probe_stride], dtype=dtype)
        go = torch.tensor(go0, dtype=dtype, requires_grad=True)
        tr = torch.tensor(transl0 / cfg.transl_scale, dtype=dtype, requires_grad=True)
        anat = anat0.clone().requires_grad_(True)
        opt = torch.optim.Adam([go, tr, anat], lr=cfg.lr)
        # Decay the step size so the contacts settle instead of jittering by a millimetre.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, cfg.steps, eta_min=cfg.lr * cfg.lr_final_factor
        )
        distance = SurfaceDistance(obj.vertices, obj.faces, cfg.sdf_sample_spacing_m, rng)
        unit, margin = cfg.loss_unit_m, cfg.surface_margin_m / cfg.loss_unit_m
        tip_weights = torch.tensor(cfg.tip_weights, dtype=dtype)
        for step in range(cfg.steps):
            opt.zero_grad()
            verts = hand(go[None], to_pose(anat)[None], betas[None], (tr * cfg.transl_scale)[None]).vertices[
                0
            ]
            sd = distance(verts) / unit
            tips = torch.stack([t.min() for t in torch.split(sd[tip_ids], tip_sizes)])
            normals = vertex_normals(verts, hand.faces)
            sd_obj = _hand_surface_distance(probes, verts, normals, cfg.probe_depth_m)
            sd_obj = sd_obj / unit
            # Keep the grasp where it was placed: no sliding along the wrap axis towards a thinner part.
            slide = (verts[contacts.palm].mean(0) - palm0) @ wrap / unit
            loss = (
                cfg.contact_weight * (tip_weights * ((tips - margin).abs() + (tips - margin) ** 2)).sum()
                + cfg.palm_weight * (sd[contacts.palm].min() - margin) ** 2
                + cfg.penetration_weight * ((torch.relu(-sd) ** 2).sum() + (torch.relu(-sd_obj) ** 2).sum())
                + cfg.pose_prior_weight * ((anat - anat0) ** 2).sum()
                + cfg.limit_weight * ((torch.relu(anat - hi) + torch.relu(lo - anat)) ** 2).sum()
                + cfg.anchor_weight * slide**2
            )
            if (step + 1) % cfg.check_every == 0 and _converged(tips, sd, sd_obj, cfg):
                break
            loss.backward()
            opt.step()
            schedule.step()
        with torch.no_grad():
            pose = to_pose(anat)
            out = hand(go[None], pose[None], betas[None], (tr * cfg.transl_scale)[None])
            verts = out.vertices[0].double()
            sd = torch.as_tensor(exact_signed_distance(verts.numpy(), obj.vertices, obj.faces))
            tips = torch.stack([sd[ids].min() for ids in contacts.tips])
            obj_sd = exact_signed_distance(obj.vertices, hand.seal(verts).numpy(), hand.sealed_faces.numpy())
    return Grasp(
        global_orient=go.detach().double().numpy(),
        pose=pose.double().numpy(),
        betas=betas.double().numpy(),
        transl=(tr.detach() * cfg.transl_scale).double().numpy(),
        vertices=verts.numpy(),
        keypoints=out.keypoints[0].double().numpy(),
        tip_distance=tips.numpy(),
        hand_penetration=float(max(0.0, -sd.min().item())),
        object_penetration=float(max(0.0, -np.min(obj_sd))),
        steps=step + 1,
    )


def _converged(tips: Tensor, sd: Tensor, sd_obj: Tensor, cfg: GraspConfig) -> bool:
    """Every fingertip well within tolerance and no penetration worth the name (distances in loss units)."""
    unit = cfg.loss_unit_m
    touching = (tips.detach().abs() < cfg.converged_fraction * cfg.contact_tolerance_m / unit).all()
    deepest = -min(sd.detach().min().item(), sd_obj.detach().min().item())
    return bool(touching) and deepest < cfg.converged_fraction * cfg.penetration_tolerance_m / unit
