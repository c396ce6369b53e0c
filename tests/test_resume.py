"""Resuming a training stage: Ctrl-C exits 130 with the way out, a checkpoint made after the object
was re-meshed loads into a fresh model, and a checkpoint cut short falls back to an intact one."""

from __future__ import annotations

import pytest
import torch

from hold.cli import train_main
from hold.config import load_config
from hold.data.sequence import read_sequence
from hold.stages import run_stages
from hold.system import HoldSystem

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

STEPS = [
    "rays.frames_per_step=2",
    "rays.rays_per_frame=16",
    "logging.wandb=disabled",
    "train.stage1_steps=6",
    "train.checkpoint_every=2",
    "train.mesh_every=2",  # re-meshing resizes object.mesh_vertices between checkpoints
    "train.mesh_resolution=24",
    "train.final_mesh_resolution=24",
    "train.image_every=0",
]


def test_interrupted_stage_resumes_past_a_cut_checkpoint(tiny_synthetic, tmp_path, monkeypatch, capsys):
    seq, run_dir = tiny_synthetic.oracle_dir, tmp_path / "run"
    real = HoldSystem.training_step

    def interrupted_at_step_5(self, batch, batch_idx):
        if self.global_step == 5:
            raise KeyboardInterrupt
        return real(self, batch, batch_idx)

    monkeypatch.setattr(HoldSystem, "training_step", interrupted_at_step_5)
    code = train_main([str(seq), "--out", str(run_dir), "--config", "demo", "--stages", "1", *STEPS])
    assert code == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    monkeypatch.undo()

    ckpts = run_dir / "stage1" / "ckpts"
    last = ckpts / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 4
    initial = HoldSystem(load_config("demo", STEPS), read_sequence(seq), None, 6).model.object.mesh_vertices
    assert saved["state_dict"]["model.object.mesh_vertices"].shape != initial.shape
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 3])  # a kill while Lightning wrote it

    run = run_stages(seq, run_dir, load_config("demo", STEPS), [1])
    assert run.completed_stages() == [1]
    log = (run.logs / "hold.log").read_text()
    assert f"{last}: unreadable checkpoint" in log and "resuming from" in log
    assert torch.load(last, weights_only=False)["global_step"] == 6
