"""Training-step speed of this tree against an older commit, measured one after the other on one clip.

The older commit is unpacked with ``git archive`` into a temporary folder; each tree then times
``--steps`` training steps of ``--preset`` (after one warm-up step) in its own Python process, with its
own code, on the same SEQUENCE dir (the demo clip's oracle sequence, made by this tree's
``bench/demo_clip.py``) and the same torch thread count. The trees take turns ``--rounds`` times, so
a load change on a shared machine hits both. The speed-up is the base tree's median step time over
this tree's; wall and process CPU time are both reported.

    python bench/bench_speedup.py --base 343979b --steps 7 --out bench/results/speedup.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_clip import ensure_clip  # bench/demo_clip.py

from hold.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]

# Runs inside each tree (cwd and PYTHONPATH = the tree): only API both trees have.
STEP_TIMER = r"""
import json, sys, time, torch
from hold.config import load_config
from hold.data.sequence import read_sequence
from hold.system import HoldSystem
seq_dir, preset, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
cfg = load_config(preset, [])
system = HoldSystem(cfg, read_sequence(seq_dir), None, steps + 1)
optimizer = system.configure_optimizers()["optimizer"]
to_model = getattr(system, "model_generator", lambda g: g)
wall, cpu = [], []
for step in range(steps + 1):
    generator = system._generator(step)
    start, cpu_start = time.perf_counter(), time.process_time()
    batch = system.rays.sample(generator)
    out = system.model(batch, to_model(generator))
    loss = system.compute_losses(batch, out, step, generator).total
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step > 0:  # the first step pays for one-off allocations
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
print("STEP_TIMES " + json.dumps({"wall": wall, "cpu": cpu, "loss": float(loss)}))
"""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def unpack(commit: str, dest: Path) -> None:
    """The tracked files of ``commit`` into ``dest``."""
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def time_steps(tree: Path, seq: Path, preset: str, steps: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    args = [sys.executable, "-c", STEP_TIMER, str(seq), preset, str(steps), str(threads)]
    done = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("STEP_TIMES ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench_speedup: the step timer failed in {tree}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("STEP_TIMES "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="343979b", help="the commit to compare against")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--steps", type=int, default=7, help="timed steps per round and tree (≥ 5)")
    parser.add_argument("--rounds", type=int, default=2, help="turns each tree takes")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for both")
    parser.add_argument("--data", type=Path, default=None, help="dir holding the demo clip (made if missing)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/speedup.json"))
    args = parser.parse_args()
    if args.steps < 5 or args.rounds < 1 or args.threads < 1:
        parser.error("--steps must be ≥ 5, --rounds and --threads ≥ 1")
    base = git("rev-parse", args.base)
    head = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "hold", "configs"))  # what trains
    data = args.data or Path(tempfile.mkdtemp(prefix="hold_bench_"))
    ensure_clip(data / "raw", data / "seq")
    load_start = os.getloadavg()[0]
    times: dict[str, dict[str, list[float]]] = {
        "base": {"wall": [], "cpu": []},
        "head": {"wall": [], "cpu": []},
    }
    with tempfile.TemporaryDirectory(prefix="hold_base_") as tmp:
        trees = {"base": Path(tmp), "head": ROOT}
        unpack(base, trees["base"])
        for round_ in range(args.rounds):
            for name, tree in trees.items():
                print(f"round {round_ + 1}/{args.rounds}: {name} ({tree})", flush=True)
                measured = time_steps(tree, data / "seq", args.preset, args.steps, args.threads)
                for kind in ("wall", "cpu"):
                    times[name][kind] += measured[kind]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores, {args.threads} torch threads",
        "preset": args.preset,
        "base_commit": base,
        "head_commit": head + (" (with uncommitted changes to hold/ or configs/)" if dirty else ""),
        "steps_per_tree": args.steps * args.rounds,
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg()[0],
    }
    for name in ("base", "head"):
        for kind in ("wall", "cpu"):
            result[f"{name}_{kind}_step_seconds"] = [round(t, 3) for t in times[name][kind]]
            result[f"{name}_median_{kind}_step_seconds"] = round(statistics.median(times[name][kind]), 3)
    for kind in ("wall", "cpu"):
        ratio = result[f"base_median_{kind}_step_seconds"] / result[f"head_median_{kind}_step_seconds"]
        result[f"speedup_{kind}"] = round(ratio, 2)
    write_json(args.out, result)
    print(
        f"{args.preset}: base {result['base_median_wall_step_seconds']} s/step, head "
        f"{result['head_median_wall_step_seconds']} s/step: speed-up {result['speedup_wall']}× "
        f"(CPU time {result['speedup_cpu']}×); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
