"""Early failure in training (issue 18, part 2): a stage whose object has no surface at
``train.surface_check_step``, or whose loss explodes, stops with the likely cause and keeps its
checkpoints; the numbers behind the causes (``hold.diagnosis``) on good and broken masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hold import losses
from hold.cli import train_main
from hold.config import load_config
from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT, read_sequence
from hold.stages import run_stages
from hold.system import HoldSystem, TrainingStoppedError

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

SMALL = ["rays.frames_per_step=2", "rays.rays_per_frame=32", "logging.wandb=disabled", "train.image_every=0"]


def _edit_masks(seq: Path, edit) -> None:
    for path in sorted((seq / "masks").glob("*.png")):
        mask = np.asarray(Image.open(path)).copy()
        edit(mask)
        Image.fromarray(mask).save(path)


def blob_elsewhere(mask: np.ndarray) -> None:
    """The object's pixels become background; a square in the top-left corner is labelled object."""
    h, w = mask.shape
    mask[mask == LABEL_OBJECT] = LABEL_BACKGROUND
    mask[: h // 6, : w // 6] = LABEL_OBJECT


def no_object(mask: np.ndarray) -> None:
    mask[mask == LABEL_OBJECT] = LABEL_BACKGROUND


@pytest.fixture
def broken_sequence(tiny_synthetic, tmp_path):
    def make(edit) -> Path:
        seq = tmp_path / "seq"
        shutil.copytree(tiny_synthetic.oracle_dir, seq)
        _edit_masks(seq, edit)
        return seq

    return make


def test_masks_that_miss_the_object_stop_stage_1_early_and_resume(broken_sequence, tmp_path, capsys):
    seq = broken_sequence(blob_elsewhere)
    argv = [str(seq), "--out", str(tmp_path / "run"), "--config", "demo", *SMALL, "train.stage1_steps=50"]
    assert load_config("demo").train.surface_check_step == 40  # the default, inside the demo's 120 steps
    assert train_main([*argv, "--stages", "1"]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    message = out.err.strip().splitlines()[-1]
    assert message.startswith("hold-train: error: stage 1 stopped at step 40 (train.surface_check_step)")
    assert "the object has no surface" in message
    assert "Likely cause: poses far from the masks" in message
    assert "object outside the bounding sphere" in message
    assert f"{seq / 'report.html'}#step-sfm" in message and "train.surface_check_step=0" in message
    ckpt = torch.load(tmp_path / "run/stage1/ckpts/last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 40

    # resumable: the same command with the check off continues from step 40 to the end of the stage
    assert train_main([*argv, "--stages", "1", "train.surface_check_step=0"]) == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and "train.surface_check_step: 40 → 0" in err


def test_diagnosis_names_empty_masks(broken_sequence):
    system = HoldSystem(load_config("demo", SMALL), read_sequence(broken_sequence(no_object)), None, 10)
    diagnosis = system.diagnose(sides=["right"])
    assert [f.cause for f in diagnosis.findings] == ["empty masks"]
    assert diagnosis.findings[0].sections == ("masks",)
    assert "in only 0 of 6 frames" in diagnosis.findings[0].detail


def test_diagnosis_of_good_masks_finds_nothing(tiny_synthetic):
    system = HoldSystem(load_config("demo", SMALL), read_sequence(tiny_synthetic.oracle_dir), None, 10)
    diagnosis = system.diagnose(sides=["right"])
    assert diagnosis.findings == []
    assert "object in 6/6 frames" in diagnosis.summary


def test_diagnosis_names_a_hand_far_from_its_masks(tiny_synthetic):
    seq = read_sequence(tiny_synthetic.oracle_dir)
    seq.hands["right"].transl = seq.hands["right"].transl + np.array([0.3, 0.0, 0.0])  # 30 cm aside
    system = HoldSystem(load_config("demo", SMALL), seq, None, 10)
    causes = [f.cause for f in system.diagnose(include_object=False, sides=["right"]).findings]
    assert causes == ["right-hand poses far from the masks"]


def test_exploding_loss_stops_the_stage(tiny_synthetic, tmp_path, monkeypatch):
    cfg = load_config("demo", [*SMALL, "train.stage1_steps=6", "train.checkpoint_every=2"])
    real = losses.rgb_l1
    calls = {"n": 0}

    def exploding(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * 1e7 if calls["n"] == 4 else value

    monkeypatch.setattr(losses, "rgb_l1", exploding)
    with pytest.raises(TrainingStoppedError, match=r"loss exploded at step 3 .*largest weighted term: rgb"):
        run_stages(tiny_synthetic.oracle_dir, tmp_path / "run", cfg, [1])
    assert (tmp_path / "run/stage1/ckpts/last.ckpt").is_file()
