"""``hold-synth OUT [--preset tiny|demo] [--seed N] [--object NAME|MESH] [--noise mild|realistic]
[--oracle SEQ] [key=value ...]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from hold.data.synthetic.objects import SHAPES
from hold.data.synthetic.presets import NOISE_PRESETS, PRESETS

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``hold-synth`` argument parser (also usable by ``hold.cli``); parse with
    ``parse_intermixed_args`` so that ``key=value`` overrides may follow the options."""
    parser = argparse.ArgumentParser(
        prog="hold-synth",
        description="Render a synthetic video of a right hand holding an object, with ground truth (a RAW dir).",
        epilog=(
            "key=value overrides set any SynthConfig field, dotted for nested ones, values read as YAML: "
            "rotation_deg=360 spin_axis=random finger_motion=wave camera_motion=orbit "
            "image_size=[240,320] texture.cell_size_m=0.01 noise.kp2d_noise_px=3"
        ),
    )
    parser.add_argument(
        "out",
        type=Path,
        help="RAW dir to write (frames, camera, hand keypoints), with gt/ and contact_sheet.png",
    )
    parser.add_argument("--preset", choices=tuple(PRESETS), default="demo", help="size of the sequence")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (same seed, same bytes)"
    )
    parser.add_argument(
        "--object", default=None, help=f"procedural shape ({', '.join(SHAPES)}) or a .obj/.ply mesh path"
    )
    parser.add_argument(
        "--noise",
        choices=tuple(NOISE_PRESETS),
        default=None,
        help="estimator-noise preset (default mild); noise.FIELD=value overrides apply on top",
    )
    parser.add_argument("--oracle", type=Path, default=None, help="also write an oracle SEQUENCE dir here")
    parser.add_argument(
        "overrides", nargs="*", default=[], metavar="key=value", help="SynthConfig field overrides"
    )
    return parser


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[2, 3]"]`` → ``{"a.b": 1, "c": [2, 3]}`` (values parsed with ``yaml.safe_load``).

    Raises:
        ValueError: an item without ``=``, with an empty key, or with a value that is not YAML.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: the value is not valid YAML ({e.problem})") from None
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``hold-synth``; returns the exit status (bad setting or object/mesh: one line on stderr, status 2)."""
    from hold.data.synthetic.generate import generate
    from hold.utils.io import describe_os_error

    args = build_parser().parse_intermixed_args(argv)
    try:
        overrides = parse_overrides(args.overrides)
        if args.noise is not None:
            overrides["noise_preset"] = args.noise
        result = generate(
            args.out,
            preset=args.preset,
            seed=args.seed,
            object=args.object,
            oracle=args.oracle,
            overrides=overrides,
        )
    except ValueError as e:
        print(f"hold-synth: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # a read-only dir, a file where a dir should be, a name too long …
        if os.environ.get("HOLD_DEBUG"):
            raise
        print(f"hold-synth: error: {describe_os_error(e)} (HOLD_DEBUG=1 shows where)", file=sys.stderr)
        return 1
    print(
        f"hold-synth: wrote {result.raw_dir} in {result.seconds:.1f} s; contact sheet {result.contact_sheet}"
    )
    if result.oracle_dir is not None:
        print(f"hold-synth: oracle SEQUENCE {result.oracle_dir}")
    if not result.grasp_ok:
        print("hold-synth: warning: the grasp misses the contact/penetration thresholds (see synth.json)")
    return 0
