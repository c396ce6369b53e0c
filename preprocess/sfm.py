"""Step ``sfm``: object poses and a canonical point cloud from object-only images.

The camera is static and only the object moves, so after masking out everything but the object the
images look like a camera moving around a static object: SfM's ``cam_from_world`` of frame t is the
object → camera transform ``x_cam = R_t x_sfm + t_t`` up to one global similarity (SfM's scale is
arbitrary; step ``align`` recovers it from the hand). HOLD runs hloc on SAM-masked images the same way
(generator/scripts/colmap_estimation.py).

The object's extent (the trimmed cloud and its mask hull, ``preprocess.hull``) is normalised,
``x_sfm = c + r · x_can`` with the farthest point at ``sphere_fill``,
so ``x_cam = λ (r R_t x_can + R_t c + t_t)`` for the unknown metres-per-SfM-unit λ. We store
``rot_t = R_t`` and ``u_t = (R_t c + t_t) / r`` (canonical units): for any object scale s,
``x_cam = s (R_t x_can + u_t)`` reprojects exactly like the SfM model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hold.config.hand import HandConfig
from hold.data.sequence import LABEL_OBJECT, OBJECT_SOURCES, SOURCE_OTHER, SOURCE_SFM
from hold.geometry.rotations import lerp_fill, slerp_fill
from hold.utils.io import write_json, write_npz
from hold.utils.logging import get_logger
from preprocess.anchor import (
    HandFrames,
    ObjectEstimate,
    anchor_to_hand,
    fill_sources,
    hand_deviation,
    hand_estimate,
    hand_scale,
    load_hand_frames,
    merge_by_hand,
)
from preprocess.colmap import CameraPrior, camera_matrix, choose_backend, run_hloc, run_pycolmap
from preprocess.config import CameraConfig, SfmConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, default_intrinsics
from preprocess.hull import mask_hull, normalise
from preprocess.masks import load_mask
from preprocess.sfm_images import SfmImages, object_only_images, scale_intrinsics

STEP = "sfm"
log = get_logger("preprocess.sfm")


def trim_points(xyz: np.ndarray, error: np.ndarray, track: np.ndarray, cfg: SfmConfig) -> np.ndarray:
    """(P,) bool: points kept after the reprojection, track-length and robust-distance tests."""
    keep = (error <= cfg.max_reprojection_px) & (track >= cfg.min_track_length)
    if keep.sum() < 10:  # too strict for this model: fall back to the distance test alone
        keep = np.ones(len(xyz), bool)
    d = np.linalg.norm(xyz - np.median(xyz[keep], axis=0), axis=1)
    med = np.median(d[keep])
    mad = 1.4826 * np.median(np.abs(d[keep] - med)) + 1e-12
    return keep & (d <= med + cfg.outlier_std * mad)


def object_extent(
    points: np.ndarray,
    R: np.ndarray,
    trans: np.ndarray,
    K: np.ndarray,
    labels: list[np.ndarray],
    frames: np.ndarray,
    cfg: SfmConfig,
) -> tuple[np.ndarray, float]:
    """The points bounding the object: the trimmed cloud and its mask hull (``preprocess.hull``).

    Returns:
        The points (N, 3) and how much the hull enlarged the cloud's radius (1: not at all).
    """
    if cfg.hull_resolution <= 0:
        return points, 1.0
    c0, r0 = normalise(points, 1.0)
    hull = mask_hull(R, trans, K, labels, np.flatnonzero(frames), c0, cfg.hull_extent * r0, cfg)
    if len(hull) == 0:
        log.warning(
            "the object masks carve every voxel around the SfM points: the cloud alone bounds the object"
        )
        return points, 1.0
    extent = np.concatenate([points, hull])
    growth = normalise(extent, 1.0)[1] / r0
    if np.abs(hull - c0).max() > cfg.hull_extent * r0 * (1 - 2 / cfg.hull_resolution):
        log.warning(
            "the object's mask hull reaches the edge of the carved grid (sfm.hull_extent=%g SfM-cloud radii): "
            "the object may be larger still", cfg.hull_extent,
        )  # fmt: skip
    log.info("mask hull: %d voxels, object radius %.2f× the SfM cloud's", len(hull), growth)
    return extent, growth


def interpolate_poses(
    rot: np.ndarray, u: np.ndarray, registered: np.ndarray, velocity_frames: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fill unregistered frames: SLERP for rotations and linear for translations between registered
    frames; before the first / after the last, constant-velocity motion estimated over the registered
    frames within ``velocity_frames`` frames of the end (0: copy the nearest pose).
    """
    horizon = len(registered)  # the object keeps moving: no bound on the continuation
    return (
        slerp_fill(rot, registered, velocity_frames, horizon),
        lerp_fill(u, registered, velocity_frames, horizon),
    )


