"""A console a person can read (issue 18, part 4): a short `hold-train` in a fresh interpreter prints
our own lines and a progress bar named after the stage, no third-party banners, tips or warnings with
their source line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

NOISE = (
    "Tip",
    "litlogger",
    "GPU available",
    "TPU available",
    "LOCAL_RANK",
    "Tensor Cores",
    "wandb:",
    "Epoch 0",
)
SOURCE_LINE_WARNING = re.compile(
    r"\.py:\d+: \w*(Warning|deprecated)|^\s+warnings\.warn\(|is deprecated", re.M
)


def test_short_training_prints_no_third_party_noise(tiny_synthetic, tmp_path):
    argv = [
        str(tiny_synthetic.oracle_dir),
        "--out",
        str(tmp_path / "run"),
        "--config",
        "demo",
        "--stages",
        "1",
        "train.stage1_steps=3",
        "train.checkpoint_every=1",
        "train.image_every=0",
        "rays.frames_per_step=2",
        "rays.rays_per_frame=16",
    ]
    code = "import sys; from hold.cli import train_main; sys.exit(train_main(sys.argv[1:]))"
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}  # offline: its banners too
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=300
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert [n for n in NOISE if n in console] == [], console
    assert not SOURCE_LINE_WARNING.search(console), console
    assert "Traceback" not in console
    assert "stage 1 (pretrain)" in console and "hold-train: finished stages [1]" in console
    assert "[hold.wandb] W&B offline run demo-stage1" in console  # one line says where W&B writes
