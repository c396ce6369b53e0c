"""`hold-preprocess RAW SEQ [--steps …] [--redo] [key=value …]` (also `python -m preprocess`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from preprocess import STEPS

EXIT_USAGE = 2
EXIT_NOT_IMPLEMENTED = 3


def parse_steps(text: str) -> list[str]:
    """Comma-separated step names → the steps in pipeline order; an unknown name is an error."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown or not names:
        raise ValueError(f"--steps {text!r}: unknown step(s) {unknown}; steps are {','.join(STEPS)}")
    return [s for s in STEPS if s in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hold-preprocess",
        description="Turn a RAW dir (video or frames, optional masks / hand estimates) into a SEQUENCE dir.",
    )
    parser.add_argument("raw", type=Path, help="RAW dir (DESIGN.md §4)")
    parser.add_argument("seq", type=Path, help="SEQUENCE dir to write (DESIGN.md §3)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"subset of {','.join(STEPS)}")
    parser.add_argument("--redo", action="store_true", help="recompute steps whose outputs already exist")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="preprocessing config overrides")
    args = parser.parse_intermixed_args(argv)
    try:
        parse_steps(args.steps)
    except ValueError as e:
        print(f"hold-preprocess: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not args.raw.is_dir():
        print(f"hold-preprocess: error: {args.raw}: RAW dir does not exist", file=sys.stderr)
        return EXIT_USAGE
    print("hold-preprocess: preprocessing is not implemented in this version yet.", file=sys.stderr)
    return EXIT_NOT_IMPLEMENTED
