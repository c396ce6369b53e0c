"""The built-in demo (`make demo`): synthesise → preprocess → train → export → evaluate, then summarise.

Runs every step on the synthetic demo sequence inside one output folder, stops at the first step that
fails (saying which one and with what exit status), and prints a one-screen summary: time per step and
per training stage, the metrics, and where the meshes, renders and logs are. The summary is also saved
as OUT/summary.txt and OUT/summary.json. W&B logs offline unless WANDB_MODE says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from hold.cli import eval_main, export_main, synth_main, train_main
from hold.eval.run_metrics import METRICS_FILE, summary_line
from hold.stages import STAGE_NAMES
from hold.utils.io import write_json, write_text
from preprocess.cli import main as preprocess_main
from preprocess.mediapipe.driver import MAKE_COMMAND, environment_ready

BUDGET_S = 15 * 60
"""The demo's time budget on a 2-core CPU (README), shown beside the total."""


@dataclass
class DemoStep:
    """One command of the demo: a console entry point and its arguments."""

    name: str
    main: Callable[[list[str] | None], int]
    argv: list[str]


@dataclass
class StepTiming:
    name: str
    seconds: float
    exit_code: int


def demo_paths(out: Path) -> dict[str, Path]:
    return {"raw": out / "raw", "sequence": out / "sequence", "run": out / "run", "export": out / "export"}


def hands_backend(choice: str) -> str:
    """The preprocessing ``hands`` backend: ``auto`` takes mediapipe, a real hand estimator, when its
    environment exists (``make mediapipe-env``), else the emulated estimates the synthesiser wrote."""
    if choice == "auto":
        return "mediapipe" if environment_ready() else "import"
    return choice


def demo_steps(out: Path, hands: str = "import") -> list[DemoStep]:
    p = demo_paths(out)
    return [
        DemoStep("synthesise", synth_main, [str(p["raw"]), "--preset", "demo"]),
        DemoStep(
            "preprocess", preprocess_main, [str(p["raw"]), str(p["sequence"]), f"hands.backend={hands}"]
        ),
        DemoStep("train", train_main, [str(p["sequence"]), "--out", str(p["run"]), "--config", "demo"]),
        DemoStep("export", export_main, [str(p["run"]), "--out", str(p["export"])]),
        DemoStep("evaluate", eval_main, [str(p["run"])]),
    ]


