"""Training throughput (rays/s, samples/s) of presets, measured in the same run on the same machine.

Each preset trains a few steps on the demo oracle sequence after one warm-up step; the median step
time gives rays/s and samples/s (samples: every point the nodes and the background evaluate for
rendering, sampler evaluations excluded). Step times are measured as wall time and as this process's
CPU time: on a shared machine the CPU time is the steadier of the two. Then ``--profile-steps`` more
steps are timed per component (sampler, hand node, object node, background, composite, losses,
backward, optimiser: ``bench/step_profile.py``). Writes JSON with the ratios of each preset to the first.

    python bench/bench_throughput.py --presets paper fast --steps 3 --out bench/results/throughput.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from demo_clip import ensure_clip  # bench/demo_clip.py
from step_profile import profile_steps, samples_per_step, train_step  # bench/step_profile.py

from hold.config import load_config
from hold.data.sequence import read_sequence
from hold.system import HoldSystem
from hold.utils.io import write_json


def measure(preset: str, seq, steps: int, profile: int, overrides: list[str]) -> dict:
    cfg = load_config(preset, overrides)
    system = HoldSystem(cfg, seq, None, steps + profile + 1)
    optimizer = system.configure_optimizers()["optimizer"]
    times, cpu_times, samples = [], [], []
    for step in range(steps + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        batch, out, _ = train_step(system, optimizer, step)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if step > 0:  # the first step pays for one-off allocations
            times.append(elapsed)
            cpu_times.append(cpu)
            samples.append(samples_per_step(out, len(batch), cfg.model.background.num_samples))
    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    rays = cfg.rays.frames_per_step * cfg.rays.rays_per_frame
    return {
        "preset": preset,
        "rays_per_step": rays,
        "samples_per_step": int(statistics.median(samples)),
        "step_seconds": [round(t, 3) for t in times],
        "median_step_seconds": round(median, 3),
        "rays_per_second": round(rays / median, 1),
        "samples_per_second": round(statistics.median(samples) / median, 1),
        "step_cpu_seconds": [round(t, 3) for t in cpu_times],
        "median_step_cpu_seconds": round(cpu_median, 3),
        "rays_per_cpu_second": round(rays / cpu_median, 1),
        "profile": profile_steps(system, optimizer, profile, first_step=steps + 1) if profile else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "fast"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--profile-steps", type=int, default=3, help="steps timed per component (0: none)")
    parser.add_argument(
        "--data", type=Path, default=None, help="dir holding seq/ of the demo (made if missing)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/throughput.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    data = args.data or Path(tempfile.mkdtemp(prefix="hold_bench_"))
    ensure_clip(data / "raw", data / "seq")
    seq = read_sequence(data / "seq")
    results = [measure(p, seq, args.steps, args.profile_steps, []) for p in args.presets]
    base = results[0]
    for r in results:
        r["rays_per_second_vs_" + base["preset"]] = round(r["rays_per_second"] / base["rays_per_second"], 2)
        r["samples_per_second_vs_" + base["preset"]] = round(
            r["samples_per_second"] / base["samples_per_second"], 2
        )
        r["rays_per_cpu_second_vs_" + base["preset"]] = round(
            r["rays_per_cpu_second"] / base["rays_per_cpu_second"], 2
        )
    write_json(
        args.out,
        {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
            "load_average_at_start": load_start,
            "load_average_at_end": os.getloadavg()[0],
            "results": results,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
