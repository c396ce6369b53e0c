"""The whole demo (`make demo`) as a benchmark: wall time per step, metrics and peak resident memory.

Runs ``python -m hold.demo OUT`` in a child process and samples the resident memory of that process
and all its descendants (the mediapipe worker, SfM threads) from /proc every ``--interval`` seconds;
the peak of their sum is the demo's peak resident memory. The kernel's own figure for the largest
single process (``ru_maxrss``) is recorded too. Writes JSON with the demo's summary.json inside.

    python bench/bench_demo.py --out-dir /tmp/hold-demo --out bench/results/demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (bytes; 0 once they are gone)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        stack += _children(p)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/hold-bench-demo"), help="demo folder")
    parser.add_argument("--hands", default="auto", choices=["auto", "mediapipe", "import"])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "demo.json")
    args = parser.parse_args()
    shutil.rmtree(args.out_dir, ignore_errors=True)  # a fresh demo, nothing resumed
    cmd = [sys.executable, "-m", "hold.demo", str(args.out_dir), "--hands", args.hands]
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    child = subprocess.Popen(cmd, cwd=ROOT)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss_bytes(child.pid))
        time.sleep(args.interval)
    seconds = time.perf_counter() - start
    summary = json.loads((args.out_dir / "summary.json").read_text())
    from hold.utils.io import write_json  # after the run: keep this process small while it samples

    write_json(
        args.out,
        {
            "command": " ".join(cmd),
            "exit_code": child.returncode,
            "wall_seconds": round(seconds, 1),
            "peak_rss_tree_mb": round(peak / 2**20, 1),
            "peak_rss_largest_process_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
            "load_average_at_start": load_start,
            "load_average_at_end": os.getloadavg()[0],
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "summary": summary,
        },
    )
    print(
        f"bench: wrote {args.out} (peak resident memory {peak / 2**20:.0f} MB, {seconds:.0f} s)", flush=True
    )
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