def run_steps(steps: list[DemoStep]) -> list[StepTiming]:
    """Run the steps in order, timing each; stop after the first non-zero exit status."""
    timings: list[StepTiming] = []
    for step in steps:
        print(f"[demo] {step.name}: {' '.join(step.argv)}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            code = step.main(step.argv)
        except SystemExit as e:  # argparse errors
            code = e.code if isinstance(e.code, int) else 1
        timings.append(StepTiming(step.name, time.perf_counter() - start, code))
        if code != 0:
            break
    return timings


def machine() -> str:
    """A one-line description of this machine (CPU model, cores, torch build)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, {platform.system()} {platform.release()}, torch {torch.__version__}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def summarise(out: Path, timings: list[StepTiming]) -> tuple[str, dict[str, Any]]:
    """The one-screen summary text and the same facts as a dict (for summary.json)."""
    p = demo_paths(out)
    total = sum(t.seconds for t in timings)
    ok = bool(timings) and all(t.exit_code == 0 for t in timings) and len(timings) == len(demo_steps(out))
    hands = _read_json(p["sequence"] / "work" / "hands" / "hands.json")
    now = _dt.datetime.now().astimezone()
    lines = [
        f"hold demo — {out}",
        f"{now:%Y-%m-%d %H:%M %Z} on {machine()}",
        "",
        f"  {'step':<28}{'time':>9}  status",
    ]
    stages = (_read_json(p["run"] / "state.json") or {}).get("completed_stages", {})
    stage_seconds: dict[str, float] = {}
    for t in timings:
        status = "ok" if t.exit_code == 0 else f"FAILED (exit {t.exit_code})"
        lines.append(f"  {t.name:<28}{t.seconds:>8.1f}s  {status}")
        if t.name == "train":
            for k in sorted(stages, key=int):
                seconds = stages[k].get("seconds")
                if seconds is not None:
                    stage_seconds[k] = seconds
                    label = f"stage {k} ({STAGE_NAMES.get(int(k), '?')})"
                    lines.append(f"    {label:<26}{seconds:>8.1f}s")
    budget = "within" if total <= BUDGET_S else "OVER"
    lines.append(f"  {'total':<28}{total:>8.1f}s  ({budget} the {BUDGET_S // 60}-minute budget)")
    metrics = _read_json(p["run"] / METRICS_FILE) if any(t.name == "evaluate" for t in timings) else None
    lines.append("")
    if hands is not None:
        lines.append(f"hand estimates: {describe_hands(hands)}")
    if metrics is not None:
        lines.append(f"metrics (vs the synthetic ground truth): {summary_line(metrics)}")
    else:
        lines.append("metrics: none (the demo stopped before the evaluation)")
    export = p["export"]
    where = [
        ("canonical meshes", [export / "object_canonical.ply", export / "hand_canonical.ply"]),
        ("per-frame meshes", [export / "frames"]),
        ("glTF scene", [export / "scene.glb"]),
        ("renders, video", [export / "renders", export / "renders" / "preview.mp4"]),
        ("metrics", [p["run"] / METRICS_FILE]),
        ("logs", [p["run"] / "logs" / "hold.log", p["run"] / "logs" / "wandb"]),
    ]
    found = [(label, [q for q in paths if q.exists()]) for label, paths in where]
    found = [(label, paths) for label, paths in found if paths]
    if found:
        lines.append("")
        lines += [f"  {label + ':':<18}{'  '.join(str(q) for q in paths)}" for label, paths in found]
    if not ok and timings:
        failed = timings[-1]
        lines += [
            "",
            f"the demo stopped at '{failed.name}' (exit {failed.exit_code}); its messages are above.",
        ]
    facts = {
        "out": str(out),
        "date": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "ok": ok,
        "steps": [asdict(t) for t in timings],
        "train_stage_seconds": stage_seconds,
        "hands_backend": hands.get("backend") if hands else None,
        "total_seconds": round(total, 1),
        "metrics": {
            k: metrics.get(k)
            for k in (
                "mpjpe_mm",
                "mpjpe_detected_mm",
                "cd_cm2",
                "f5",
                "f10",
                "cd_h_cm2",
                "object_scale_error_pct",
            )
        }
        if metrics
        else None,
    }
    return "\n".join(lines), facts


def describe_hands(hands: dict[str, Any]) -> str:
    """One line on where the hand estimates came from (preprocess ``work/hands/hands.json``)."""
    if hands.get("backend") != "mediapipe":
        return f"the synthesiser's emulated estimator (RAW hands.npz); `{MAKE_COMMAND}` enables mediapipe"
    valid = ", ".join(f"{side} {hands[side]['valid']}" for side in hands.get("sides", []) if side in hands)
    mp = hands.get("mediapipe", {})
    return (
        f"mediapipe {mp.get('mediapipe_version', '')} hand landmarks ({mp.get('frames_with_detection', '?')} "
        f"frames detected; valid after fitting: {valid})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hold.demo", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("demo_out"), help="output folder")
    parser.add_argument(
        "--hands",
        choices=["auto", "mediapipe", "import"],
        default="auto",
        help="hand estimates: mediapipe, the synthesiser's emulated estimator, or auto (mediapipe when "
        f"its environment exists: `{MAKE_COMMAND}`)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")  # never block on a W&B login without network
    hands = hands_backend(args.hands)
    print(f"[demo] hand estimates: {hands}", file=sys.stderr, flush=True)
    timings = run_steps(demo_steps(args.out, hands))
    text, facts = summarise(args.out, timings)
    write_text(args.out / "summary.txt", text + "\n")
    write_json(args.out / "summary.json", facts)
    print("\n" + text)
    return timings[-1].exit_code if timings else 1


if __name__ == "__main__":
    sys.exit(main())
