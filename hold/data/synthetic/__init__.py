"""Synthetic ground truth: a right Anny hand grasping a textured object, rendered into a RAW dir.

The demo's built-in input, the source of the test fixtures and the accuracy benchmark::

    from hold.data.synthetic import generate
    generate("raw_dir", preset="tiny", seed=0, object="mug", oracle="seq_dir")

or ``hold-synth OUT [--preset tiny|demo] [--seed N] [--object NAME|MESH] [--oracle SEQ]``.
"""

from __future__ import annotations

from hold.data.synthetic.cli import main
from hold.data.synthetic.config import GraspConfig, NoiseConfig, SynthConfig, TextureConfig
from hold.data.synthetic.generate import SynthResult, generate
from hold.data.synthetic.objects import SHAPES
from hold.data.synthetic.presets import PRESETS, make_config
from hold.data.synthetic.validate import RawError, validate_raw

__all__ = [
    "PRESETS",
    "SHAPES",
    "GraspConfig",
    "NoiseConfig",
    "RawError",
    "SynthConfig",
    "SynthResult",
    "TextureConfig",
    "generate",
    "main",
    "make_config",
    "validate_raw",
]
