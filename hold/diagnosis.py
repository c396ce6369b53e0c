"""Why a training stage went wrong: cheap checks of the SEQUENCE masks against the poses and the
object's bounding sphere, named in the error that stops the stage (``hold.system``).

Every check compares what training is given — the label maps, the per-frame poses, the canonical object
points and the bounding sphere — without rendering, so it takes a fraction of a second. The thresholds
below only decide which numbers are called a likely cause; the numbers themselves are always reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT
from hold.geometry.camera import NEAR, project

REPORT_NAME = "report.html"
"""The preprocessing report hold-preprocess writes into the SEQUENCE dir (``preprocess.report``)."""
REPORT_ANCHOR = "step-{}"
"""The id of a step's section in that report."""
MIN_OBJECT_SHARE = 1e-3
"""A frame shows the object when its object label covers at least this share of the image."""
MIN_FRAMES_SHOWN = 0.5
"""Masks count as empty when fewer than this share of the frames show the object (or the hand)."""
MIN_POINTS_ON_MASKS = 0.5
"""Poses count as far from the masks when, in the median frame, fewer than this share of the projected
points land on the object or hand labels (a point hidden behind the hand lands on the hand)."""
MIN_MASK_IN_SPHERE = 0.8
"""The object counts as outside its bounding sphere when, in the median frame, fewer than this share of
its mask pixels look through the sphere."""
HAND_LABELS = {"right": LABEL_RIGHT, "left": LABEL_LEFT}


@dataclass
class Finding:
    """One likely cause: a short name, the numbers behind it, the preprocessing report's sections."""

    cause: str
    detail: str
    sections: tuple[str, ...]


@dataclass
class Diagnosis:
    """The numbers of the checks (``summary``: one phrase each) and the causes they point at."""

    summary: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def extend(self, other: Diagnosis) -> None:
        self.summary += other.summary
        self.findings += other.findings


def label_share(masks: Tensor, labels: tuple[int, ...]) -> np.ndarray:
    """(F, H, W) label maps → (F,) share of each frame's pixels carrying one of ``labels``."""
    hit = torch.zeros_like(masks, dtype=torch.bool)
    for label in labels:
        hit |= masks == label
    return hit.flatten(1).float().mean(1).numpy()


