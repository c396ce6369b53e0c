"""The verdict rules of the preprocessing report: per step ok / warning / failed / not run, the numbers
behind it, the warnings the step recorded, and what to do next (``preprocess.report`` renders them).

A finished step is ``failed`` only where its output will most likely not train (most frames without
an object or a fitted hand, a hand that does not touch the object); weaker signs are warnings. Every
threshold is a field of ``ReportThresholds`` with the reason for its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from preprocess import STEPS
from preprocess.report_data import ReportData, contact_distances, frame_ranges

STATUSES = ("ok", "warning", "failed", "not run")
_RANK = {"not run": 0, "ok": 1, "warning": 2, "failed": 3}


@dataclass(frozen=True)
class ReportThresholds:
    """Where a verdict turns from ok to warning or failed (shares are of the T frames)."""

    min_frames: int = 8
    """Fewer frames warn: SfM and the visual hull of the masks (sfm.hull_min_frames = 8) need views."""
    masks_empty_warn: float = 0.1
    """Frames without object pixels above this share warn: they give SfM, the hull and training nothing."""
    masks_empty_fail: float = 0.5
    """Above this share the masks fail: the masks step's own limit (masks.min_frames_with_object)."""
    tiny_object_fraction: float = 0.002
    """An object covering less of the image is tiny: ~150 px at 320×240, too few for SIFT features."""
    masks_tiny_warn: float = 0.25
    """Frames with a tiny object above this share warn (SfM then rarely registers the object)."""
    masks_no_hand_warn: float = 0.1
    """Frames without any hand label above this share warn: the hand's silhouette term has nothing."""
    hands_filled_warn: float = 0.1
    """Frames whose hand is interpolated above this share warn (as sfm.warn_filled_fraction for poses)."""
    hands_valid_fail: float = 0.3
    """Fitted hands in fewer frames fail: most hand poses, and hand-anchored object poses, are guesses
    (the suite's realistic-noise clips that failed in training had ≤ 70 % fitted and no SfM)."""
    hands_residual_warn_ratio: float = 0.5
    """A median fit residual above this share of hands.max_residual_px warns: noisy keypoints or a wrong
    focal length (mild-noise clips fit at ~2 px, realistic ones ~6 px, against a 12 px limit)."""
    sfm_interpolated_warn: float = 0.2
    """Frames with neither an SfM pose nor a fitted hand (interpolated) above this share warn."""
    contact_warn_m: float = 0.01
    """A median finger-to-object distance above this warns: align's contact scale (align.contact_sigma_m);
    fingers holding an object are within a few mm of its surface."""
    contact_fail_m: float = 0.03
    """Above this the alignment fails: the hand does not hold the object (3 cm, a finger segment)."""
    scale_edge: float = 0.9
    """A final object scale beyond this share of align.scale_search_range (log scale) from its start
    warns: the contact search ran into its limit, so the size is not determined by the contact."""
    valid_warn: float = 0.5
    """Fewer valid frames in the SEQUENCE dir warn: hold-export renders and *_detected metrics use them."""


@dataclass
class Verdict:
    """One step's verdict.

    Attributes:
        step: the step name.
        status: one of ``STATUSES``.
        summary: one or two sentences with the numbers.
        numbers: the numbers behind the verdict (also in report.json).
        advice: concrete next steps, in words.
        warnings: the warnings and fallbacks the step recorded, verbatim.
    """

    step: str
    status: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def worsen(self, status: str) -> None:
        if _RANK[status] > _RANK[self.status]:
            self.status = status

    def add_warning(self, text: str) -> None:
        self.warnings.append(text)
        self.worsen("warning")


def _share(mask: np.ndarray) -> float:
    return float(np.mean(mask)) if len(mask) else 0.0


