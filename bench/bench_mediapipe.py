"""Benchmark of the ``mediapipe`` hand backend on the synthetic demo's rendered frames, against gt.

    .venv/bin/python bench/bench_mediapipe.py [--raw RAW] [--work DIR] [--out bench/results/mediapipe.json]
                                              [--compare-import] [--held-out SPEC] [key=value …]

Needs the mediapipe environment (``make mediapipe-env``). Generates the demo RAW dir (``hold-synth
--preset demo --seed 0``) when ``--raw`` is not given, runs the preprocessing steps ``frames`` and
``hands`` with ``hands.backend=mediapipe`` (and ``--redo``) and writes (JSON):

* ``detection_rate``            target ≥ 0.80: frames where the right hand got a detection
* ``kp2d_err_px_median``        target ≤ 6 px: median over the keypoints of those frames of the
                                distance between mediapipe's 2D keypoints and the projected gt joints
* ``mpjpe_mm``                  target ≤ 20 mm: root-relative MPJPE of the fitted hand, all frames
                                (frames without a detection are interpolated, as the pipeline does)

plus diagnostics: the MPJPE over detected frames, the error of mediapipe's own root-relative world
landmarks, per-keypoint 2D errors, timings, and (``--compare-import``) the same fit to the emulated
``import`` estimates of the RAW dir.

The demo clip is one clip. ``--held-out "bottle:1-24 can:1-6"`` also runs other synthetic clips
(``object:seeds``, the demo preset; their RAW dirs cached in ``DIR/clips``) and reports each clip's
metrics, their medians, the mean MPJPE and how many clips meet each target and all three: a change
to the fitting should help there too, not only on the demo. A clip where mediapipe finds no usable
hand is listed with the error.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import targets  # noqa: E402  (bench/targets.py)
from demo_clip import ensure_clip, is_current  # noqa: E402  (bench/demo_clip.py)

from hold.data.sequence import read_ground_truth  # noqa: E402
from hold.eval.metrics import mpjpe_mm  # noqa: E402
from hold.geometry.camera import project  # noqa: E402
from hold.utils.io import write_json  # noqa: E402
from hold.utils.logging import setup_logging  # noqa: E402
from preprocess.config import load_preprocess_config  # noqa: E402
from preprocess.errors import PreprocessError  # noqa: E402
from preprocess.frames import FramesInfo  # noqa: E402
from preprocess.mediapipe import MAKE_COMMAND, environment_ready  # noqa: E402
from preprocess.pipeline import run_pipeline  # noqa: E402

TARGETS = {
    "detection_rate": (">=", 0.80),
    "kp2d_err_px_median": ("<=", 6.0),
    "mpjpe_mm": ("<=", 20.0),
}
SIDE = "right"


def evaluate(seq: Path, raw: Path) -> dict:
    """Accuracy of step ``hands``' output in SEQ/work against RAW/gt (frames as kept by step frames)."""
    work = seq / "work"
    info = FramesInfo.load(work / "frames" / "frames.json")
    gt = read_ground_truth(raw / "gt").joints[SIDE][np.asarray(info.source_indices)]
    with np.load(work / "hands" / "hands.npz") as f:
        fitted = {k: f[k] for k in f.files}
    K = fitted["K"]
    out: dict = {"num_frames": int(len(gt))}
    mp_file = work / "hands" / "mediapipe" / "hands.npz"
    if mp_file.is_file():
        with np.load(mp_file) as f:
            est = {k: f[k] for k in f.files}
        det = est[f"{SIDE}.valid"]
        err2d = np.linalg.norm(est[f"{SIDE}.kp2d"][..., :2] - project(gt, K), axis=-1)[det]  # (D, 21)
        world = est[f"{SIDE}.kp3d"][det]
        gt_rel = (gt - gt[:, :1])[det]
        out |= {
            "detection_rate": round(float(det.mean()), 4),
            "frames_detected": int(det.sum()),
            "kp2d_err_px_median": round(float(np.median(err2d)), 3) if det.any() else None,
            "kp2d_err_px_mean": round(float(err2d.mean()), 3) if det.any() else None,
            "kp2d_err_px_per_keypoint_median": np.round(np.median(err2d, 0), 2).tolist()
            if det.any()
            else None,
            "world_landmarks_mpjpe_mm": round(float(np.linalg.norm(world - gt_rel, axis=-1).mean() * 1e3), 2)
            if det.any()
            else None,
        }
    valid = fitted[f"{SIDE}.valid"]
    out |= {
        "mpjpe_mm": round(mpjpe_mm(fitted[f"{SIDE}.keypoints"], gt), 3),
        "mpjpe_mm_fit_valid_frames": round(mpjpe_mm(fitted[f"{SIDE}.keypoints"], gt, valid), 3),
        "fit_valid_frames": int(valid.sum()),
        "fit_residual_px_median": round(float(np.nanmedian(fitted[f"{SIDE}.residual_px"])), 3),
    }
    if "detection_rate" in out:
        out["mpjpe_mm_detected_frames"] = round(
            mpjpe_mm(fitted[f"{SIDE}.keypoints"], gt, est[f"{SIDE}.valid"]), 3
        )
    return out


