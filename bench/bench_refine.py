"""Stage-2 acceptance benchmark: does pose refinement improve the hand–object reconstruction?

On the synthetic demo (RAW dir with emulated-estimator hands and masks, plus gt/), runs preprocessing
(``hold-preprocess``; a perturbed copy of the oracle poses when preprocessing fails), then stages
1 → 2 → 3 with a preset, and measures three states with the same protocol:

- ``stage1``:  the stage-1 object mesh with the initial (stage-1) poses,
- ``refined``: the same mesh with the refined poses of stage 2,
- ``stage3``:  the stage-3 mesh with its poses (the full three-stage run).

Metrics: the mean fingertip–object gap and hand-in-object penetration depth (exact distances to the
reconstructed mesh; the GT values, for reference, use the GT meshes) and hold.eval's CD_h, CD, F10
and MPJPE against gt/. The run is resumable (re-running continues where it stopped). Writes JSON.

    python bench/bench_refine.py --data /tmp/demo --work /tmp/refine_bench --out bench/results/refine_demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
from demo_clip import ensure_clip  # bench/demo_clip.py
from scipy.spatial.transform import Rotation

from hold.config import load_config
from hold.data.sequence import Sequence, read_ground_truth, read_sequence, write_sequence
from hold.eval.evaluate import HandObjectSequence, evaluate, similarity_matrices
from hold.hand.build import build_hand_model
from hold.model.holdnet import HoldNet
from hold.params import FrameParams
from hold.refine.diagnostics import interaction_metrics
from hold.refine.stage import with_refined_poses
from hold.run import RunDir
from hold.stages import run_stages
from hold.utils.io import write_json


def perturbed_oracle(oracle: Path, raw: Path, out: Path, seed: int = 0) -> Path:
    """Fallback initial poses: the oracle's with estimator-like errors, and RAW's noisy masks."""
    seq = read_sequence(oracle)
    rng = np.random.default_rng(seed)
    T = seq.num_frames
    smooth = lambda s, scale: np.cumsum(rng.normal(0, s, (T, 3)), 0) * 0.3 + rng.normal(0, scale, (T, 3))  # noqa: E731
    for h in seq.hands.values():
        h.transl = h.transl + smooth(0.002, 0.003) + rng.normal(0, 0.01, 3)
        h.global_orient = (
            Rotation.from_rotvec(rng.normal(0, 0.05, (T, 3))) * Rotation.from_rotvec(h.global_orient)
        ).as_rotvec()
    o = seq.object
    o.rot = (Rotation.from_rotvec(rng.normal(0, 0.08, (T, 3))) * Rotation.from_rotvec(o.rot)).as_rotvec()
    o.transl = o.transl + smooth(0.002, 0.004) + rng.normal(0, 0.01, 3)
    o.scale = o.scale * 1.15
    images = [seq.load_image(t) for t in range(T)]
    masks = [np.asarray(__import__("PIL.Image").Image.open(raw / "masks" / f"{t:05d}.png")) for t in range(T)]
    seq.source = {"kind": "perturbed-oracle", "oracle": str(oracle)}
    write_sequence(out, seq, images, masks)
    shutil.copytree(oracle / "gt", out / "gt", dirs_exist_ok=True)
    return out


def posed_hand(seq: Sequence, params: FrameParams | None, hand_cfg) -> tuple[np.ndarray, np.ndarray, list]:
    """Keypoints (T, 21, 3), vertices (T, V, 3) and fingertip regions of the right hand."""
    model = build_hand_model(hand_cfg, "right")
    params = params or FrameParams(seq)
    frames = torch.arange(seq.num_frames)
    with torch.no_grad():
        p = params.hands["right"](frames)
        out = model(p.global_orient, p.pose, p.betas, p.transl)
    tips = [ids.numpy() for ids in model.contact_vertex_ids().tips]
    return out.keypoints.numpy(), out.vertices.numpy(), tips


def stage_params(run: RunDir, stage: int, seq: Sequence) -> FrameParams:
    cfg = run.load_config()
    net = HoldNet(seq, cfg.model, cfg.hand, cfg.render, seed=cfg.seed)
    return net.load_weights(run.stage_dir(stage) / "model.pt").params


def measure(seq: Sequence, params: FrameParams, mesh: trimesh.Trimesh, gt, gt_mesh, cfg) -> dict:
    joints, verts, tips = posed_hand(seq, params, cfg.hand)
    o = params.object
    R = Rotation.from_rotvec(o.rot.weight.detach().numpy()).as_matrix()
    t, s = o.transl.weight.detach().numpy(), float(o.scale)
    gaps, depth = interaction_metrics(verts, tips, mesh, R, t, s)
    result = evaluate(
        HandObjectSequence(joints=joints, object_mesh=mesh, object_to_camera=similarity_matrices(R, t, s)),
        HandObjectSequence(
            joints=gt.joints["right"],
            object_mesh=gt_mesh,
            object_to_camera=similarity_matrices(gt.object_R, gt.object_t),
            valid=gt.valid,
        ),
        cfg.eval,
    ).to_dict()
    return {
        "tip_gap_mm": float(gaps.mean() * 1e3),
        "tip_gap_per_finger_mm": np.round(gaps.mean(0) * 1e3, 3).tolist(),
        "penetration_mm": float(depth.mean() * 1e3),
        "penetration_max_mm": float(depth.max() * 1e3),
        "cd_h_cm2": result["cd_h_cm2"],
        "cd_cm2": result["cd_cm2"],
        "f10": result.get("f10"),
        "mpjpe_mm": result["mpjpe_mm"],
        "object_scale_error_pct": result.get("object_scale_error_pct"),
        "object_scale": s,
    }


def refinement_speed(residuals: Path) -> dict:
    """Iterations per second of stage 2 (phase 1 and the phase-2 chunks, from its residuals.json)."""
    phases = json.loads(residuals.read_text())["phases"]
    iterations = sum(p["iterations"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    frame_iterations = sum(p["iterations"] * len(p["frames"]) for p in phases)
    return {
        "iterations": iterations,
        "optimisation_seconds": round(seconds, 1),
        "iterations_per_second": round(iterations / seconds, 2),
        "frame_iterations_per_second": round(frame_iterations / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument(
        "--data", type=Path, default=Path("/tmp/demo"), help="dir holding raw/ and seq/ (made if missing)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/refine_bench"), help="preprocess + run dirs")
    parser.add_argument("--init", choices=["preprocess", "perturbed"], default="preprocess")
    parser.add_argument("--out", type=Path, default=Path("bench/results/refine_demo.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--no-ablation", action="store_true", help="skip stage 3 on the unrefined poses (stages 1 → 3)"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    raw, oracle = args.data / "raw", args.data / "seq"
    if ensure_clip(raw, oracle) and args.work.is_dir():
        shutil.rmtree(args.work)  # the preprocessing and runs of an older clip
    t0 = time.perf_counter()
    pre = args.work / "pre"
    init = args.init
    if init == "preprocess" and not (pre / "sequence.json").is_file():
        cmd = [str(Path(sys.executable).parent / "hold-preprocess"), str(raw), str(pre)]
        env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads > 0 else {})}
        if subprocess.run(cmd, env=env).returncode != 0:
            print("bench: hold-preprocess failed; falling back to perturbed oracle poses", flush=True)
            init = "perturbed"
    if init == "perturbed":
        pre = args.work / "perturbed"
        if not (pre / "sequence.json").is_file():
            perturbed_oracle(oracle, raw, pre)
    preprocess_s = time.perf_counter() - t0
    cfg = load_config(args.preset, ["logging.wandb=disabled", "train.image_every=0", *args.overrides])
    t1 = time.perf_counter()
    run = run_stages(pre, args.work / "run", cfg, [1, 2, 3])
    train_s = time.perf_counter() - t1
    ablation = None
    if not args.no_ablation:  # the same stage 1, then stage 3 on the initial poses: what refinement adds
        ablation = RunDir.create(args.work / "run_no_refine", cfg, pre)
        if 1 not in ablation.completed_stages():
            shutil.copytree(run.stage_dir(1), ablation.stage_dir(1), dirs_exist_ok=True)
            ablation.mark_stage_done(1, run.state()["completed_stages"]["1"])
        ablation = run_stages(pre, ablation.root, cfg, [1, 3])
    seq = read_sequence(pre)
    gt = read_ground_truth(pre / "gt", seq.num_frames)
    gt_mesh = trimesh.load(gt.object_mesh_path, force="mesh")
    refined_seq = with_refined_poses(seq, run.stage_dir(2) / "refined.npz")
    mesh1 = trimesh.load(run.stage_dir(1) / "object_canonical.ply", force="mesh")
    mesh3 = trimesh.load(run.stage_dir(3) / "object_canonical.ply", force="mesh")
    states = {
        "stage1": measure(seq, stage_params(run, 1, seq), mesh1, gt, gt_mesh, cfg),
        "refined": measure(refined_seq, FrameParams(refined_seq), mesh1, gt, gt_mesh, cfg),
        "stage3": measure(refined_seq, stage_params(run, 3, refined_seq), mesh3, gt, gt_mesh, cfg),
    }
    if ablation is not None:
        mesh_a = trimesh.load(ablation.stage_dir(3) / "object_canonical.ply", force="mesh")
        states["stage3_without_refinement"] = measure(
            seq, stage_params(ablation, 3, seq), mesh_a, gt, gt_mesh, cfg
        )
    # Reference: the same interaction measures on the ground truth (GT hand vertices, GT mesh).
    gt_verts = read_ground_truth(pre / "gt", seq.num_frames).verts.get("right")
    reference = {}
    if gt_verts is not None:
        tips = [ids.numpy() for ids in build_hand_model(cfg.hand, "right").contact_vertex_ids().tips]
        g, d = interaction_metrics(gt_verts, tips, gt_mesh, gt.object_R, gt.object_t, 1.0)
        reference = {"tip_gap_mm": float(g.mean() * 1e3), "penetration_mm": float(d.mean() * 1e3)}
    s1, r, s3 = states["stage1"], states["refined"], states["stage3"]
    write_json(
        args.out,
        {
            "preset": args.preset,
            "overrides": args.overrides,
            "initial_poses": init,
            "sequence": str(pre),
            "run": str(run.root),
            "machine": f"{os.cpu_count()} CPU cores (shared), torch {torch.__version__}, {torch.get_num_threads()} threads",
            "date": time.strftime("%Y-%m-%d"),
            "seconds": {
                "preprocess": round(preprocess_s, 1),
                "train_all_stages_this_invocation": round(train_s, 1),
                "stages": {k: v.get("seconds") for k, v in run.state()["completed_stages"].items()},
            },
            "acceptance": {
                "refinement_reduces_tip_gap": r["tip_gap_mm"] < s1["tip_gap_mm"],
                "refinement_reduces_penetration": r["penetration_mm"] < s1["penetration_mm"],
                "refinement_reduces_cd_h": r["cd_h_cm2"] < s1["cd_h_cm2"],
                "three_stages_beat_stage1_on_cd_h": s3["cd_h_cm2"] < s1["cd_h_cm2"],
            },
            **states,
            "ground_truth_reference": reference,
            "stage2_residuals": run.state()["completed_stages"].get("2"),
            "stage2_speed": refinement_speed(run.stage_dir(2) / "residuals.json"),
        },
    )
    print(f"bench: wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
