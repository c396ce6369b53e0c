"""Object poses straight out of preprocessing, on the suite's clips: what training starts from.

For each clip: ``hold-synth`` (skipped when the RAW dir exists), ``hold-preprocess`` (hand estimates
imported), then the preprocessed object track against the ground truth, before any training:

- rotation error of the motion since frame 0 (``R_t R_0ᵀ`` against the GT's; no alignment needed),
  median and 95th percentile over the GT-valid frames;
- the object's size error: the canonical cloud's radius × scale against the GT mesh's radius (both
  about their bounding-box centres), % — a preprocessing-time proxy of the trained scale error;
- the canonical unit sphere's radius in metres over the GT object's radius: stage 1 reconstructs
  inside that sphere, so below 1 the object is cut;
- where every frame's pose came from (SfM registered / interpolated / hand-anchored), and the step's
  warnings.

The clip folders follow ``hold-suite``'s layout (``OUT/clips/NAME/raw``, ``sequence``), so a later
``hold-suite run OUT`` reuses nothing by mistake: it keeps its own step records. Writes JSON:

    python bench/bench_object_poses.py --out /tmp/poses --subset quick --json bench/results/object_poses.json
    python bench/bench_object_poses.py --out /tmp/poses --redo sfm   # re-run sfm, align, build only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from hold.data.sequence import read_sequence
from hold.suite.runner import run_step, synthesise_once
from hold.suite.spec import load_suite
from hold.utils.io import write_json

SOURCE_NAMES = {0: "sfm", 1: "interpolated", 2: "hand_anchored", 3: "other"}


def object_radius(points: np.ndarray) -> float:
    centre = 0.5 * (points.min(0) + points.max(0))
    return float(np.linalg.norm(points - centre, axis=1).max())


def score_clip(clip_path: Path) -> dict:
    """Pose and size errors of the preprocessed object track against gt/."""
    seq = read_sequence(clip_path / "sequence", check_pixels=False)
    with np.load(clip_path / "raw" / "gt" / "gt.npz") as gt:
        R_gt, valid = gt["object.R"], gt["valid"].astype(bool)
    R = Rotation.from_rotvec(seq.object.rot).as_matrix()
    ref = int(np.flatnonzero(valid)[0])
    rel_pred = R @ R[ref].T
    rel_gt = R_gt @ R_gt[ref].T
    err = np.degrees(Rotation.from_matrix(rel_pred @ np.transpose(rel_gt, (0, 2, 1))).magnitude())[valid]
    mesh = trimesh.load(clip_path / "raw" / "gt" / "object.ply", process=False, force="mesh")
    r_gt = object_radius(mesh.vertices)
    size_err = 100.0 * (seq.object.scale * object_radius(seq.object.points) / r_gt - 1)
    source = getattr(seq.object, "source", None)
    counts = (
        {name: int(np.sum(source == code)) for code, name in SOURCE_NAMES.items()}
        if source is not None
        else None
    )
    sfm = json.loads((clip_path / "sequence" / "work" / "sfm" / "sfm.json").read_text())
    return {
        "rotation_rel_ref_deg": {
            "median": round(float(np.median(err)), 2),
            "p95": round(float(np.percentile(err, 95)), 2),
            "max": round(float(err.max()), 2),
        },
        "size_error_pct": round(float(size_err), 1),
        "sphere_to_object": round(float(seq.object.scale / r_gt), 3),
        "sources": counts,
        "sfm": {k: sfm.get(k) for k in ("registered", "num_frames", "mode", "attempts", "warnings")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working dir (OUT/clips/NAME/…)")
    parser.add_argument("--suite", default="v1")
    parser.add_argument("--subset", default=None)
    parser.add_argument("--clips", default=None, help="comma-separated clip names")
    parser.add_argument(
        "--redo", choices=["none", "sfm", "all"], default="none",
        help="re-run sfm/align/build (sfm) or every preprocessing step (all) of existing clips",
    )  # fmt: skip
    parser.add_argument("--preprocess", action="append", default=[], help="KEY=VALUE for hold-preprocess")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args()
    suite = load_suite(args.suite)
    clips = suite.select(args.subset, args.clips.split(",") if args.clips else None)
    results = {}
    for clip in clips:
        path = args.out / "clips" / clip.name
        if not synthesise_once(clip, path, 600):
            results[clip.name] = {"status": "failed", "step": "synthesise"}
            continue
        argv = [str(path / "raw"), str(path / "sequence"), "hands.backend=import", *args.preprocess]
        if args.redo != "none":
            argv += ["--redo"] + (["--steps", "sfm,align,build"] if args.redo == "sfm" else [])
        start = time.perf_counter()
        code, _ = run_step("preprocess", argv, path / "logs" / "preprocess.log", 1200)
        seconds = round(time.perf_counter() - start, 1)
        if code != 0:
            log_tail = (path / "logs" / "preprocess.log").read_text().strip().splitlines()[-1:]
            results[clip.name] = {
                "status": "failed",
                "step": "preprocess",
                "error": log_tail,
                "seconds": seconds,
            }
        else:
            results[clip.name] = {"status": "ok", "seconds": seconds, **score_clip(path)}
        print(clip.name, json.dumps(results[clip.name]))
    ok = [r for r in results.values() if r["status"] == "ok"]

    def med(key: str, stat: str) -> float | None:
        vals = [r[key][stat] for r in ok]
        return round(statistics.median(vals), 2) if vals else None

    summary = {
        "clips": len(results),
        "ok": len(ok),
        "rotation_median_deg_median": med("rotation_rel_ref_deg", "median"),
        "rotation_p95_deg_median": med("rotation_rel_ref_deg", "p95"),
        "rotation_p95_deg_worst": max((r["rotation_rel_ref_deg"]["p95"] for r in ok), default=None),
        "size_error_pct_worst": max((abs(r["size_error_pct"]) for r in ok), default=None),
        "preprocess_args": args.preprocess,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        write_json(args.json, {"summary": summary, "clips": results})


if __name__ == "__main__":
    main()
