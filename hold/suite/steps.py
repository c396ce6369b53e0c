"""One pipeline step of a suite clip, run in its own process: ``python -m hold.suite.steps STEP ARGS…``.

The suite runs every step in a child process so that a crash, a hang or a memory blow-up of one clip
becomes a row of the table instead of the end of the suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hold.suite.spec import ClipSpec

CLIP_FILE = "clip.json"
"""The clip's spec and run settings, written into its folder by the runner."""


def synthesise(clip_json: Path, raw: Path) -> int:
    """Render the clip described by ``clip_json`` into the RAW dir ``raw``."""
    from hold.data.synthetic.generate import generate

    data = json.loads(clip_json.read_text())
    clip = ClipSpec(data["name"], data["seed"], data["synth_preset"], data["synth"], data.get("about", ""))
    try:
        result = generate(raw, seed=clip.seed, cfg=clip.synth_config())
    except ValueError as e:  # a bad object mesh or setting: one line, not a traceback
        print(f"hold-suite: error: clip {clip.name}: {e}", file=sys.stderr)
        return 2
    print(f"synthesised {clip.name} into {raw} in {result.seconds:.1f} s (grasp ok: {result.grasp_ok})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(
            "usage: python -m hold.suite.steps synthesise|preprocess|train|export|evaluate ARGS…",
            file=sys.stderr,
        )
        return 2
    step, args = argv[0], argv[1:]
    if step == "synthesise":
        return synthesise(Path(args[0]), Path(args[1]))
    if step == "preprocess":
        from preprocess.cli import main as preprocess_main

        return preprocess_main(args)
    from hold.cli import eval_main, export_main, train_main

    mains = {"train": train_main, "export": export_main, "evaluate": eval_main}
    if step not in mains:
        print(f"hold.suite.steps: unknown step {step!r}", file=sys.stderr)
        return 2
    return mains[step](args)


if __name__ == "__main__":
    sys.exit(main())
