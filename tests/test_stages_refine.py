"""The three-stage run: a run killed during stage 1 resumes and finishes stages 1 → 2 → 3; stage 2 writes
its outputs and stage 3 trains on the refined poses; stage 2 needs stage 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hold.cli import EXIT_USAGE, train_main
from hold.config import load_config
from hold.run import RunDirError
from hold.stages import run_stages
from tests.export.conftest import TINY_REFINE

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

ROOT = Path(__file__).resolve().parents[1]
STAGE1_STEPS = 30
OVERRIDES = [
    "rays.frames_per_step=2",
    "rays.rays_per_frame=16",
    "optim.optimize_object_poses=false",  # stage 3 keeps the refined poses, which the test compares
    "logging.wandb=disabled",
    f"train.stage1_steps={STAGE1_STEPS}",
    "train.stage3_steps=2",
    "train.checkpoint_every=2",
    "train.image_every=0",
    "train.mesh_every=5",  # meshing on: checkpoints hold a resized object.mesh_vertices
    "train.mesh_resolution=24",
    "train.final_mesh_resolution=32",
    *TINY_REFINE,
]

_CHILD = """
import sys
from pathlib import Path
from hold.config import load_config
from hold.stages import run_stages
run_stages(Path(sys.argv[1]), Path(sys.argv[2]), load_config("demo", sys.argv[3:]), [1, 2, 3])
"""


def test_killed_run_resumes_and_finishes_all_stages(tiny_synthetic, tmp_path):
    seq_dir, run_dir = tiny_synthetic.oracle_dir, tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(seq_dir), str(run_dir), *OVERRIDES],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = run_dir / "stage1" / "ckpts" / "last.ckpt"
    try:
        deadline = time.monotonic() + 240
        while not last.is_file() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert last.is_file(), "stage 1 wrote no checkpoint"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    state = json.loads((run_dir / "state.json").read_text()) if (run_dir / "state.json").exists() else {}
    assert "1" not in state.get("completed_stages", {}), "the run was not killed during stage 1"
    killed_at = torch.load(last, weights_only=False, map_location="cpu")["global_step"]
    assert 0 < killed_at < STAGE1_STEPS

    cfg = load_config("demo", OVERRIDES)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = run_stages(seq_dir, run_dir, cfg, [1, 2, 3])
    finally:
        torch.set_num_threads(threads)
    assert run.completed_stages() == [1, 2, 3]
    assert "resuming from" in (run.logs / "hold.log").read_text()
    assert torch.load(last, weights_only=False)["global_step"] == STAGE1_STEPS

    stage2 = run.stage_dir(2)
    with np.load(seq_dir / "sequence.npz") as original, np.load(stage2 / "refined.npz") as refined:
        assert set(refined.files) == set(original.files)
        for key in original.files:
            assert refined[key].shape == original[key].shape and refined[key].dtype == original[key].dtype
        refined_transl = refined["object.transl"]
    residuals = json.loads((stage2 / "residuals.json").read_text())
    assert set(residuals["summary"]) == {"before", "after"}
    assert len(residuals["per_frame"]["after"]["tip_gap_mm"]) == 6 and len(residuals["phases"]) == 3
    assert (stage2 / "overlay.gif").stat().st_size > 0 and (stage2 / "object_refine.ply").is_file()
    # Stage 3: fresh networks on the refined poses (the demo preset keeps poses fixed in training).
    stage3 = torch.load(run.stage_dir(3) / "model.pt", weights_only=True)
    assert np.allclose(stage3["params.object.transl.weight"].numpy(), refined_transl)
    # A finished run is skipped entirely.
    assert run_stages(seq_dir, run_dir, cfg, [1, 2, 3]).completed_stages() == [1, 2, 3]
    # Stage 2 interrupted after its last chunk: it resumes from progress.pt and writes the same poses.
    state = json.loads(run.state_path.read_text())
    del state["completed_stages"]["2"]
    run.state_path.write_text(json.dumps(state))
    (stage2 / "refined.npz").unlink()
    run_stages(seq_dir, run_dir, cfg, [2])
    assert "stage 2: resuming from" in (run.logs / "hold.log").read_text()
    with np.load(stage2 / "refined.npz") as again:
        assert np.array_equal(again["object.transl"], refined_transl)


def test_stage2_needs_a_finished_stage1(tiny_synthetic, tmp_path, capsys):
    cfg = load_config("demo", OVERRIDES)
    with pytest.raises(RunDirError, match="stage1/model.pt: missing"):
        run_stages(tiny_synthetic.oracle_dir, tmp_path / "run", cfg, [2])
    code = train_main(
        [str(tiny_synthetic.oracle_dir), "--out", str(tmp_path / "run2"), "--stages", "2", *OVERRIDES]
    )
    assert code == EXIT_USAGE and "run --stages 1 first" in capsys.readouterr().err