def frames_verdict(data: ReportData, th: ReportThresholds) -> Verdict:
    f = data.frames or {}
    T, (H, W) = f.get("num_frames", 0), f.get("image_size", [0, 0])
    camera = "RAW/camera.json" if f.get("K") is not None else "the default field of view (no RAW/camera.json)"
    v = Verdict(
        "frames", "ok",
        f"{T} frames of {W}×{H} px (of {f.get('num_input_frames', T)} input frames); intrinsics from {camera}.",
        {"num_frames": T, "image_size": [H, W], "input_size": f.get("input_size"),
         "num_input_frames": f.get("num_input_frames"), "camera_json": f.get("K") is not None},
    )  # fmt: skip
    if th.min_frames > T:
        v.worsen("warning")
        v.advice.append(
            f"only {T} frames: SfM and the mask hull want ≥ {th.min_frames} views; use a longer clip or "
            "keep every frame (frames.stride=1, frames.max_frames=0)"
        )
    return v


def masks_verdict(data: ReportData, th: ReportThresholds) -> Verdict:
    if data.areas is not None:
        obj = data.areas["object"]
        hand = data.areas["right hand"] + data.areas["left hand"]
    else:
        obj = np.asarray((data.masks or {}).get("object_fraction", []), np.float64)
        hand = np.asarray((data.masks or {}).get("hand_fraction", np.ones_like(obj)), np.float64)
    T = len(obj)
    min_object = data.config("masks", "masks", "min_object_fraction", 0.0)
    empty = obj < max(min_object, 1e-12)
    tiny = ~empty & (obj < th.tiny_object_fraction)
    no_hand = hand <= 0
    median = 100 * float(np.median(obj[~empty])) if (~empty).any() else 0.0
    v = Verdict(
        "masks", "ok",
        f"object pixels in {int((~empty).sum())}/{T} frames (median {median:.2f}% of the image)"
        + (f"; none in {int(empty.sum())} ({frame_ranges(np.flatnonzero(empty))})" if empty.any() else "")
        + (f"; tiny (< {100 * th.tiny_object_fraction:g}%) in {int(tiny.sum())}" if tiny.any() else "")
        + (f"; no hand pixels in {int(no_hand.sum())}" if no_hand.any() else "") + ".",
        {"backend": (data.masks or {}).get("backend"), "frames_with_object": int((~empty).sum()),
         "frames_without_object": np.flatnonzero(empty).tolist(), "frames_tiny_object": np.flatnonzero(tiny).tolist(),
         "frames_without_hand": np.flatnonzero(no_hand).tolist(), "median_object_percent": round(median, 3)},
    )  # fmt: skip
    _backend_numbers(v, data.masks or {})
    if _share(empty) > th.masks_empty_fail:
        v.worsen("failed")
    if _share(empty) > th.masks_empty_warn:
        v.worsen("warning")
        v.advice.append(
            f"check the segmentation of frames {frame_ranges(np.flatnonzero(empty))} (RAW/masks, or the prompts "
            "of masks.backend=sam2 in RAW/prompts.json): without object pixels SfM, the mask hull and training lose those views; "
            "or trim the clip to where the object is visible"
        )
    if _share(tiny) > th.masks_tiny_warn:
        v.worsen("warning")
        v.advice.append(
            f"the object covers < {100 * th.tiny_object_fraction:g}% of the image in {int(tiny.sum())} frames: "
            "film closer, or keep the full resolution (frames.max_size=0)"
        )
    if _share(no_hand) > th.masks_no_hand_warn:
        v.worsen("warning")
        v.advice.append(
            f"label the hand (2 right, 3 left) in frames {frame_ranges(np.flatnonzero(no_hand))}: training fits the "
            "hand to its silhouette"
        )
    return v


def _backend_numbers(v: Verdict, masks: dict) -> None:
    """What the sam2 / static backend measured: a sentence, its numbers, its warnings verbatim."""
    unknown = masks.get("unknown_fraction")
    if unknown:
        v.numbers["median_unknown_percent"] = round(100 * float(np.median(unknown)), 3)
    if "static" in masks:
        r = masks["static"]
        lo, hi = r["gain_range"]
        v.summary += (
            f" Background from {'the clean plate' if r['background'] == 'clean plate' else 'the clip'}"
            f" ({100 * r['never_uncovered_fraction']:.1f}% never seen), lighting gain {lo:.3f}–{hi:.3f}, "
            f"shadow {100 * float(np.median(r['shadow_fraction'] or [0])):.1f}% of the image (median)."
        )
        v.numbers["static"] = {
            k: r[k] for k in ("background", "never_uncovered_fraction", "gain_range", "noise_std")
        }
        for w in r.get("warnings", []):
            v.add_warning(w)
    if "sam2" in masks:
        r = masks["sam2"]
        v.summary += f" SAM 2, object prompt: {r['object_prompt']}."
        v.numbers["sam2"] = {"object_prompt": r["object_prompt"], "prompted_frames": r["prompted_frames"]}


