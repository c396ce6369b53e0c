"""Benchmark of the hand-model layer: forward speed and keypoint-fitting speed and accuracy.

Targets (issue): a batch of 64 frames forward in ≤ 20 ms; fitting a 100-frame sequence in ≤ 60 s.
Writes JSON (medians over repeats) to ``--out``.

    python bench/bench_hand.py --out bench/results/hand.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hold.config.hand import HandConfig
from hold.geometry.camera import project  # noqa: E402
from hold.hand.build import build_hand_model  # noqa: E402
from hold.hand.fitting import HandFitter  # noqa: E402
from hold.hand.sampling import sample_sequence  # noqa: E402


def _median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def synthetic_sequence(model, cfg: HandConfig, frames: int, seed: int, noise_px: float, noise_3d: float):
    """A smooth random sequence (``sample_sequence``) observed as noisy 2D and root-relative 3D keypoints."""
    g = torch.Generator().manual_seed(seed)
    params = sample_sequence(model, cfg.joint_limits, frames, g)
    K = torch.tensor([[600.0, 0.0, 256.0], [0.0, 600.0, 256.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        kp = model.forward_keypoints(**params)
    uv = project(kp, K.expand(frames, 3, 3)) + noise_px * torch.randn(frames, 21, 2, generator=g)
    kp2d = torch.cat([uv, torch.ones(frames, 21, 1)], dim=-1)
    kp3d = kp - kp[:, :1] + noise_3d * torch.randn(frames, 21, 3, generator=g)
    return dict(kp=kp, kp2d=kp2d, kp3d=kp3d, K=K, betas=params["betas"])


def mpjpe_mm(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean root-relative keypoint error in millimetres."""
    return 1000.0 * ((pred - pred[:, :1]) - (gt - gt[:, :1])).norm(dim=-1).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/hand.json", help="JSON output path")
    parser.add_argument("--model", default="anny", choices=["anny", "mano"])
    parser.add_argument("--mano-dir", default="", help="folder with MANO_RIGHT.pkl (model=mano)")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of each forward timing")
    parser.add_argument("--batch", type=int, default=64, help="forward batch size")
    parser.add_argument("--frames", type=int, default=100, help="frames of the fitted sequence")
    parser.add_argument("--fit-repeats", type=int, default=1, help="fitted sequences (different seeds)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = HandConfig(model=args.model, mano_dir=args.mano_dir)
    t0 = time.perf_counter()
    model = build_hand_model(cfg, "right")
    build_s = time.perf_counter() - t0
    b = args.batch
    g = torch.Generator().manual_seed(0)
    params = dict(
        global_orient=0.5 * torch.randn(b, 3, generator=g),
        pose=model.sample_pose(cfg.joint_limits, b, g, scale=0.8),
        betas=0.2 * torch.randn(1, model.num_betas, generator=g),
        transl=torch.randn(b, 3, generator=g) * 0.05 + torch.tensor([0.0, 0.0, 0.5]),
    )
    results: dict = {
        "model": args.model,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "build_s": round(build_s, 3),
        "batch": b,
    }
    with torch.no_grad():
        results["forward_ms"] = round(_median_ms(lambda: model(**params), args.repeats), 3)
        results["forward_keypoints_ms"] = round(
            _median_ms(lambda: model.forward_keypoints(**params), args.repeats), 3
        )
        per = dict(params, betas=0.2 * torch.randn(b, model.num_betas, generator=g))  # a shape per frame
        results["forward_per_frame_betas_ms"] = round(_median_ms(lambda: model(**per), args.repeats), 3)
    grad = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    results["forward_backward_ms"] = round(
        _median_ms(lambda: model(**grad).vertices.square().sum().backward(), args.repeats), 3
    )
    results["forward_target_ms"] = 20.0

    fits = []
    for seed in range(args.fit_repeats):
        seq = synthetic_sequence(model, cfg, args.frames, seed, noise_px=3.0, noise_3d=0.005)
        fitter = HandFitter(model, cfg.fit, cfg.joint_limits)
        t0 = time.perf_counter()
        res = fitter.fit(seq["kp2d"], seq["K"], seq["kp3d"])
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res2d = fitter.fit(seq["kp2d"], seq["K"], betas=seq["betas"])
        fit2d_s = time.perf_counter() - t0
        fits.append(
            dict(
                seed=seed,
                fit_2d3d_s=round(fit_s, 2),
                fit_2d3d_mpjpe_mm=round(mpjpe_mm(res.keypoints, seq["kp"]), 2),
                fit_2d3d_reprojection_px=round(res.reprojection_error.mean().item(), 2),
                fit_2d_known_shape_s=round(fit2d_s, 2),
                fit_2d_known_shape_mpjpe_mm=round(mpjpe_mm(res2d.keypoints, seq["kp"]), 2),
            )
        )
    results["fit_frames"] = args.frames
    results["fit_noise"] = {"px": 3.0, "kp3d_m_per_axis": 0.005}
    results["fit"] = fits
    results["fit_2d3d_s_median"] = statistics.median(f["fit_2d3d_s"] for f in fits)
    results["fit_target_s"] = 60.0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
