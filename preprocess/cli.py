"""`hold-preprocess RAW SEQ [--steps …] [--redo] [key=value …]` (also `python -m preprocess`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from preprocess import STEPS

EXIT_USAGE = 2


def parse_steps(text: str) -> list[str]:
    """Comma-separated step names → the steps in pipeline order; an unknown name is an error."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown or not names:
        raise ValueError(f"--steps {text!r}: unknown step(s) {unknown}; steps are {','.join(STEPS)}")
    return [s for s in STEPS if s in names]


_EPILOG = """steps (each reads a dir and writes SEQ/work/<step>/, skipped when already done):
  frames  video or image folder → numbered PNGs (frames.stride, frames.max_size, frames.max_frames)
  masks   label maps: masks.backend=import (RAW/masks) or sam (masks.sam.checkpoint=…)
  hands   hand-model fit to RAW/hands.npz keypoints (hand.model=anny|mano, hands.max_residual_px)
  sfm     object poses and points by SfM on object-only images (sfm.backend=auto|pycolmap|hloc)
  align   hand translations, object scale and translations (align.phases=[h,o,ho])
  build   the SEQUENCE dir and SEQ/overlay.mp4 (formats: docs/formats.md)

after the run (and when a step fails) SEQ/report.html and SEQ/report.json judge each step: verdicts,
numbers, plots and what to do next (docs/formats.md).

override any setting as key=value (e.g. frames.stride=2 sfm.max_num_features=8192); an unknown key
is an error that lists the valid keys. The resolved config is saved as SEQ/work/config.yaml."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hold-preprocess",
        description="Turn a RAW dir (video or frames, optional masks / hand estimates) into a SEQUENCE dir.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("raw", type=Path, help="RAW dir (see docs/formats.md, RAW dir)")
    parser.add_argument("seq", type=Path, help="SEQUENCE dir to write (see docs/formats.md, SEQUENCE dir)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"subset of {','.join(STEPS)}")
    parser.add_argument("--redo", action="store_true", help="recompute steps whose outputs already exist")
    parser.add_argument("--config", type=Path, default=None, help="YAML file of settings (before key=value)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="preprocessing config overrides")
    args = parser.parse_intermixed_args(argv)
    try:
        steps = parse_steps(args.steps)
    except ValueError as e:
        print(f"hold-preprocess: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not args.raw.is_dir():
        print(f"hold-preprocess: error: {args.raw}: RAW dir does not exist", file=sys.stderr)
        return EXIT_USAGE

    from hold.config import ConfigError
    from hold.utils.io import describe_os_error
    from hold.utils.logging import setup_logging
    from preprocess.config import load_preprocess_config
    from preprocess.errors import PreprocessError
    from preprocess.pipeline import check_separate, run_pipeline
    from preprocess.workdir import WORK_DIR

    try:
        cfg = load_preprocess_config(args.overrides, args.config)
        check_separate(args.raw, args.seq, steps[0])  # before the log file goes into SEQ
    except (ConfigError, PreprocessError) as e:
        print(f"hold-preprocess: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        setup_logging(args.seq / WORK_DIR / "preprocess.log")
        run_pipeline(args.raw, args.seq, steps, redo=args.redo, cfg=cfg)
    except PreprocessError as e:
        print(f"hold-preprocess: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # a read-only dir, a file where a dir should be, a full disk …
        if os.environ.get("HOLD_DEBUG"):
            raise
        print(f"hold-preprocess: error: {describe_os_error(e)} (HOLD_DEBUG=1 shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "hold-preprocess: interrupted; finished steps are kept: re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
    return 0
