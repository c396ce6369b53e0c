"""Step ``align``: put the hand and the SfM object in one metric camera frame (HOLD's h, o, ho phases).

HOLD (generator/scripts/align_hands_object.py) optimises, in three runs:
  * ``h``: the hand translations against the 2D keypoints (Geman-McClure);
  * ``o``: the object scale and translations: a coarse contact term (L1 between the hand-vertex and
    object-point centroids), the reprojection of the SfM points onto their SfM projections and a
    term keeping the object in front of the camera;
  * ``ho``: everything jointly plus the smoothness of both centroids.
We follow it with two changes. The object translation is ``t_o = s · u_t + δ_t`` (``u_t`` from step
``sfm``), so the SfM reprojection does not depend on the scale s and pins only δ; and ``ho`` first
searches s on a log grid for the best fingertip contact and then adds that contact term (the fingers
closest to the object touch its points) to the joint optimisation. Hand orientation, pose and shape
stay as fitted; only translations and the object scale move. Every weight is in ``AlignConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hold.config.hand import HandConfig
from hold.geometry.camera import project
from hold.hand.build import build_hand_model
from hold.utils.io import write_json, write_npz
from hold.utils.logging import get_logger
from preprocess.anchor import pose_fitted_hand
from preprocess.config import AlignConfig

STEP = "align"
log = get_logger("preprocess.align")


def gmof(r2: Tensor, sigma: float) -> Tensor:
    """Geman-McClure of squared residuals, normalised to [0, 1): ``r² / (r² + σ²)`` (HOLD's gmof / σ²)."""
    return r2 / (r2 + sigma**2)


@dataclass
class HandData:
    """One hand's fixed geometry (fitted pose and shape) and its targets."""

    verts0: Tensor  # (T, V, 3) vertices at the initial translations
    kp0: Tensor  # (T, 21, 3) keypoints at the initial translations
    transl0: Tensor  # (T, 3)
    kp2d: Tensor  # (T, 21, 3) pixels + confidence
    valid: Tensor  # (T,) bool
    fingers: list[Tensor]  # per finger, vertex ids of its tip and pad


@dataclass
class ObjectData:
    """The SfM object: rotations, per-unit-scale translations and canonical points."""

    R: Tensor  # (T, 3, 3)
    u: Tensor  # (T, 3)
    points: Tensor  # (P, 3) canonical
    target2d: Tensor  # (T, P, 2) projections at the SfM poses (scale-free)
    registered: Tensor  # (T,) bool


class Aligner:
    """The parameters (hand translations, log object scale, object offsets) and HOLD's loss terms."""

    def __init__(self, hands: dict[str, HandData], obj: ObjectData, K: Tensor, cfg: AlignConfig):
        self.hands, self.obj, self.K, self.cfg = hands, obj, K, cfg
        T = obj.R.shape[0]
        self.transl = {s: h.transl0.clone().requires_grad_(True) for s, h in hands.items()}
        self.log_scale = torch.zeros((), dtype=K.dtype, requires_grad=True)
        self.delta = torch.zeros(T, 3, dtype=K.dtype, requires_grad=True)
        self.canon = torch.einsum("tij,pj->tpi", obj.R, obj.points) + obj.u[:, None]  # x_cam / s − δ/s

    # ------------------------------------------------------------------------------ geometry
    def hand_verts(self, side: str) -> Tensor:
        h = self.hands[side]
        return h.verts0 + (self.transl[side] - h.transl0)[:, None]

    def hand_kp(self, side: str) -> Tensor:
        h = self.hands[side]
        return h.kp0 + (self.transl[side] - h.transl0)[:, None]

    def object_points(self, log_scale: Tensor | None = None) -> Tensor:
        s = torch.exp(self.log_scale if log_scale is None else log_scale)
        return s * self.canon + self.delta[:, None]

    # ---------------------------------------------------------------------------- loss terms
    def kp2d_term(self) -> Tensor:
        total = self.K.new_zeros(())
        for side, h in self.hands.items():
            r2 = (project(self.hand_kp(side), self.K) - h.kp2d[..., :2]).square().sum(-1)
            w = h.kp2d[..., 2] * h.valid[:, None]
            total = total + (w * gmof(r2, self.cfg.kp2d_sigma_px)).sum() / w.sum().clamp_min(1e-9)
        return total

    def obj2d_term(self, pts: Tensor) -> Tensor:
        reg = self.obj.registered
        if not reg.any():  # poses from the hand alone: no SfM projections to keep
            return self.K.new_zeros(())
        r2 = (project(pts[reg], self.K) - self.obj.target2d[reg]).square().sum(-1)
        return gmof(r2, self.cfg.obj2d_sigma_px).mean()

    def centroid_term(self, pts: Tensor) -> Tensor:
        total = self.K.new_zeros(())
        for side, h in self.hands.items():
            diff = (self.hand_verts(side).mean(1) - pts.mean(1)).abs().sum(-1) / self.cfg.centroid_scale_m
            total = total + diff[h.valid].mean()
        return total

    def depth_term(self, pts: Tensor) -> Tensor:
        return torch.relu(self.cfg.min_depth_m - pts[..., 2]).mean() / self.cfg.min_depth_m

    def finger_distances(self, pts: Tensor, side: str) -> Tensor:
        """(T, 5): per frame and finger, the distance of its closest tip/pad vertex to an object point."""
        verts = self.hand_verts(side)
        out = [torch.cdist(verts[:, ids], pts).amin(dim=(1, 2)) for ids in self.hands[side].fingers]
        return torch.stack(out, -1)

    def contact_term(self, pts: Tensor) -> Tensor:
        total = self.K.new_zeros(())
        k = max(1, min(self.cfg.contact_fingers, 5))
        for side, h in self.hands.items():
            d = self.finger_distances(pts, side).topk(k, dim=-1, largest=False).values
            total = total + gmof(d.square(), self.cfg.contact_sigma_m)[h.valid].mean()
        return total

    def smooth_term(self, pts: Tensor) -> Tensor:
        centroids = [pts.mean(1)] + [self.hand_verts(s).mean(1) for s in self.hands]
        total = self.K.new_zeros(())
        for c in centroids:
            if c.shape[0] >= 3:
                acc = c[2:] - 2 * c[1:-1] + c[:-2]
                total = total + acc.square().sum(-1).mean() / self.cfg.smooth_scale_m**2
        return total

    def loss(self, phase: str) -> tuple[Tensor, dict[str, float]]:
        """HOLD's objective of one phase; returns the total and its terms."""
        c, terms = self.cfg, {}
        pts = self.object_points()
        if phase in ("h", "ho"):
            terms["kp2d"] = c.weight_kp2d * self.kp2d_term()
        if phase in ("o", "ho"):
            terms["obj2d"] = c.weight_obj2d * self.obj2d_term(pts)
            terms["centroid"] = c.weight_centroid * self.centroid_term(pts)
            terms["depth"] = c.weight_depth * self.depth_term(pts)
            terms["delta"] = c.weight_delta * (self.delta / c.delta_scale_m).square().sum(-1).mean()
        if phase == "ho":
            terms["contact"] = c.weight_contact * self.contact_term(pts)
            terms["smooth"] = c.weight_smooth * self.smooth_term(pts)
        total = sum(terms.values())
        return total, {k: round(float(v.detach()), 6) for k, v in terms.items()}

    def phase_params(self, phase: str) -> list[Tensor]:
        hand = list(self.transl.values())
        return {"h": hand, "o": [self.log_scale, self.delta], "ho": [*hand, self.log_scale, self.delta]}[
            phase
        ]

    # ------------------------------------------------------------------------------ schedule
    def init_scale_from_centroids(self) -> float:
        """HOLD's coarse contact in closed form: the scale that best puts the object centroid on the hand's."""
        with torch.no_grad():
            w = self.canon.mean(1)
            num = den = 0.0
            for side, h in self.hands.items():
                hc = self.hand_verts(side).mean(1)
                num += float((w[h.valid] * hc[h.valid]).sum())
                den += float(w[h.valid].square().sum())
            s = num / den if den > 0 and num > 0 else 1.0
            self.log_scale.fill_(math.log(s))
        return s

    def search_scale(self, factors: np.ndarray) -> float:
        """Grid search of the object scale (× ``factors``) for the best fingertip contact."""
        with torch.no_grad():
            base = self.log_scale.clone()
            energies = []
            for f in factors:
                pts = self.object_points(base + math.log(f))
                energies.append(
                    float(self.contact_term(pts) + self.centroid_term(pts) * self.cfg.weight_centroid)
                )
            best = factors[int(np.argmin(energies))]
            log.debug("scale search: %s", ", ".join(f"{f:.3f}:{e:.4f}" for f, e in zip(factors, energies)))
            self.log_scale.copy_(base + math.log(best))
        return float(torch.exp(self.log_scale.detach()))

    def optimise(self, phase: str) -> dict[str, float]:
        params = self.phase_params(phase)
        opt = torch.optim.Adam(params, lr=self.cfg.lr)
        n = max(self.cfg.iterations, 1)
        for step in range(self.cfg.iterations):
            decay = self.cfg.lr_final_factor + (1 - self.cfg.lr_final_factor) * 0.5 * (
                1 + math.cos(math.pi * step / n)
            )
            for g in opt.param_groups:
                g["lr"] = self.cfg.lr * decay
            opt.zero_grad()
            self.loss(phase)[0].backward()
            opt.step()
        with torch.no_grad():
            return self.loss(phase)[1]


def _spread(ids: Tensor, count: int) -> Tensor:
    """At most ``count`` of the ids, evenly spaced (the contact term's cost grows with them)."""
    return ids if len(ids) <= count else ids[torch.linspace(0, len(ids) - 1, count).round().long()]


def _hand_data(
    side: str,
    hands: dict[str, np.ndarray],
    hand_cfg: HandConfig,
    K_old: np.ndarray,
    K: np.ndarray,
    per_finger: int,
) -> HandData:
    out = pose_fitted_hand(hands, side, hand_cfg)
    verts, kp = out.vertices, out.keypoints
    transl = torch.as_tensor(hands[f"{side}.transl"], dtype=torch.float64)
    # Another focal length than the one the hands were fitted with: keep the wrist's pixel, scale its depth.
    ratio = float(K[0, 0] / K_old[0, 0])
    if abs(ratio - 1) > 1e-9:
        wrist = kp[:, 0]
        uv = project(wrist, torch.as_tensor(K_old))
        z = wrist[:, 2] * ratio
        new = torch.stack([(uv[:, 0] - K[0, 2]) / K[0, 0] * z, (uv[:, 1] - K[1, 2]) / K[1, 1] * z, z], -1)
        shift = (new - wrist)[:, None]
        verts, kp, transl = verts + shift, kp + shift, transl + shift[:, 0]
    contact = build_hand_model(hand_cfg, side).contact_vertex_ids()
    return HandData(
        verts0=verts, kp0=kp, transl0=transl,
        kp2d=torch.as_tensor(hands[f"{side}.kp2d"], dtype=torch.float64),
        valid=torch.as_tensor(hands[f"{side}.valid"]),
        fingers=[_spread(torch.cat([t, p]), per_finger) for t, p in zip(contact.tips, contact.pads)],
    )  # fmt: skip


def run_align(
    hands_dir: Path, sfm_dir: Path, out: Path, cfg: AlignConfig, hand_cfg: HandConfig, seed: int
) -> dict:
    """Run the configured phases and write ``align.npz`` and ``align.json``; returns the summary."""
    torch.manual_seed(seed)
    with np.load(hands_dir / "hands.npz") as f:
        hands = {k: f[k] for k in f.files}
    with np.load(sfm_dir / "sfm.npz") as f:
        sfm = {k: f[k] for k in f.files}
    K = sfm["K"]
    sides = [s for s in ("right", "left") if f"{s}.transl" in hands]
    hand_data = {
        s: _hand_data(s, hands, hand_cfg, hands["K"], K, cfg.contact_vertices_per_finger) for s in sides
    }
    rng = np.random.default_rng(seed)
    pts = sfm["points"].astype(np.float64)
    pts = (
        pts[rng.choice(len(pts), cfg.contact_points, replace=False)] if len(pts) > cfg.contact_points else pts
    )
    Kt = torch.as_tensor(K, dtype=torch.float64)
    from scipy.spatial.transform import Rotation

    R = torch.as_tensor(Rotation.from_rotvec(sfm["rot"].astype(np.float64)).as_matrix())
    u = torch.as_tensor(sfm["u"], dtype=torch.float64)
    P = torch.as_tensor(pts)
    canon = torch.einsum("tij,pj->tpi", R, P) + u[:, None]
    obj = ObjectData(
        R=R,
        u=u,
        points=P,
        target2d=project(canon, Kt),
        registered=torch.as_tensor(sfm.get("reliable", sfm["registered"])),
    )
    aligner = Aligner(hand_data, obj, Kt, cfg)
    if not obj.registered.any() and "scale_prior" in sfm:  # hand mode: the mask-and-hand size is metric
        s0 = float(sfm["scale_prior"])
        aligner.log_scale.data.fill_(math.log(s0))
        log.info("initial object scale from its mask at the hand's depth: %.4f m", s0)
    else:
        s0 = aligner.init_scale_from_centroids()
        log.info("initial object scale from the hand/object centroids: %.4f m", s0)
    report: dict = {"initial_scale": s0, "phases": {}}
    for phase in cfg.phases:
        if phase == "ho" and cfg.weight_contact > 0 and cfg.scale_search_steps > 1:
            factors = np.exp(np.linspace(-1, 1, cfg.scale_search_steps) * math.log(cfg.scale_search_range))
            log.info("contact scale search: %.4f m", aligner.search_scale(factors))
        terms = aligner.optimise(phase)
        report["phases"][phase] = terms
        scale = float(torch.exp(aligner.log_scale.detach()))
        log.info(
            "phase %s: %s, scale %.4f m", phase, ", ".join(f"{k} {v:.4g}" for k, v in terms.items()), scale
        )
    with torch.no_grad():
        s = float(torch.exp(aligner.log_scale))
        arrays = {
            "object.rot": sfm["rot"],
            "object.transl": (s * u + aligner.delta).numpy(),
            "object.scale": np.float64(s),
        }
        arrays |= {f"{side}.transl": aligner.transl[side].numpy() for side in sides}
        pts = aligner.object_points()  # per finger, the contact the report shows (SEQ/report.html)
        arrays |= {f"{side}.contact_m": aligner.finger_distances(pts, side).numpy() for side in sides}
    write_npz(out / "align.npz", arrays)
    report["scale"] = s
    write_json(out / "align.json", report)
    return {"scale": round(s, 6), "phases": list(cfg.phases)}
