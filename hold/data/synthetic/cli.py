"""``hold-synth OUT [--preset tiny|demo] [--seed N] [--object NAME|MESH] [--oracle SEQ]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hold.data.synthetic.config import PRESETS
from hold.data.synthetic.objects import SHAPES

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``hold-synth`` argument parser (also usable by ``hold.cli``)."""
    parser = argparse.ArgumentParser(
        prog="hold-synth",
        description="Render a synthetic video of a right hand holding an object, with ground truth (a RAW dir).",
    )
    parser.add_argument(
        "out", type=Path, help="RAW dir to write (DESIGN.md §4), with gt/ and contact_sheet.png"
    )
    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo", help="size of the sequence")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (same seed, same bytes)"
    )
    parser.add_argument(
        "--object", default=None, help=f"procedural shape ({', '.join(SHAPES)}) or a .obj/.ply mesh path"
    )
    parser.add_argument("--oracle", type=Path, default=None, help="also write an oracle SEQUENCE dir here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``hold-synth``; returns the exit status (bad object/mesh: one line on stderr, status 2)."""
    from hold.data.synthetic.generate import generate

    args = build_parser().parse_args(argv)
    try:
        result = generate(
            args.out, preset=args.preset, seed=args.seed, object=args.object, oracle=args.oracle
        )
    except ValueError as e:
        print(f"hold-synth: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"hold-synth: wrote {result.raw_dir} in {result.seconds:.1f} s; contact sheet {result.contact_sheet}"
    )
    if result.oracle_dir is not None:
        print(f"hold-synth: oracle SEQUENCE {result.oracle_dir}")
    if not result.grasp_ok:
        print("hold-synth: warning: the grasp misses the contact/penetration thresholds (see synth.json)")
    return 0
