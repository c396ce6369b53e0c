"""The built-in demo (`make demo`): synthesise → preprocess → train → export → evaluate, then summarise.

Runs every step on the synthetic demo sequence inside one output folder and stops at the first step that
fails, saying which one and why.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hold.cli import eval_main, export_main, synth_main, train_main
from preprocess.cli import main as preprocess_main


def demo_steps(out: Path) -> list[tuple[str, Callable[[list[str]], int], list[str]]]:
    raw, seq, run = out / "raw", out / "sequence", out / "run"
    return [
        ("synthesise", synth_main, [str(raw), "--preset", "demo"]),
        ("preprocess", preprocess_main, [str(raw), str(seq)]),
        ("train", train_main, [str(seq), "--out", str(run), "--config", "demo"]),
        ("export", export_main, [str(run), "--out", str(out / "export")]),
        ("evaluate", eval_main, [str(run)]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hold.demo", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("demo_out"), help="output folder")
    args = parser.parse_args(argv)
    timings: list[tuple[str, float, int]] = []
    for name, step, step_argv in demo_steps(args.out):
        print(f"[demo] {name}: {' '.join(step_argv)}", file=sys.stderr)
        start = time.perf_counter()
        code = step(step_argv)
        timings.append((name, time.perf_counter() - start, code))
        if code != 0:
            break
    print("\n[demo] summary", file=sys.stderr)
    for name, seconds, code in timings:
        print(
            f"  {name:<11} {seconds:7.1f} s  {'ok' if code == 0 else f'failed (exit {code})'}",
            file=sys.stderr,
        )
    return timings[-1][2]


if __name__ == "__main__":
    sys.exit(main())