def hands_verdict(data: ReportData, th: ReportThresholds) -> Verdict:
    limit = float(data.config("hands", "hands", "max_residual_px", 12.0))
    v = Verdict("hands", "ok", "", {"backend": (data.hands_json or {}).get("backend")})
    sentences = []
    mp = (data.hands_json or {}).get("mediapipe")
    if mp:
        v.numbers |= {"frames_with_detection": mp.get("frames_with_detection"),
                      "detection_fallback_frames": mp.get("detection_fallback_frames")}  # fmt: skip
        sentences.append(
            f"mediapipe detected a hand in {mp.get('frames_with_detection')}/{data.num_frames} frames "
            f"({mp.get('detection_fallback_frames')} by the detection fallback)"
        )
    for side in data.sides:
        res = np.asarray(data.hands[f"{side}.residual_px"], np.float64)
        valid = np.asarray(data.hands[f"{side}.valid"], bool)
        T, fitted = len(res), np.isfinite(res)
        rejected = fitted & ~valid
        median = float(np.nanmedian(res)) if fitted.any() else float("nan")
        conf = float(np.asarray(data.hands[f"{side}.kp2d"])[..., 2].mean())
        v.numbers[side] = {
            "fitted": int(fitted.sum()), "valid": int(valid.sum()), "interpolated": int((~valid).sum()),
            "over_residual_limit": int(rejected.sum()), "median_residual_px": round(median, 2),
            "p90_residual_px": round(float(np.nanpercentile(res, 90)), 2) if fitted.any() else None,
            "max_residual_px": limit, "mean_confidence": round(conf, 3),
        }  # fmt: skip
        text = f"{side} hand fitted in {int(fitted.sum())}/{T} frames, kept {int(valid.sum())} (median residual {median:.1f} px, limit {limit:g})"
        if (~valid).any():
            text += f"; {int((~valid).sum())} interpolated ({frame_ranges(np.flatnonzero(~valid))})"
        sentences.append(text)
        if _share(valid) < th.hands_valid_fail:
            v.worsen("failed")
        if _share(~valid) > th.hands_filled_warn:
            v.worsen("warning")
            v.advice.append(
                f"the {side} hand is interpolated in {int((~valid).sum())}/{T} frames "
                f"({frame_ranges(np.flatnonzero(~valid))}): check the hand estimates there (RAW/hands.npz keypoints "
                "and confidences, or mediapipe's detections); where SfM does not register the object either, its "
                "poses there are interpolated too"
            )
            if rejected.any():
                v.advice.append(
                    f"{int(rejected.sum())} {side}-hand fits exceed hands.max_residual_px={limit:g}: if they look "
                    "right on the contact sheet, raise it"
                )
        if median > th.hands_residual_warn_ratio * limit:
            v.worsen("warning")
            v.advice.append(
                f"the {side} hand's median residual {median:.1f} px is over {th.hands_residual_warn_ratio:.0%} of the "
                "limit: noisy keypoints, or a wrong focal length (give RAW/camera.json)"
            )
    v.summary = "; ".join(sentences) + "." if sentences else "no hand was fitted."
    return v


