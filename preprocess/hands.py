"""Step ``hands``: hand-model parameters fitted to keypoint estimates.

Backend ``import``: RAW/hands.npz holds, per hand, 2D keypoints with confidences, optionally
root-relative 3D keypoints and a per-frame validity flag (docs/formats.md), e.g. dumped from HaMeR, like
HOLD's hand initialisation. Backend ``mediapipe`` (``preprocess.mediapipe``) estimates the same arrays
on the frames with mediapipe's bundled hand tracker, in its own environment, and writes them to
``work/hands/mediapipe/hands.npz``.

The hand layer's keypoint fitting (``hold.hand.fitting``) turns them into model parameters. Frames the
estimator missed, frames with too few confident keypoints and frames whose mean 2D residual after
fitting exceeds ``hands.max_residual_px`` are invalid; their parameters are filled in by SLERP of the
rotations and linear interpolation of the translations between the nearest valid frames; at the clip's
ends, by continuing the motion of the last valid frames at constant velocity for a few frames.

Output ``work/hands/hands.npz`` per side ``<side>.``: global_orient, pose, betas, transl, keypoints
(T, 21, 3, camera frame), kp2d (T, 21, 3, output pixels), residual_px (T,, NaN where not fitted),
valid (T,); plus ``K`` (the intrinsics used: camera.json or the default field of view).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from hold.config.hand import HandConfig
from hold.data.sequence import HAND_SIDES, NUM_KEYPOINTS
from hold.geometry.rotations import lerp_fill, slerp_fill
from hold.hand.build import build_hand_model
from hold.hand.fitting import HandFitter
from hold.utils.io import write_json, write_npz
from hold.utils.logging import get_logger
from preprocess.config import CameraConfig, HandsConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, default_intrinsics

STEP = "hands"
log = get_logger("preprocess.hands")


def read_hand_estimates(raw: Path, info: FramesInfo) -> dict[str, dict[str, np.ndarray]]:
    """RAW/hands.npz of the kept frames, 2D keypoints in output pixels.

    Returns:
        side → {"kp2d" (T, 21, 3), "kp3d" (T, 21, 3) or absent, "valid" (T,)}.

    Raises:
        PreprocessError: missing or unreadable file, bad shapes, a frame count that differs.
    """
    path = raw / "hands.npz"
    if not path.is_file():
        raise PreprocessError(
            STEP, "hands.backend=import needs RAW/hands.npz (docs/formats.md: right.kp2d (T, 21, 3), …)", path
        )
    out = load_hands_npz(path, info.num_input_frames)
    idx = np.asarray(info.source_indices)
    for entry in out.values():
        for key in list(entry):
            entry[key] = entry[key][idx].copy()
        entry["kp2d"][..., :2] = info.map_pixels(entry["kp2d"][..., :2])
    return out


def load_hands_npz(path: Path, n: int) -> dict[str, dict[str, np.ndarray]]:
    """A hands.npz (docs/formats.md) of ``n`` frames, checked, as stored.

    Returns:
        side → {"kp2d" (n, 21, 3), "kp3d" (n, 21, 3) or absent, "valid" (n,) bool}.

    Raises:
        PreprocessError: unreadable file, bad shapes, a frame count that differs.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise PreprocessError(STEP, f"not a readable .npz ({e})", path) from None
    sides = [s for s in HAND_SIDES if f"{s}.kp2d" in arrays]
    if not sides:
        raise PreprocessError(
            STEP, "key 'right.kp2d' (or 'left.kp2d') is missing, expected shape (T, 21, 3)", path
        )
    out = {}
    for side in sides:
        _check_real(arrays[f"{side}.kp2d"], f"{side}.kp2d", path)
        kp2d = np.asarray(arrays[f"{side}.kp2d"], np.float64)
        if kp2d.ndim != 3 or kp2d.shape[1:] != (NUM_KEYPOINTS, 3):
            raise PreprocessError(
                STEP, f"key '{side}.kp2d': expected shape (T, 21, 3), found {kp2d.shape}", path
            )
        if kp2d.shape[0] != n:
            raise PreprocessError(
                STEP,
                f"frame counts differ: '{side}.kp2d' has {kp2d.shape[0]} frames but the input has {n}",
                path,
            )
        valid = np.asarray(arrays.get(f"{side}.valid", np.ones(n, bool)))
        if valid.shape != (n,):
            raise PreprocessError(
                STEP, f"key '{side}.valid': expected shape ({n},), found {valid.shape}", path
            )
        if valid.dtype != bool and not (valid.dtype.kind in "iu" and np.isin(valid, (0, 1)).all()):
            raise PreprocessError(
                STEP,
                f"key '{side}.valid': expected booleans (or 0/1 integers), found dtype {valid.dtype}",
                path,
            )
        entry = {"kp2d": kp2d, "valid": valid.astype(bool)}
        if f"{side}.kp3d" in arrays:
            _check_real(arrays[f"{side}.kp3d"], f"{side}.kp3d", path)
            kp3d = np.asarray(arrays[f"{side}.kp3d"], np.float64)
            if kp3d.shape != (n, NUM_KEYPOINTS, 3):
                raise PreprocessError(
                    STEP, f"key '{side}.kp3d': expected shape ({n}, 21, 3), found {kp3d.shape}", path
                )
            entry["kp3d"] = kp3d
        out[side] = entry
    return out


def _check_real(values: np.ndarray, key: str, path: Path) -> None:
    """Keypoints must be finite real numbers (a complex array would silently lose its imaginary part)."""
    if np.asarray(values).dtype.kind not in "iuf":
        raise PreprocessError(
            STEP, f"key '{key}': expected real numbers, found dtype {np.asarray(values).dtype}", path
        )