def pose_outliers(rot: np.ndarray, registered: np.ndarray, min_deg: float, factor: float) -> np.ndarray:
    """(T,) bool: registered frames whose rotation disagrees with their registered neighbours.

    Each frame is compared with the SLERP midpoint of its previous and next registered frames (at the
    ends, with the constant-velocity prediction from the next two); it is an outlier when the angle
    exceeds ``min_deg`` and ``factor`` × the median angle, and is the largest among its neighbours
    (a bad frame also disturbs its neighbours' predictions).
    """
    idx = np.flatnonzero(registered)
    out = np.zeros(len(rot), bool)
    if min_deg <= 0 or len(idx) < 4:
        return out
    R = Rotation.from_rotvec(rot[idx])

    def along(i: int, j: int, t: int) -> Rotation:  # constant angular velocity through frames i, j
        w = (t - idx[i]) / (idx[j] - idx[i])
        return Rotation.from_rotvec(w * (R[j] * R[i].inv()).as_rotvec()) * R[i]

    n = len(idx)
    pred = (
        [along(1, 2, idx[0])]
        + [along(i - 1, i + 1, idx[i]) for i in range(1, n - 1)]
        + [along(n - 3, n - 2, idx[-1])]
    )
    dev = np.degrees((Rotation.concatenate(pred) * R.inv()).magnitude())
    limit = max(min_deg, factor * float(np.median(dev)))
    peak = dev >= np.maximum(np.r_[dev[1:], 0.0], np.r_[0.0, dev[:-1]])
    out[idx[(dev > limit) & peak]] = True
    return out


