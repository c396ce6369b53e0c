"""The whole pipeline as a user runs it, on a tiny clip: hold-preprocess → hold-train (stages 1, 2, 3) →
hold-export → hold-eval, each through its command-line entry point."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hold.cli import eval_main, export_main, train_main
from hold.data.synthetic.generate import generate
from hold.data.synthetic.presets import make_config
from preprocess.cli import main as preprocess_main
from tests.export.conftest import TINY_EVAL, TINY_EXPORT, TINY_REFINE, TINY_TRAIN

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not


def test_preprocess_train_export_evaluate_a_tiny_clip(tmp_path: Path):
    cfg = make_config(
        "tiny", num_frames=12, image_size=(160, 160), rotation_deg=90.0, object_voxel_m=0.003,
        fill_fraction=1.4, supersample=2, texture={"cell_size_m": 0.02, "fine_cell_size_m": 0.007},
    )  # fmt: skip
    raw, seq, run, export = (tmp_path / d for d in ("raw", "seq", "run", "export"))
    generate(raw, cfg=cfg, seed=1)

    fast_fits = ["hand.fit.iterations=100", "align.iterations=100", "build.overlay_fps=5"]
    assert preprocess_main([str(raw), str(seq), *fast_fits]) == 0
    assert (seq / "sequence.npz").is_file() and (seq / "report.html").is_file()

    assert (
        train_main(
            [
                str(seq),
                "--out",
                str(run),
                "--config",
                "demo",
                *TINY_TRAIN,
                "train.stage3_steps=2",
                *TINY_REFINE,
            ]
        )
        == 0
    )
    state = json.loads((run / "state.json").read_text())
    assert sorted(int(s) for s in state["completed_stages"]) == [1, 2, 3]

    assert export_main([str(run), "--out", str(export), *TINY_EXPORT]) == 0
    assert (export / "object_canonical.ply").is_file() and (export / "joints.npz").is_file()

    assert eval_main([str(run), *TINY_EVAL]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics["mpjpe_mm"]) and math.isfinite(metrics["cd_cm2"])
    assert metrics["frames"]["gt_valid"] == 12
