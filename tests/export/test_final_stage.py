"""export.final_stage=masks: stage 1 replaces stage 3 only when its object silhouettes fit the masks better."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from hold.cli import eval_main
from hold.final.model import load_final_model
from hold.run import RunDir
from tests.export.conftest import TINY_EVAL

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not


def _with_stage3(tiny_run, tmp_path, shift_m: float = 0.0):
    """A copy of the tiny stage-1 run with a 'stage 3' of the same weights, its object moved by ``shift_m``
    metres along x in every frame (its silhouettes then miss the masks)."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    shutil.copytree(run_dir / "stage1", run_dir / "stage3")
    weights = torch.load(run_dir / "stage3" / "model.pt", map_location="cpu", weights_only=False)
    weights["params.object.transl.weight"][:, 0] += shift_m
    torch.save(weights, run_dir / "stage3" / "model.pt")
    RunDir(run_dir).mark_stage_done(3)
    return run_dir


def _load(run_dir, final_stage: str):
    cfg = RunDir(run_dir).load_config()
    cfg.export.final_stage = final_stage
    return load_final_model(run_dir, cfg)


def test_a_tie_keeps_stage_3(tiny_run, tmp_path):
    final = _load(_with_stage3(tiny_run, tmp_path), "masks")
    assert final.stage == 3 and final.fallback is None
    iou = final.stage_fit["iou_by_stage"]
    assert iou["1"] == iou["3"] and 0 < iou["3"] <= 1 and final.stage_fit["chosen"] == 3


def test_stage_1_replaces_a_stage_3_that_fits_the_masks_worse(tiny_run, tmp_path, caplog):
    run_dir = _with_stage3(tiny_run, tmp_path, shift_m=0.05)
    assert _load(run_dir, "last").stage == 3  # HOLD's rule: the last stage with a surface
    final = _load(run_dir, "masks")
    assert final.stage == 1 and final.stage_fit["chosen"] == 1
    iou = final.stage_fit["iou_by_stage"]
    assert iou["1"] > iou["3"]
    assert "fit the masks better than stage 3's" in final.fallback and "stage 1 is used" in caplog.text
    # evaluation reports it: metrics.json names the stage and why, which the suite lists under Degraded
    assert eval_main([str(run_dir), *TINY_EVAL, "export.final_stage=masks"]) == 0
    reconstruction = json.loads((run_dir / "metrics.json").read_text())["reconstruction"]
    assert reconstruction["stage"] == 1 and reconstruction["fallback"] == final.fallback
    assert reconstruction["stage_fit"] == final.stage_fit
