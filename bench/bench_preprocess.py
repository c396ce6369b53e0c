"""Benchmark of ``hold-preprocess`` on the synthetic demo RAW dir, against the issue's targets.

    .venv/bin/python bench/bench_preprocess.py [--raw RAW] [--work DIR] [--out bench/results/preprocess.json]

(``--work`` defaults to $TMPDIR/hold-bench-preprocess: the RAW dir and the SEQUENCE dir go there.)

Generates the demo RAW dir (``hold-synth --preset demo --seed 0``) when ``--raw`` is not given, runs
every step with ``--redo`` and writes per-step seconds and the accuracy numbers (JSON):

* ``sfm_registered_fraction``    target ≥ 0.90
* ``object_rot_err_deg_median``  target ≤ 5°: angle between R_t R_0^T of SfM and of gt (every frame)
* ``hand_mpjpe_mm``              target ≤ 15 mm: root-relative, 21 keypoints, all frames
* ``sequence_validates``         target true

plus diagnostics of the alignment (object scale, wrist and object-centre errors in the camera frame).
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
import torch
from scipy.spatial.transform import Rotation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import targets  # noqa: E402  (bench/targets.py)
from demo_clip import ensure_clip, is_current  # noqa: E402  (bench/demo_clip.py)

from hold.data.sequence import read_ground_truth, read_sequence, validate_sequence  # noqa: E402
from hold.eval.metrics import mpjpe_mm  # noqa: E402
from hold.hand.build import build_hand_model  # noqa: E402
from hold.utils.io import write_json  # noqa: E402
from hold.utils.logging import setup_logging  # noqa: E402
from preprocess.config import load_preprocess_config  # noqa: E402
from preprocess.pipeline import run_pipeline  # noqa: E402

TARGETS = {
    "sfm_registered_fraction": (">=", 0.90),
    "object_rot_err_deg_median": ("<=", 5.0),
    "hand_mpjpe_mm": ("<=", 15.0),
    "sequence_validates": ("==", True),
}


def predicted_joints(seq_dir: Path, side: str = "right") -> np.ndarray:
    """(T, 21, 3) keypoints of the hand model posed by the SEQUENCE's parameters."""
    seq = read_sequence(seq_dir, check_pixels=False)
    h = seq.hands[side]
    model = build_hand_model(None, side)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        return model(t(h.global_orient), t(h.pose), t(h.betas), t(h.transl)).keypoints.numpy()


def evaluate(seq_dir: Path, raw: Path) -> dict:
    """Accuracy of the built SEQUENCE against RAW/gt."""
    gt = read_ground_truth(raw / "gt")
    seq = read_sequence(seq_dir, check_pixels=False)
    R = Rotation.from_rotvec(seq.object.rot).as_matrix()
    rel_p = np.einsum("tij,kj->tik", R, R[0])
    rel_g = np.einsum("tij,kj->tik", gt.object_R, gt.object_R[0])
    rot_err = np.degrees(Rotation.from_matrix(np.einsum("tij,tkj->tik", rel_p, rel_g)).magnitude())
    joints = predicted_joints(seq_dir)
    wrist_err = np.linalg.norm(joints[:, 0] - gt.joints["right"][:, 0], axis=1) * 1e3
    # The canonical origin is a point q of the object (unknown in the gt frame); SfM gives its path up
    # to the scale: s·u_t = R_gt,t q + t_gt,t. Least squares over (s, q) gives the scale a perfect
    # alignment would have found, and where the origin really is in each frame.
    with np.load(seq_dir / "work" / "sfm" / "sfm.npz") as f:
        u = f["u"].astype(np.float64)
    A = np.concatenate([u[:, :, None], -gt.object_R], axis=2).reshape(-1, 4)
    (s_fit, *q), *_ = np.linalg.lstsq(A, gt.object_t.reshape(-1), rcond=None)
    origin_gt = np.einsum("tij,j->ti", gt.object_R, np.asarray(q)) + gt.object_t
    origin_err = np.linalg.norm(seq.object.transl - origin_gt, axis=1) * 1e3
    sfm = json.loads((seq_dir / "work" / "sfm" / "done.json").read_text())["summary"]
    return {
        "sfm_registered_fraction": sfm["registered_fraction"],
        "sfm_registered": f"{sfm['registered']}/{sfm['num_frames']}",
        "object_rot_err_deg_median": round(float(np.median(rot_err)), 3),
        "object_rot_err_deg_max": round(float(rot_err.max()), 3),
        "hand_mpjpe_mm": round(mpjpe_mm(joints, gt.joints["right"]), 3),
        "hand_mpjpe_mm_valid_frames": round(mpjpe_mm(joints, gt.joints["right"], seq.valid), 3),
        "valid_frames": int(seq.valid.sum()),
        "num_frames": seq.num_frames,
        "diagnostics": {
            "focal_px": round(float(seq.K[0, 0]), 3),
            "focal_source": sfm["focal_source"],
            "object_scale": round(seq.object.scale, 5),
            "object_scale_ratio_pred_over_best": round(seq.object.scale / float(s_fit), 4),
            "object_origin_err_mm_median": round(float(np.median(origin_err)), 2),
            "wrist_err_mm_median": round(float(np.median(wrist_err)), 2),
            "sfm_points": sfm["points"],
            "sfm_reprojection_px": sfm["mean_reprojection_px"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=None, help="RAW dir (default: generate the demo preset)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hold-bench-preprocess")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "preprocess.json")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="preprocess config overrides")
    args = parser.parse_args(argv)
    setup_logging()
    timings: dict[str, float] = {}
    raw = args.raw
    if raw is None:
        raw = args.work / "raw"
        start = time.perf_counter()
        if ensure_clip(raw):
            timings["generate_demo_raw"] = round(time.perf_counter() - start, 2)
    seq = args.work / "seq"
    cfg = load_preprocess_config(args.overrides)
    start = time.perf_counter()
    result = run_pipeline(raw, seq, redo=True, cfg=cfg)
    total = time.perf_counter() - start
    try:
        validate_sequence(seq)
        validates = True
    except Exception as e:  # report, don't crash the benchmark
        print(f"sequence does not validate: {e}", file=sys.stderr)
        validates = False
    metrics = evaluate(seq, raw) | {"sequence_validates": validates}
    report = {
        "benchmark": "preprocess on the synthetic demo RAW dir (seed 0)",
        "raw": str(raw),
        "raw_is_current_demo": is_current(raw),
        "machine": {
            "platform": platform.platform(),
            "cpus": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "seconds": {k: round(v, 2) for k, v in result.ran.items()} | {"total": round(total, 2)} | timings,
        "metrics": metrics,
        "targets": targets.describe(TARGETS),
        "met": targets.check(metrics, TARGETS),
        "overrides": args.overrides,
    }
    write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0 if all(report["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