def run(raw: Path, seq: Path, overrides: list[str]) -> tuple[dict, dict]:
    """Steps frames + hands with the overrides; returns (metrics, seconds per step)."""
    cfg = load_preprocess_config(overrides)
    result = run_pipeline(raw, seq, steps=["frames", "hands"], redo=True, cfg=cfg)
    return evaluate(seq, raw), {k: round(v, 2) for k, v in result.ran.items()}


def parse_clips(spec: str) -> list[tuple[str, int]]:
    """``"bottle:1-3 can:5"`` → [("bottle", 1), ("bottle", 2), ("bottle", 3), ("can", 5)]."""
    clips = []
    for item in spec.split():
        obj, _, seeds = item.partition(":")
        first, _, last = seeds.partition("-")
        if not obj or not first.isdigit() or not (last or first).isdigit():
            raise SystemExit(
                f"bench_mediapipe: --held-out item {item!r}: expected object:seed or object:first-last"
            )
        seeds_range = range(int(first), int(last or first) + 1)
        if 0 in seeds_range:
            raise SystemExit(f"bench_mediapipe: --held-out item {item!r}: seed 0 is the demo clip itself")
        clips += [(obj, seed) for seed in seeds_range]
    return clips


def held_out(clips: list[tuple[str, int]], work: Path, overrides: list[str]) -> dict:
    """Metrics of each clip (generated once into ``work/<object>-seed<s>/raw``) and their summary."""
    per_clip: dict[str, dict] = {}
    for i, (obj, seed) in enumerate(clips, 1):
        name = f"{obj}-seed{seed}"
        print(f"bench_mediapipe: held-out clip {i}/{len(clips)}: {name}", file=sys.stderr, flush=True)
        raw = work / name / "raw"
        ensure_clip(raw, seed=seed, obj=obj)
        try:
            metrics, _ = run(raw, work / name / "seq", overrides)
        except PreprocessError as e:
            per_clip[name] = {"error": e.message}
            continue
        keys = ("detection_rate", "kp2d_err_px_median", "mpjpe_mm", "mpjpe_mm_detected_frames")
        per_clip[name] = {k: metrics.get(k) for k in keys}
    fitted = [m for m in per_clip.values() if "mpjpe_mm" in m]

    def median(key: str) -> float | None:
        values = [m[key] for m in fitted if m[key] is not None]
        return round(float(np.median(values)), 3) if values else None

    return {
        "clips": len(clips),
        "clips_fitted": len(fitted),
        "clips_meeting": {
            name: sum(targets.check(m, {name: target})[name] for m in fitted)
            for name, target in TARGETS.items()
        }
        | {"all_targets": sum(all(targets.check(m, TARGETS).values()) for m in fitted)},
        "mpjpe_mm_mean": round(float(np.mean([m["mpjpe_mm"] for m in fitted])), 3) if fitted else None,
        "mpjpe_mm_median": median("mpjpe_mm"),
        "mpjpe_mm_detected_frames_median": median("mpjpe_mm_detected_frames"),
        "detection_rate_median": median("detection_rate"),
        "kp2d_err_px_median_median": median("kp2d_err_px_median"),
        "per_clip": per_clip,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=None, help="RAW dir (default: generate the demo preset)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hold-bench-mediapipe")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mediapipe.json")
    parser.add_argument("--compare-import", action="store_true", help="also fit the RAW dir's hands.npz")
    parser.add_argument(
        "--held-out",
        default="",
        metavar="SPEC",
        help="also run other synthetic clips, e.g. 'bottle:1-24 can:1-6'",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="preprocess config overrides")
    args = parser.parse_args(argv)
    clips = parse_clips(args.held_out)
    if not environment_ready(load_preprocess_config(args.overrides).hands.mediapipe):
        print(f"bench_mediapipe: the mediapipe environment is missing; run `{MAKE_COMMAND}`", file=sys.stderr)
        return 2
    setup_logging()
    timings: dict[str, float] = {}
    raw = args.raw
    if raw is None:
        raw = args.work / "raw"
        start = time.perf_counter()
        if ensure_clip(raw):
            timings["generate_demo_raw"] = round(time.perf_counter() - start, 2)
    overrides = ["hands.backend=mediapipe", *args.overrides]
    metrics, seconds = run(raw, args.work / "seq", overrides)
    done = json.loads((args.work / "seq" / "work" / "hands" / "done.json").read_text())
    report = {
        "benchmark": "mediapipe hand backend on the synthetic demo frames (seed 0)",
        "raw": str(raw),
        "raw_is_current_demo": is_current(raw),
        "image_size": FramesInfo.load(args.work / "seq" / "work" / "frames" / "frames.json").image_size,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "seconds": seconds | timings,
        "mediapipe": done["summary"].get("mediapipe"),
        "metrics": metrics,
        "targets": targets.describe(TARGETS),
        "met": targets.check(metrics, TARGETS),
        "overrides": overrides,
    }
    if args.compare_import:
        imp, imp_seconds = run(raw, args.work / "seq-import", ["hands.backend=import", *args.overrides])
        report["import_backend"] = {"metrics": imp, "seconds": imp_seconds}
    if clips:
        report["held_out"] = held_out(clips, args.work / "clips", overrides)
    write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0 if all(report["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
