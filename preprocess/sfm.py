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
from PIL import Image
from scipy import ndimage
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from hold.data.sequence import LABEL_OBJECT
from hold.geometry.rotations import lerp_fill, slerp_fill
from hold.utils.io import write_json, write_npz, write_png
from hold.utils.logging import get_logger
from preprocess.colmap import CameraPrior, camera_matrix, choose_backend, run_hloc, run_pycolmap
from preprocess.config import CameraConfig, SfmConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, default_intrinsics, load_frame
from preprocess.hull import mask_hull
from preprocess.masks import load_mask

STEP = "sfm"
log = get_logger("preprocess.sfm")


def object_only_images(
    frames_dir: Path, masks_dir: Path, out: Path, info: FramesInfo, cfg: SfmConfig
) -> tuple[Path, Path, list[str], tuple[float, float]]:
    """Write the SfM inputs: frames with every non-object pixel painted over, and feature masks.

    Feature masks (COLMAP: ``<image name>.png``, 0 = no features) are the object masks eroded by
    ``feature_mask_erode`` (fraction of the longer side), so the painted silhouette gives no features.
    Both are enlarged to ``upscale_to``.

    Returns:
        The image dir, the feature-mask dir, the image names and the (sx, sy) enlargement.
    """
    image_dir, mask_dir = out / "images", out / "feature_masks"
    H, W = info.image_size
    factor = max(1.0, cfg.upscale_to / max(H, W)) if cfg.upscale_to > 0 else 1.0
    size = (round(W * factor), round(H * factor))
    radius = round(cfg.feature_mask_erode * max(H, W))
    erode = np.ones((2 * radius + 1,) * 2, bool) if radius > 0 else None
    names = []
    for t in tqdm(range(info.num_frames), desc="sfm images", unit="frame", disable=None):
        rgb, obj = load_frame(frames_dir, t).copy(), load_mask(masks_dir, t) == LABEL_OBJECT
        rgb[~obj] = cfg.background_value
        inner = ndimage.binary_erosion(obj, erode) if erode is not None else obj
        inner = inner.astype(np.uint8) * 255
        if factor > 1:
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
            inner = np.asarray(Image.fromarray(inner).resize(size, Image.Resampling.NEAREST))
        name = f"{t:05d}.png"
        write_png(image_dir / name, rgb)
        write_png(mask_dir / f"{name}.png", inner)
        names.append(name)
    return image_dir, mask_dir, names, (size[0] / W, size[1] / H)


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics of an image resized by (sx, sy) (pixel centres at integers)."""
    K = np.array(K, np.float64, copy=True)
    K[0, 0], K[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    K[0, 2], K[1, 2] = (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5
    return K


def trim_points(xyz: np.ndarray, error: np.ndarray, track: np.ndarray, cfg: SfmConfig) -> np.ndarray:
    """(P,) bool: points kept after the reprojection, track-length and robust-distance tests."""
    keep = (error <= cfg.max_reprojection_px) & (track >= cfg.min_track_length)
    if keep.sum() < 10:  # too strict for this model: fall back to the distance test alone
        keep = np.ones(len(xyz), bool)
    d = np.linalg.norm(xyz - np.median(xyz[keep], axis=0), axis=1)
    med = np.median(d[keep])
    mad = 1.4826 * np.median(np.abs(d[keep] - med)) + 1e-12
    return keep & (d <= med + cfg.outlier_std * mad)


def normalise(points: np.ndarray, sphere_fill: float) -> tuple[np.ndarray, float]:
    """Centre (bounding-box midpoint) and radius so that ``(points − c) / r`` reaches ``sphere_fill``."""
    c = 0.5 * (points.min(0) + points.max(0))
    r = float(np.linalg.norm(points - c, axis=1).max()) / sphere_fill
    return c, max(r, 1e-12)


def object_extent(
    points: np.ndarray,
    R: np.ndarray,
    trans: np.ndarray,
    K: np.ndarray,
    masks_dir: Path,
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
    labels = [load_mask(masks_dir, t) for t in range(len(R))]
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


def run_sfm(
    raw: Path, frames_dir: Path, masks_dir: Path, out: Path, cfg: SfmConfig, camera: CameraConfig
) -> dict:
    """Run SfM and write ``sfm.npz`` (poses, cloud, K) and ``sfm.json``; returns the summary.

    Raises:
        PreprocessError: mapping failed or registered fewer than ``min_registered_fraction`` of the frames.
    """
    info = FramesInfo.load(frames_dir / "frames.json")
    T = info.num_frames
    known = info.intrinsics()
    K0 = known if known is not None else default_intrinsics(info.image_size, camera.default_fov_deg)
    image_dir, mask_dir, names, (sx, sy) = object_only_images(frames_dir, masks_dir, out, info, cfg)
    prior = CameraPrior(K=scale_intrinsics(K0, sx, sy), known=known is not None)
    backend = choose_backend(cfg)
    if backend == "hloc":
        rec = run_hloc(image_dir, out, names, prior, cfg)
    else:
        rec = run_pycolmap(image_dir, mask_dir, out, names, prior, cfg)
    n_reg = 0 if rec is None else rec.num_reg_images()
    if n_reg < max(cfg.min_registered_fraction * T, 2):
        raise PreprocessError(
            STEP,
            f"SfM registered only {n_reg} of {T} frames (< {cfg.min_registered_fraction:.0%}). Try: more frames "
            "(frames.stride=1) or larger ones (frames.max_size=0); check that the masks cover the object "
            f"(work/sfm/images shows what SfM saw); lower sfm.init_min_num_inliers (now {cfg.init_min_num_inliers}) "
            f"or sfm.min_num_matches (now {cfg.min_num_matches}); give RAW/camera.json; or sfm.backend=hloc",
            out / "images",
        )
    rot = np.zeros((T, 3))
    trans = np.zeros((T, 3))
    registered = np.zeros(T, bool)
    for image in rec.images.values():
        if not image.has_pose:
            continue
        t = names.index(image.name)
        pose = image.cam_from_world()
        rot[t] = Rotation.from_matrix(pose.rotation.matrix()).as_rotvec()
        trans[t] = np.asarray(pose.translation)
        registered[t] = True
    pts = list(rec.points3D.values())
    xyz = np.array([p.xyz for p in pts]).reshape(-1, 3)
    colors = np.array([p.color for p in pts], np.uint8).reshape(-1, 3)
    keep = trim_points(xyz, np.array([p.error for p in pts]), np.array([p.track.length() for p in pts]), cfg)
    if keep.sum() < 4:
        raise PreprocessError(
            STEP, f"SfM kept only {int(keep.sum())} 3D points; the object needs more texture or frames", out
        )
    if known is not None:
        K = known
    else:  # back from the enlarged SfM images to the frames
        K = scale_intrinsics(camera_matrix(next(iter(rec.cameras.values()))), 1 / sx, 1 / sy)
    R = Rotation.from_rotvec(rot).as_matrix()
    outliers = pose_outliers(rot, registered, cfg.pose_outlier_deg, cfg.pose_outlier_factor)
    extent, hull_growth = object_extent(xyz[keep], R, trans, K, masks_dir, registered & ~outliers, cfg)
    centre, radius = normalise(extent, cfg.sphere_fill)
    u = (np.einsum("tij,j->ti", R, centre) + trans) / radius
    if outliers.any():
        log.info(
            "frames %s: pose disagrees with the neighbours', interpolated instead",
            np.flatnonzero(outliers).tolist(),
        )
    rot_all, u_all = interpolate_poses(rot, u, registered & ~outliers, cfg.extrapolation_velocity_frames)
    write_npz(
        out / "sfm.npz",
        {
            "registered": registered,
            "reliable": registered & ~outliers,
            "rot": rot_all.astype(np.float32),
            "u": u_all.astype(np.float32),
            "points": ((xyz[keep] - centre) / radius).astype(np.float32),
            "colors": colors[keep],
            "K": K,
            "centre": centre,
            "radius": np.float64(radius),
        },
    )
    summary = {
        "backend": backend,
        "registered": int(n_reg),
        "num_frames": T,
        "registered_fraction": round(n_reg / T, 4),
        "points": int(keep.sum()),
        "points_before_trimming": len(xyz),
        "mean_reprojection_px": round(float(rec.compute_mean_reprojection_error()), 4),
        "focal_source": "camera.json" if known is not None else "sfm",
        "fx": round(float(K[0, 0]), 3),
        "fy": round(float(K[1, 1]), 3),
    }
    summary["pose_outliers"] = int(outliers.sum())
    summary["hull_radius_growth"] = round(hull_growth, 4)
    write_json(
        out / "sfm.json",
        summary
        | {
            "unregistered_frames": np.flatnonzero(~registered).tolist(),
            "outlier_frames": np.flatnonzero(outliers).tolist(),
        },
    )
    log.info(
        "registered %d/%d frames (%s), %d points kept of %d, reprojection %.2f px, focal %.1f px (%s)",
        n_reg, T, backend, keep.sum(), len(xyz), summary["mean_reprojection_px"], K[0, 0], summary["focal_source"],
    )  # fmt: skip
    return summary
