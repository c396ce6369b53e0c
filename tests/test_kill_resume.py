"""SIGKILL during each stage (meshing on), then a rerun: the run finishes with the same result as a run
that was never interrupted, to float rounding (every random draw comes from the step's generator, and a
checkpoint holds the state after its step's re-meshing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hold.config import load_config
from hold.eval.run_metrics import evaluate_run
from hold.stages import run_stages
from tests.test_stages_refine import _CHILD, OVERRIDES, ROOT

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

KILL_OVERRIDES = [*OVERRIDES, "train.stage3_steps=6"]
KILL_POINTS = (
    ("stage1/ckpts/last.ckpt", 1),  # the first stage-1 checkpoint (30 steps, every 2)
    ("stage1/ckpts/step=20.ckpt", 1),  # later in stage 1, after several re-meshings
    ("stage2/progress.pt", 2),  # stage 2 saved its first chunk
    ("stage3/ckpts/last.ckpt", 3),  # the first stage-3 checkpoint (6 steps, every 2)
    ("stage3/ckpts/step=4.ckpt", 3),
)


def _kill_when(seq_dir: Path, run_dir: Path, marker: str, stage: int) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(seq_dir), str(run_dir), *KILL_OVERRIDES],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    path = run_dir / marker
    try:
        deadline = time.monotonic() + 300
        while not path.is_file() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.is_file(), f"{marker} never appeared"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    state = run_dir / "state.json"
    done = json.loads(state.read_text()).get("completed_stages", {}) if state.is_file() else {}
    assert str(stage) not in done, f"the run was not killed during stage {stage}"


def test_a_run_killed_in_every_stage_ends_like_an_uninterrupted_one(tiny_synthetic, tmp_path):
    seq_dir = tiny_synthetic.oracle_dir
    cfg = load_config("demo", KILL_OVERRIDES)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        killed = tmp_path / "killed"
        for marker, stage in KILL_POINTS:
            _kill_when(seq_dir, killed, marker, stage)
        run_stages(seq_dir, killed, cfg, [1, 2, 3])
        clean = tmp_path / "clean"
        run_stages(seq_dir, clean, cfg, [1, 2, 3])
    finally:
        torch.set_num_threads(threads)
    log = (killed / "logs" / "hold.log").read_text()
    assert log.count("resuming from") >= len(KILL_POINTS)
    a, _ = evaluate_run(killed)
    b, _ = evaluate_run(clean)
    for key in ("mpjpe_mm", "cd_cm2", "f10", "cd_h_cm2"):
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
