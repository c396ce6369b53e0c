"""Console entry points: hold-synth, hold-train, hold-export, hold-eval.

Each command turns the project's own errors (bad config, malformed sequence, bad run dir) into one
clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from hold.config import PRESETS_DIR, ConfigError, list_presets, load_config
from hold.data.sequence import SequenceError
from hold.eval.run_metrics import evaluate_run, summary_line
from hold.export.export import export_run, run_config
from hold.final.meshes import ExportError
from hold.refine.stage import RefinementError
from hold.run import RunDir, RunDirError
from hold.run_logger import write_run_summary
from hold.stages import StageNotAvailableError, run_stages
from hold.system import TrainingStoppedError
from hold.utils.io import describe_os_error
from hold.utils.logging import setup_logging

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_IMPLEMENTED = 3
_USER_ERRORS = (
    ConfigError,
    SequenceError,
    RunDirError,
    FileNotFoundError,
    StageNotAvailableError,
    TrainingStoppedError,
    RefinementError,
)


def _reports_errors(prog: str) -> Callable:
    """Print the project's user-facing errors as ``prog: error: message`` and exit non-zero."""

    def wrap(fn: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
        @functools.wraps(fn)
        def run(argv: list[str] | None = None) -> int:
            try:
                return fn(argv)
            except StageNotAvailableError as e:
                print(f"{prog}: {e}", file=sys.stderr)
                return EXIT_NOT_IMPLEMENTED
            except _USER_ERRORS as e:
                print(f"{prog}: error: {e}", file=sys.stderr)
                return EXIT_USAGE
            except OSError as e:  # a read-only dir, a file where a dir should be, a full disk …
                if os.environ.get("HOLD_DEBUG"):
                    raise
                print(f"{prog}: error: {describe_os_error(e)} (HOLD_DEBUG=1 shows where)", file=sys.stderr)
                return EXIT_FAILURE
            except KeyboardInterrupt:
                print(
                    f"{prog}: interrupted; finished work is kept: re-run the same command to resume",
                    file=sys.stderr,
                )
                return 130

        return run

    return wrap


def _preset_help() -> str:
    lines = ["config presets (--config NAME, or a path to your own YAML file):"]
    for name in list_presets():
        first = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ").strip()
        lines.append(f"  {name:<8} {first}")
    lines += [
        "",
        "override any config key after the positional arguments as key=value, e.g.",
        "  seed=3  hand.model=mano  hand.mano_dir=/data/mano  logging.wandb=disabled",
        "an unknown key is an error that lists the valid keys at that level.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- commands


def synth_main(argv: list[str] | None = None) -> int:
    """`hold-synth OUT [--preset tiny|demo] [--seed N] [--object NAME|MESH] [--noise mild|realistic] [--oracle SEQ] [key=value …]`."""
    from hold.data.synthetic import main

    return main(argv)


@_reports_errors("hold-train")
def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hold-train",
        description="Train HOLD on a SEQUENCE dir: stage 1 pretrain, stage 2 pose refinement, stage 3 retrain.",
        epilog=_preset_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sequence", type=Path, help="SEQUENCE dir made by hold-preprocess")
    parser.add_argument("--out", type=Path, required=True, help="RUN dir; an existing one is resumed")
    parser.add_argument("--config", default="fast", help="preset name or YAML path (default: fast)")
    parser.add_argument("--stages", default="1,2,3", help="comma-separated subset of stages to run")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_intermixed_args(argv)
    cfg = load_config(args.config, args.overrides)
    run = run_stages(args.sequence, args.out, cfg, _parse_stages(args.stages))
    print(f"hold-train: finished stages {run.completed_stages()}; run dir: {run.root}")
    return 0


@_reports_errors("hold-export")
def export_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hold-export",
        description="Export meshes, per-frame poses, renders, a preview video and metrics from a RUN dir.",
        epilog="overrides: export.* and eval.* keys of the run's config (a bare export key such as "
        "hand_mesh_resolution=128 means export.hand_mesh_resolution); the rest stays as trained.",
    )
    parser.add_argument("run", type=Path, help="RUN dir made by hold-train (its saved config is reused)")
    parser.add_argument("--out", type=Path, default=None, help="EXPORT dir (default: RUN/export)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="export / eval config overrides")
    args = parser.parse_intermixed_args(argv)
    cfg = run_config(args.run, args.overrides)
    setup_logging(RunDir(args.run).logs / "hold.log", cfg.logging.console_level)  # appends to the run's log
    try:
        result = export_run(args.run, args.out, cfg)
    except ExportError as e:
        print(f"hold-export: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"hold-export: wrote {len(result.files)} files in {result.seconds:.0f} s:")
    for path in result.files:
        print(f"  {path}")
    if result.metrics is not None:
        print(f"hold-export: metrics: {summary_line(result.metrics)}")
    return 0


@_reports_errors("hold-eval")
def eval_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hold-eval",
        description="Evaluate a RUN dir against its sequence's gt/ (MPJPE, CD, F5/F10, CD_h) → RUN/metrics.json.",
        epilog="overrides: eval.* keys (e.g. eval.num_surface_samples=20000) and "
        "export.object_mesh_resolution (0: the mesh the final stage saved).",
    )
    parser.add_argument("run", type=Path, help="RUN dir made by hold-train")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="eval config overrides")
    args = parser.parse_intermixed_args(argv)
    cfg = run_config(args.run, args.overrides)
    setup_logging(RunDir(args.run).logs / "hold.log", cfg.logging.console_level)  # appends to the run's log
    try:
        metrics, path = evaluate_run(args.run, cfg)
    except ExportError as e:
        print(f"hold-eval: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    write_run_summary(RunDir(args.run).logs, cfg, {"metrics": metrics})
    print(f"hold-eval: {summary_line(metrics)}")
    print(f"hold-eval: wrote {path}")
    return 0


def _parse_stages(text: str) -> list[int]:
    try:
        stages = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        stages = []
    if not stages or any(s not in (1, 2, 3) for s in stages):
        raise ConfigError(f"--stages {text!r}: expected a comma-separated subset of 1,2,3")
    return stages