def sfm_verdict(data: ReportData, th: ReportThresholds) -> Verdict:
    s = data.sfm_json or data.done["sfm"].get("summary", {})
    T = int(s.get("num_frames") or data.num_frames or 0)
    src = s.get("sources", {})
    kept, hand, interp, other = (
        int(src.get(k, 0)) for k in ("sfm_registered", "hand_anchored", "interpolated", "other_fallback")
    )
    reg, mode = int(s.get("registered", 0)), s.get("mode")
    reproj = s.get("mean_reprojection_px")
    v = Verdict("sfm", "ok", "", {
        "mode": mode, "registered": reg, "kept": kept, "num_frames": T, "registered_fraction": s.get("registered_fraction"),
        "sources": src, "pose_outliers": s.get("pose_outliers"), "mean_reprojection_px": reproj,
        "points": s.get("points"), "focal_source": s.get("focal_source"),
        "hand_deviation_median_deg": (s.get("hand_deviation_deg") or {}).get("median"),
        "attempts": [f"{a.get('name')}: {a.get('registered')}" for a in s.get("attempts", [])],
        "sfm_rejected": s.get("sfm_rejected"),
    })  # fmt: skip
    filled = f"{hand} anchored to the hand, {interp} interpolated" + (
        f", {other} from smaller SfM models" if other else ""
    )
    if mode == "hand":
        v.summary = (
            f"object poses from the hand: {s.get('sfm_rejected')} ({reg} registered, {s.get('pose_outliers', 0)} "
            f"rejected); anchored to the hand in {hand} frames, interpolated in {interp}; the shape starts from "
            "the mask hull."
        )
    else:
        err = f", mean reprojection {reproj:.2f} px" if isinstance(reproj, (int, float)) else ""
        v.summary = f"SfM registered {reg}/{T} frames, kept {kept} ({s.get('points')} points{err}); {filled}."
    warn_filled = float(data.config("sfm", "sfm", "warn_filled_fraction", 0.1))
    if mode == "hand" or (T and (T - kept) / T > warn_filled):
        v.worsen("warning")
        if "disagrees" in str(s.get("sfm_rejected")):
            v.advice.append(
                "SfM's model disagrees with the hand (a flat, thin or symmetric object lets SfM drift), so the "
                "hand's poses were used: check the rotation track below for a smooth turn"
            )
        else:
            v.advice.append(
                f"SfM registered {reg}/{T} frames: the object looks low-texture, small or thin to SfM. Poses came "
                f"from the hand for {hand} frames — check the rotation track below; for SfM poses give masks with "
                "cleaner object boundaries, a longer clip, larger frames (frames.max_size=0), or try sfm.backend=hloc"
            )
        if s.get("focal_source") == "default_fov":
            v.advice.append(
                "give RAW/camera.json: without SfM the focal length, and so the object's size, is a guess"
            )
    if T and interp / T > th.sfm_interpolated_warn:
        v.worsen("warning")
        v.advice.append(
            f"{interp} frames have neither an SfM pose nor a fitted hand (interpolated): improve the hand fits there first"
        )
    for w in s.get("warnings", []):
        v.add_warning(w)
    return v


def align_verdict(data: ReportData, th: ReportThresholds) -> Verdict:
    a = data.align_json or {}
    scale, start = a.get("scale"), a.get("initial_scale")
    k = int(data.config("align", "align", "contact_fingers", 3))
    v = Verdict("align", "ok", "", {"scale_m": scale, "initial_scale_m": start,
                                    "final_terms": (a.get("phases") or {}).get("ho") or a.get("phases")})  # fmt: skip
    sentences = [
        f"object scale {scale:.4f} m (start {start:.4f} m)" if scale and start else "no scale recorded"
    ]
    for side in data.sides:
        found = contact_distances(data, side)
        if found is None:
            continue
        dist, origin, offset = found
        valid = np.asarray(data.hands[f"{side}.valid"], bool)
        closest = np.sort(dist, -1)[:, :k].mean(-1)[valid if valid.any() else slice(None)]
        median, p90 = 1000 * float(np.median(closest)), 1000 * float(np.percentile(closest, 90))
        warn_mm, fail_mm = 1000 * (th.contact_warn_m + offset), 1000 * (th.contact_fail_m + offset)
        over = int((closest > th.contact_warn_m + offset).sum())
        v.numbers[f"{side}_contact"] = {"median_mm": round(median, 2), "p90_mm": round(p90, 2),
                                        "warning_above_mm": warn_mm, "frames_above": over, "measured_from": origin}  # fmt: skip
        sentences.append(
            f"{side} hand: median contact {median:.1f} mm over the {len(closest)} frames with a fitted hand "
            f"(90th percentile {p90:.1f} mm; mean of the {k} closest fingers, from {origin})"
        )
        if median > fail_mm:
            v.worsen("failed")
        if median > warn_mm:
            v.worsen("warning")
            v.advice.append(
                f"the {side} hand's fingers do not reach the object (median {median:.0f} mm): its scale or depth is off "
                "— check the contact sheet; better object poses (step sfm) or hand fits help"
            )
    edge = float(data.config("align", "align", "scale_search_range", 2.0))
    if scale and start and edge > 1 and abs(np.log(scale / start)) >= th.scale_edge * np.log(edge):
        v.worsen("warning")
        v.advice.append(
            f"the object scale moved ×{scale / start:.2f} from its start, to the edge of align.scale_search_range "
            f"(×{edge:g}): the contact did not settle the size; check the object on the contact sheet"
        )
    v.summary = "; ".join(sentences) + "."
    return v