def fill_invalid(
    params: dict[str, np.ndarray], valid: np.ndarray, window: int = 0, horizon: int = 0
) -> dict[str, np.ndarray]:
    """Interpolate invalid frames: SLERP for ``global_orient`` and ``pose``, linear for ``transl``.

    Frames before the first / after the last valid frame copy it, or with ``window`` and ``horizon``
    (``hands.end_window`` / ``end_horizon``) continue the motion at constant velocity (``end_motions``):
    a hand that the estimator loses at a clip end is mostly still turning the way it was.
    """
    out = dict(params)
    out["global_orient"] = slerp_fill(params["global_orient"], valid, window, horizon)
    out["pose"] = slerp_fill(params["pose"], valid, window, horizon)
    out["transl"] = lerp_fill(params["transl"], valid, window, horizon)
    return out


def fit_side(
    side: str, est: dict[str, np.ndarray], K: np.ndarray, hand_cfg: HandConfig, cfg: HandsConfig, device: str
) -> dict[str, np.ndarray]:
    """Fit one hand over the sequence; returns the arrays saved under ``<side>.``."""
    T = est["kp2d"].shape[0]
    confident = (est["kp2d"][..., 2] >= hand_cfg.fit.min_confidence).sum(-1)
    fit = est["valid"] & (confident >= cfg.min_keypoints) & np.isfinite(est["kp2d"]).all((1, 2))
    if not fit.any():
        raise PreprocessError(
            STEP,
            f"no frame has a usable '{side}' hand (valid with ≥ {cfg.min_keypoints} confident keypoints)",
        )
    idx = np.flatnonzero(fit)
    model = build_hand_model(hand_cfg, side).to(device)
    dtype = model.skinning_weights.dtype
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    fitter = HandFitter(model, hand_cfg.fit, hand_cfg.joint_limits)
    res = fitter.fit(as_t(est["kp2d"][idx]), as_t(K), as_t(est["kp3d"][idx]) if "kp3d" in est else None)
    residual = np.full(T, np.nan)
    residual[idx] = res.reprojection_error.cpu().numpy()
    valid = fit & (residual <= cfg.max_residual_px)  # NaN compares False
    if not valid.any():
        raise PreprocessError(
            STEP, f"every '{side}' frame fits worse than hands.max_residual_px={cfg.max_residual_px} px "
            f"(median residual {np.nanmedian(residual):.1f} px); check the keypoints or raise the threshold",
        )  # fmt: skip
    params = {
        "global_orient": np.zeros((T, 3)),
        "pose": np.zeros((T, model.num_pose_joints, 3)),
        "transl": np.zeros((T, 3)),
    }
    params["global_orient"][idx] = res.global_orient.cpu().numpy()
    params["pose"][idx] = res.pose.cpu().numpy()
    params["transl"][idx] = res.transl.cpu().numpy()
    params = fill_invalid(params, valid, cfg.end_window, cfg.end_horizon)
    betas = res.betas.cpu().numpy()
    with torch.no_grad():
        keypoints = model.forward_keypoints(
            as_t(params["global_orient"]), as_t(params["pose"]), as_t(betas), as_t(params["transl"])
        )
    log.info(
        "%s hand: fitted %d/%d frames, median residual %.2f px, %d valid (max %.1f px)",
        side, len(idx), T, np.nanmedian(residual), valid.sum(), cfg.max_residual_px,
    )  # fmt: skip
    return params | {
        "betas": betas,
        "keypoints": keypoints.cpu().numpy(),
        "kp2d": est["kp2d"],
        "residual_px": residual,
        "valid": valid,
    }


def run_hands(
    raw: Path,
    frames_dir: Path,
    out: Path,
    cfg: HandsConfig,
    hand_cfg: HandConfig,
    camera: CameraConfig,
    device: str,
) -> dict:
    """Fit every hand (RAW/hands.npz, or mediapipe's estimates) and write ``hands.npz`` and ``hands.json``;
    returns the summary."""
    info = FramesInfo.load(frames_dir / "frames.json")
    K = info.intrinsics()
    K = K if K is not None else default_intrinsics(info.image_size, camera.default_fov_deg)
    summary: dict = {"backend": cfg.backend}
    if cfg.backend == "mediapipe":
        from preprocess.mediapipe import estimate_hands

        path, summary["mediapipe"] = estimate_hands(
            frames_dir, info.num_frames, out / "mediapipe", cfg.mediapipe
        )
        estimates = load_hands_npz(path, info.num_frames)
        if not cfg.mediapipe.use_world_landmarks:
            for est in estimates.values():
                est.pop("kp3d", None)
    else:
        estimates = read_hand_estimates(raw, info)
    arrays: dict[str, np.ndarray] = {"K": K}
    summary |= {"sides": list(estimates), "hand_model": hand_cfg.model}
    for side, est in estimates.items():
        fitted = fit_side(side, est, K, hand_cfg, cfg, device)
        if not fitted["valid"].any():
            raise PreprocessError(
                STEP,
                f"the {side} hand could not be fitted in any of the {info.num_frames} frames (no frame has "
                f"≥ {cfg.min_keypoints} confident keypoints with a residual ≤ {cfg.max_residual_px} px): "
                "check the hand estimates",
            )
        arrays |= {f"{side}.{k}": np.asarray(v) for k, v in fitted.items()}
        summary[side] = {
            "valid": int(fitted["valid"].sum()),
            "median_residual_px": round(float(np.nanmedian(fitted["residual_px"])), 3),
        }
    write_npz(out / "hands.npz", arrays)
    write_json(out / "hands.json", summary)
    return summary
