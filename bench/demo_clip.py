"""The synthetic clips the benchmarks measure on, generated once into a folder and reused while current.

A folder is reused only when its ``synth.json`` records the same generator version, preset config,
seed and object as a fresh generation would: a cached render from an older preset (another image
size, say) is made again instead of being measured as if it were the demo.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from hold.data.synthetic.generate import generate
from hold.data.synthetic.presets import make_config


def _expected(preset: str, seed: int, obj: str | None) -> dict:
    cfg = make_config(preset)
    if obj is not None:
        cfg.object = obj
    return {"preset": preset, "seed": seed, "config": json.loads(json.dumps(dataclasses.asdict(cfg)))}


def is_current(raw: Path, preset: str = "demo", seed: int = 0, obj: str | None = None) -> bool:
    """Whether ``raw`` holds exactly the clip ``generate(raw, preset, seed, obj)`` would write."""
    try:
        meta = json.loads((raw / "synth.json").read_text())
    except (OSError, ValueError):
        return False
    expected = _expected(preset, seed, obj)
    return (raw / "gt" / "gt.npz").is_file() and all(meta.get(k) == v for k, v in expected.items())


def ensure_clip(
    raw: Path, oracle: Path | None = None, preset: str = "demo", seed: int = 0, obj: str | None = None
) -> bool:
    """Generate the clip into ``raw`` (and its oracle SEQUENCE into ``oracle``) unless already there.

    Returns:
        True when it was generated now.

    Raises:
        SystemExit: ``raw`` (``oracle``) holds files but no synth.json (sequence.json): not ours, so
            nothing is deleted.
    """
    has_oracle = oracle is None or (oracle / "sequence.json").is_file()
    if is_current(raw, preset, seed, obj) and has_oracle:
        return False
    for folder, marker in ((raw, "synth.json"), (oracle, "sequence.json")):
        if (
            folder is not None
            and folder.is_dir()
            and any(folder.iterdir())
            and not (folder / marker).is_file()
        ):
            raise SystemExit(f"{folder}: holds files but no {marker}; give an empty or new folder")
    for folder in (raw, oracle):
        if folder is not None and folder.is_dir():
            shutil.rmtree(folder)  # a stale render: regenerate from scratch, no leftover frames
    generate(raw, preset=preset, seed=seed, object=obj, oracle=oracle)
    return True