def model_poses(rec, images: SfmImages, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame ``cam_from_world`` of a pycolmap reconstruction: R (T, 3, 3), t (T, 3), registered (T,)."""
    R, trans, registered = np.repeat(np.eye(3)[None], T, 0), np.zeros((T, 3)), np.zeros(T, bool)
    frame_of = dict(zip(images.names, images.frames.tolist()))
    for image in rec.images.values():
        if image.has_pose:
            t = frame_of[image.name]
            pose = image.cam_from_world()
            R[t], trans[t], registered[t] = pose.rotation.matrix(), np.asarray(pose.translation), True
    return R, trans, registered


def read_reconstruction(rec, images: SfmImages, T: int, known: np.ndarray | None, K0: np.ndarray) -> dict:
    """Per-frame poses (T, …), the cloud and the frames' intrinsics from a pycolmap reconstruction."""
    R, trans, registered = model_poses(rec, images, T)
    pts = list(rec.points3D.values())
    if known is not None:
        K = known
    else:  # one shared camera on the whole, enlarged frames: back to the frames' pixels
        sx, sy = images.K[0, 0, 0] / K0[0, 0], images.K[0, 1, 1] / K0[1, 1]
        K = scale_intrinsics(camera_matrix(next(iter(rec.cameras.values()))), 1 / sx, 1 / sy)
    return {
        "R": R, "trans": trans, "registered": registered, "K": K,
        "xyz": np.array([p.xyz for p in pts]).reshape(-1, 3),
        "colors": np.array([p.color for p in pts], np.uint8).reshape(-1, 3),
        "error": np.array([p.error for p in pts]), "track": np.array([p.track.length() for p in pts]),
        "reprojection_px": float(rec.compute_mean_reprojection_error()),
    }  # fmt: skip


def sfm_estimate(
    model: dict,
    reliable: np.ndarray,
    merged: np.ndarray,
    hand: HandFrames | None,
    labels: list[np.ndarray],
    cfg: SfmConfig,
) -> ObjectEstimate:
    """Registered poses, the rest anchored to the hand (or interpolated without one), in SfM units.
    Frames ``merged`` from smaller models keep their rotation; their translation comes from the hand."""
    keep = trim_points(model["xyz"], model["error"], model["track"], cfg)
    if hand is not None:
        unit = hand_scale(model, reliable, keep, hand)
        R, trans = anchor_to_hand(model["R"], model["trans"], reliable, hand, unit, merged)
    else:
        unit = 1.0
        rot, trans = interpolate_poses(
            Rotation.from_matrix(model["R"]).as_rotvec(),
            model["trans"],
            reliable,
            cfg.extrapolation_velocity_frames,
        )
        R = Rotation.from_rotvec(rot).as_matrix()
    has_object = np.array([(m == LABEL_OBJECT).any() for m in labels])
    hull_frames = reliable if reliable.sum() >= cfg.hull_min_frames else has_object
    extent, growth = object_extent(model["xyz"][keep], R, trans, model["K"], labels, hull_frames, cfg)
    source = fill_sources(reliable, hand)
    source[merged] = SOURCE_OTHER
    return ObjectEstimate(R, trans, model["xyz"][keep], model["colors"][keep], extent, source, unit, growth)


def _stats(values: np.ndarray) -> dict | None:
    """Median / 95th percentile / max of the finite values, rounded; None when there are none."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return None
    return {
        "median": round(float(np.median(v)), 2),
        "p95": round(float(np.percentile(v, 95)), 2),
        "max": round(float(v.max()), 2),
    }


def use_crop(cfg: SfmConfig, known: np.ndarray | None, backend: str) -> bool:
    """Whether SfM images are object crops (``sfm.crop``)."""
    if cfg.crop == "off" or (cfg.crop == "auto" and (known is None or backend != "pycolmap")):
        return False
    if known is None or backend != "pycolmap":
        raise PreprocessError(
            STEP,
            "sfm.crop=on needs known intrinsics (RAW/camera.json) and sfm.backend=pycolmap; use sfm.crop=auto",
        )
    return True


def run_sfm(
    raw: Path,
    frames_dir: Path,
    masks_dir: Path,
    hands_dir: Path | None,
    out: Path,
    cfg: SfmConfig,
    camera: CameraConfig,
    hand_cfg: HandConfig | None,
) -> dict:
    """Object poses for every frame and the canonical cloud: ``sfm.npz`` and ``sfm.json``; the summary.

    Raises:
        PreprocessError: SfM registered too few frames and ``sfm.fallback=none`` (or no hand was fitted).
    """
    info = FramesInfo.load(frames_dir / "frames.json")
    T = info.num_frames
    known = info.intrinsics()
    K0 = known if known is not None else default_intrinsics(info.image_size, camera.default_fov_deg)
    backend = choose_backend(cfg)
    images = object_only_images(frames_dir, masks_dir, out, info, K0, use_crop(cfg, known, backend), cfg)
    prior = CameraPrior(K=images.K[0] if len(images.names) else K0, known=known is not None)
    models, attempts = [], []
    if len(images.names) >= 2:
        run = run_hloc if backend == "hloc" else run_pycolmap
        models, attempts = run(images, out, prior, cfg)
    model = read_reconstruction(models[0], images, T, known, K0) if models else None
    hand = None
    if cfg.fallback == "hand" and hands_dir is not None and hand_cfg is not None:
        hand = load_hand_frames(hands_dir, hand_cfg)
    labels = [load_mask(masks_dir, t) for t in range(T)]
    registered = model["registered"] if model else np.zeros(T, bool)
    outliers, merged, deviation = np.zeros(T, bool), np.zeros(T, bool), np.full(T, np.nan)
    if model:
        others = [model_poses(m, images, T) for m in models[1:] if m.num_reg_images() >= 3]
        model["R"], merged = merge_by_hand(
            model["R"], registered, [(R, reg) for R, _, reg in others], hand, cfg.hand_robust_scale_deg
        )
        rotvec = Rotation.from_matrix(model["R"]).as_rotvec()
        seen = registered | merged
        outliers = pose_outliers(rotvec, seen, cfg.pose_outlier_deg, cfg.pose_outlier_factor)
        deviation = hand_deviation(model["R"], seen & ~outliers, hand, cfg.hand_robust_scale_deg)
        if cfg.hand_consistency_deg > 0:
            outliers |= deviation > cfg.hand_consistency_deg
        merged &= ~outliers
    reliable = registered & ~outliers
    spread = float(np.nanmedian(deviation)) if np.isfinite(deviation).any() else 0.0
    consistent = cfg.model_consistency_deg <= 0 or spread <= cfg.model_consistency_deg
    enough = (
        reliable.sum() >= max(cfg.min_registered_fraction * T, 3) and len(model["xyz"] if model else []) >= 4
    )
    why_not = None
    if not enough:
        why_not = (
            f"SfM registered {int(reliable.sum())}/{T} frames reliably (< {cfg.min_registered_fraction:.0%})"
        )
    elif not consistent:
        why_not = f"SfM's model disagrees with the hand (median {spread:.1f}° > sfm.model_consistency_deg={cfg.model_consistency_deg:g})"
    if why_not is None:
        mode, K = "sfm", model["K"]
        est = sfm_estimate(model, reliable, merged, hand, labels, cfg)
    elif hand is not None:
        mode, K = "hand", K0
        est = hand_estimate(hand, labels, frames_dir, K, cfg)
    else:
        raise PreprocessError(
            STEP,
            f"{why_not}. Try: sfm.fallback=hand (poses from the hand); more frames (frames.stride=1) or larger ones "
            "(frames.max_size=0); check that the masks cover the object (work/sfm/images shows what SfM saw); "
            f"lower sfm.init_min_num_inliers (now {cfg.init_min_num_inliers}) or sfm.min_num_matches "
            f"(now {cfg.min_num_matches}); give RAW/camera.json; or sfm.backend=hloc",
            out / "images",
        )
    centre, radius = normalise(est.extent, cfg.sphere_fill)
    u = (np.einsum("tij,j->ti", est.R, centre) + est.trans) / radius
    counts = {name: int(np.sum(est.source == code)) for code, name in OBJECT_SOURCES.items()}
    warnings = list(est.warnings)
    filled = T - counts["sfm_registered"]
    if filled > cfg.warn_filled_fraction * T:
        filled_from = [
            f"{counts['hand_anchored']} anchored to the hand",
            f"{counts['interpolated']} interpolated (hand not fitted there either)",
        ]
        if counts["other_fallback"]:
            filled_from.insert(
                0, f"{counts['other_fallback']} from smaller SfM models aligned through the hand"
            )
        if mode == "hand":
            head = (
                f"object poses: {why_not}; the trajectory comes from the hand, the shape from the mask hull"
            )
        else:
            head = (
                f"object poses: SfM registered {counts['sfm_registered']}/{T} frames reliably "
                f"({int(registered.sum())} registered, {int(outliers.sum())} rejected)"
            )
        warnings.append(f"{head}: {', '.join(filled_from)}")
        log.warning("%s", warnings[-1])
    write_npz(
        out / "sfm.npz",
        {
            "registered": registered,
            "reliable": est.source == SOURCE_SFM,  # hand mode: no frame keeps its SfM pose
            "source": est.source,
            "rot": Rotation.from_matrix(est.R).as_rotvec().astype(np.float32),
            "u": u.astype(np.float32),
            "points": ((est.points - centre) / radius).astype(np.float32),
            "colors": est.colors.astype(np.uint8),
            "K": K,
            "centre": centre,
            "radius": np.float64(radius),
            "scale_prior": np.float64(est.metres_per_unit * radius),
        },
    )
    summary = {
        "backend": backend,
        "mode": mode,
        "registered": int(registered.sum()),
        "num_frames": T,
        "registered_fraction": round(float(registered.sum()) / T, 4),
        "pose_outliers": int(outliers.sum()),
        "merged": int(merged.sum()),
        "hand_deviation_deg": _stats(deviation),
        "sfm_rejected": why_not,
        "sources": counts,
        "filled_fraction": round(filled / T, 4),
        "warnings": warnings,
        "points": len(est.points),
        "mean_reprojection_px": round(model["reprojection_px"], 4) if model else None,
        "focal_source": "camera.json" if known is not None else ("sfm" if mode == "sfm" else "default_fov"),
        "fx": round(float(K[0, 0]), 3),
        "fy": round(float(K[1, 1]), 3),
        "cropped": images.cropped,
        "attempts": attempts,
        "hull_radius_growth": round(est.hull_growth, 4),
    }
    write_json(
        out / "sfm.json",
        summary
        | {
            "unregistered_frames": np.flatnonzero(~registered).tolist(),
            "outlier_frames": np.flatnonzero(outliers).tolist(),
        },
    )
    log.info(
        "object poses (%s mode): %s; %d points, focal %.1f px (%s)",
        mode, ", ".join(f"{k} {v}" for k, v in counts.items() if v), len(est.points), K[0, 0], summary["focal_source"],
    )  # fmt: skip
    return summary