def build_verdict(data: ReportData, th: ReportThresholds) -> Verdict:
    meta, arrays = data.sequence_json or {}, data.sequence or {}
    T = int(meta.get("num_frames", 0))
    valid = int(np.asarray(arrays.get("valid", [])).sum())
    points = len(arrays["object.points"]) if "object.points" in arrays else None
    overlay = (data.seq / "overlay.mp4").is_file()
    v = Verdict(
        "build", "ok",
        f"SEQUENCE dir with {T} frames ({valid} valid), hands {', '.join(meta.get('hands', []))}, {points} object points"
        + (", overlay.mp4" if overlay else "") + (", gt/" if (data.seq / "gt").is_dir() else "") + ".",
        {"num_frames": T, "valid": valid, "hands": meta.get("hands"), "object_points": points,
         "object_scale_m": float(arrays["object.scale"]) if "object.scale" in arrays else None, "overlay": overlay},
    )  # fmt: skip
    if not meta:
        v.status, v.summary = "failed", "step build finished but sequence.json is missing or unreadable."
        v.advice.append("re-run it: --steps build --redo")
    elif T and valid / T < th.valid_warn:
        v.worsen("warning")
        v.advice.append(
            f"only {valid}/{T} frames are valid (hand fitted): hold-export renders and the *_detected metrics use only those"
        )
    return v


_CHECKS = {"frames": frames_verdict, "masks": masks_verdict, "hands": hands_verdict,
           "sfm": sfm_verdict, "align": align_verdict, "build": build_verdict}  # fmt: skip


def step_verdicts(
    data: ReportData, th: ReportThresholds, failed_step: str | None = None, error: str | None = None
) -> list[Verdict]:
    """One verdict per step, in pipeline order: ``failed`` for the step that stopped with ``error``,
    ``not run`` for steps without output, else the checks above."""
    out = []
    for step in STEPS:
        if step == failed_step:
            kept = " The output of its previous run is kept." if step in data.done else ""
            out.append(Verdict(step, "failed", f"stopped with an error: {str(error).rstrip('.')}.{kept}", advice=[
                "fix what the error names, then re-run the same command: finished steps are skipped"]))  # fmt: skip
        elif step not in data.done and failed_step in STEPS and STEPS.index(step) > STEPS.index(failed_step):
            out.append(Verdict(step, "not run", f"not run: step {failed_step} failed before it.",
                               advice=[f"runs once step {failed_step} succeeds"]))  # fmt: skip
        elif step not in data.done:
            out.append(Verdict(step, "not run", f"not run (no work/{step}/done.json).",
                               advice=[f"run it: hold-preprocess RAW SEQ --steps {step}"]))  # fmt: skip
        else:
            try:
                out.append(_CHECKS[step](data, th))
            except (KeyError, ValueError, TypeError, IndexError) as e:  # an output of another layout
                out.append(Verdict(step, "warning", f"could not judge its output ({type(e).__name__}: {e}).",
                                   advice=[f"re-run it: --steps {step} --redo"]))  # fmt: skip
    return out