def project_in_front(points: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Camera-frame points (F, P, 3) → pixel coordinates (F, P, 2) and in-front flags (F, P)."""
    return project(points, K), points[..., 2] > NEAR


def points_on_labels(points: Tensor, masks: Tensor, K: Tensor, labels: tuple[int, ...]) -> np.ndarray:
    """Share of each frame's projected points (F, P, 3) that land on pixels carrying one of ``labels``."""
    uv, front = project_in_front(points, K)
    H, W = masks.shape[1:]
    x, y = uv[..., 0].floor().long(), uv[..., 1].floor().long()
    inside = front & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    frame = torch.arange(len(masks))[:, None].expand_as(x)
    values = masks[frame, y.clamp(0, H - 1), x.clamp(0, W - 1)]
    hit = torch.zeros_like(inside)
    for label in labels:
        hit |= values == label
    return (hit & inside).float().mean(1).numpy()


def centre_offset(points: Tensor, masks: Tensor, K: Tensor, label: int) -> np.ndarray:
    """Pixels between each frame's projected point centroid and its ``label`` centroid (nan: no such pixels)."""
    uv, front = project_in_front(points, K)
    out = np.full(len(masks), np.nan)
    for f, mask in enumerate(masks):
        ys, xs = torch.nonzero(mask == label, as_tuple=True)
        if len(xs) and front[f].any():
            centre = torch.stack([xs.float().mean(), ys.float().mean()]) + 0.5
            out[f] = float((uv[f][front[f]].mean(0) - centre).norm())
    return out


def mask_in_sphere(masks: Tensor, K: Tensor, centres: Tensor, radius: float, label: int) -> np.ndarray:
    """Share of each frame's ``label`` pixels whose ray passes through the sphere (centres (F, 3), camera
    frame); nan where the frame has no such pixels."""
    K_inv = torch.linalg.inv(K)
    out = np.full(len(masks), np.nan)
    for f, mask in enumerate(masks):
        ys, xs = torch.nonzero(mask == label, as_tuple=True)
        if not len(xs):
            continue
        pixels = torch.stack([xs.float() + 0.5, ys.float() + 0.5, torch.ones(len(xs))], 1)
        rays = torch.nn.functional.normalize(pixels @ K_inv.T, dim=1)
        along = rays @ centres[f]
        d2 = centres[f].square().sum() - along.square()
        out[f] = float(((along > 0) & (d2 <= radius**2)).float().mean())
    return out


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def diagnose_object(
    masks: Tensor, K: Tensor, points: Tensor, centres: Tensor, sphere_radius: float, sphere_note: str
) -> Diagnosis:
    """Masks, poses and bounding sphere of the object.

    Args:
        masks: (F, H, W) uint8 label maps. K: (3, 3) intrinsics.
        points: (F, P, 3) the canonical object points posed into each frame (camera frame, metres).
        centres: (F, 3) the bounding sphere's centre per frame; sphere_radius: its radius in metres.
        sphere_note: how that radius comes about (config keys and scale), for the message.
    """
    out = Diagnosis()
    share = label_share(masks, (LABEL_OBJECT,))
    shown = share >= MIN_OBJECT_SHARE
    F = len(share)
    out.summary.append(f"object in {shown.sum()}/{F} frames")
    if shown.mean() < MIN_FRAMES_SHOWN:
        out.findings.append(
            Finding(
                "empty masks",
                f"the object label covers ≥ {MIN_OBJECT_SHARE:.1%} of the image in only {shown.sum()} of "
                f"{F} frames (median {np.median(share):.2%})",
                ("masks",),
            )
        )
    if not shown.any():
        return out
    on_masks = _median(points_on_labels(points, masks, K, (LABEL_OBJECT, *HAND_LABELS.values()))[shown])
    offset = _median(centre_offset(points, masks, K, LABEL_OBJECT)[shown])
    in_sphere = _median(mask_in_sphere(masks, K, centres, sphere_radius, LABEL_OBJECT)[shown])
    out.summary += [
        f"{on_masks:.0%} of its posed points on the masks",
        f"{in_sphere:.0%} of its mask in the sphere",
    ]
    if on_masks < MIN_POINTS_ON_MASKS:
        out.findings.append(
            Finding(
                "poses far from the masks",
                f"a median {on_masks:.0%} of the object's posed points project onto the object or hand "
                f"masks, and their centre lies a median {offset:.0f} px from the object mask's",
                ("sfm", "align"),
            )
        )
    if in_sphere < MIN_MASK_IN_SPHERE:
        out.findings.append(
            Finding(
                "object outside the bounding sphere",
                f"a median {in_sphere:.0%} of the object-mask pixels look through the object's bounding "
                f"sphere ({sphere_note})",
                ("align",),
            )
        )
    return out


def diagnose_hand(side: str, masks: Tensor, K: Tensor, vertices: Tensor) -> Diagnosis:
    """Masks and poses of one hand: ``vertices`` (F, V, 3) the posed hand-model vertices, camera frame."""
    out = Diagnosis()
    label = HAND_LABELS[side]
    shown = label_share(masks, (label,)) >= MIN_OBJECT_SHARE
    F = len(shown)
    out.summary.append(f"{side} hand in {shown.sum()}/{F} frames")
    if shown.mean() < MIN_FRAMES_SHOWN:
        out.findings.append(
            Finding(
                f"empty {side}-hand masks",
                f"the {side}-hand label covers ≥ {MIN_OBJECT_SHARE:.1%} of the image in only {shown.sum()} of {F} frames",
                ("masks",),
            )
        )
    if not shown.any():
        return out
    on_masks = _median(points_on_labels(vertices, masks, K, (label, LABEL_OBJECT))[shown])
    out.summary.append(f"{on_masks:.0%} of its vertices on the masks")
    if on_masks < MIN_POINTS_ON_MASKS:
        offset = _median(centre_offset(vertices, masks, K, label)[shown])
        out.findings.append(
            Finding(
                f"{side}-hand poses far from the masks",
                f"a median {on_masks:.0%} of the posed {side}-hand vertices project onto the hand or object "
                f"masks, and their centre lies a median {offset:.0f} px from the hand mask's",
                ("hands",),
            )
        )
    return out


def report_path(sequence_root: Path | None) -> str:
    return str(sequence_root / REPORT_NAME) if sequence_root is not None else f"SEQ/{REPORT_NAME}"


def explain(
    headline: str, diagnosis: Diagnosis, fallback: str, sequence_root: Path | None, after: str
) -> str:
    """One message: what happened, the likely cause (or ``fallback`` when the checks found none), where to
    look in the preprocessing report, and ``after`` (what is kept, how to go on)."""
    numbers = "; ".join(diagnosis.summary)
    if diagnosis.findings:
        first, *rest = diagnosis.findings
        text = f"{headline}. Likely cause: {first.cause}: {first.detail}"
        if rest:
            text += "; also " + "; ".join(f"{f.cause}: {f.detail}" for f in rest)
        sections = list(dict.fromkeys(s for f in diagnosis.findings for s in f.sections))
        quoted = ", ".join(f'"{s}"' for s in sections)
        where = f"{report_path(sequence_root)}#{REPORT_ANCHOR.format(sections[0])}"
        text += f". See the preprocessing report {where} (section{'s' * (len(sections) > 1)} {quoted})"
    else:
        text = f"{headline}. The masks and poses look consistent ({numbers}): {fallback}"
    return f"{text}. {after}"
