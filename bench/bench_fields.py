"""Throughput of the SDF fields on this machine: HOLD's 8×256 Fourier MLP vs a hash grid + small MLP.

Two measurements per field, medians over repeats, in points per second:
  forward          SDF + feature, no autograd (ray sampling, meshing)
  forward+eikonal  sdf_and_gradient(create_graph=True), then backward of an SDF + eikonal loss (training)

Usage: python bench/bench_fields.py [--points 65536] [--repeats 5] [--out bench/results/fields.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from hold.config.fields import EncodingConfig, SDFNetworkConfig
from hold.fields.sdf import SDFNetwork
from hold.utils.io import write_json

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fields.json"


def field_configs(hash_backend: str) -> dict[str, SDFNetworkConfig]:
    """The fields compared: HOLD's defaults, and a hash grid (Instant-NGP defaults) with a 2×64 MLP."""
    return {
        "frequency_8x256": SDFNetworkConfig(),
        "hashgrid_2x64": SDFNetworkConfig(
            encoding=EncodingConfig(type="hashgrid", backend=hash_backend),
            hidden_dim=64,
            num_layers=2,
            skip_layers=(),
        ),
    }


def time_it(fn: Callable[[], None], repeats: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of each timed run (CPU time helps read runs on a busy machine)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def bench_field(cfg: SDFNetworkConfig, x: torch.Tensor, repeats: int, warmup: int) -> dict:
    net = SDFNetwork(cfg).to(x.device)
    n = x.shape[0]

    def forward() -> None:
        with torch.no_grad():
            net(x)
        _sync(x.device)

    def forward_eikonal() -> None:
        net.zero_grad(set_to_none=True)
        out = net.sdf_and_gradient(x, create_graph=True)
        loss = out.sdf.abs().mean() + ((out.gradient.norm(dim=-1) - 1.0) ** 2).mean()
        loss.backward()
        _sync(x.device)

    result = {
        "num_params": sum(p.numel() for p in net.parameters()),
        "encoding": cfg.encoding.type,
        "backend": getattr(net.encoding, "backend", "torch"),
        "mlp": f"{cfg.num_layers}x{cfg.hidden_dim}",
    }
    for name, fn in (("forward", forward), ("forward_eikonal_backward", forward_eikonal)):
        wall, cpu = time_it(fn, repeats, warmup)
        med = statistics.median(wall)
        result[name] = {
            "median_s": med,
            "min_s": min(wall),
            "times_s": wall,
            "median_cpu_s": statistics.median(cpu),
            "points_per_s": n / med,
        }
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=65536, help="points per batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--hash-backend", default="torch", choices=("auto", "torch", "tcnn"))
    parser.add_argument("--fields", nargs="*", default=None, help="subset of the fields to run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    # Points in the unit ball, where HOLD's canonical shapes live.
    x = torch.randn(args.points, 3)
    x = (x / x.norm(dim=-1, keepdim=True) * torch.rand(args.points, 1) ** (1 / 3)).to(device)

    configs = field_configs(args.hash_backend)
    names = args.fields or list(configs)
    unknown = sorted(set(names) - set(configs))
    if unknown:
        parser.error(f"unknown fields {unknown}; choose from {list(configs)}")

    load_before = os.getloadavg()
    results = {}
    for name in names:
        results[name] = bench_field(configs[name], x, args.repeats, args.warmup)
        fwd = results[name]["forward"]["points_per_s"]
        eik = results[name]["forward_eikonal_backward"]["points_per_s"]
        print(f"{name:18s} forward {fwd:12,.0f} pts/s   forward+eikonal-backward {eik:12,.0f} pts/s")

    report = {
        "benchmark": "fields",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "points": args.points,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
