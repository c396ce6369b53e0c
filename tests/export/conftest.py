"""A stage-1 RUN dir made from the tiny synthetic fixture in a few seconds (2 steps, small grids)."""

from __future__ import annotations

import pytest

from hold.config import load_config
from hold.stages import run_stages

TINY_TRAIN = [
    "logging.wandb=disabled",
    "rays.frames_per_step=2",
    "rays.rays_per_frame=16",
    "train.stage1_steps=2",
    "train.checkpoint_every=2",
    "train.image_every=0",
    "train.render_chunk=256",
    "train.mesh_every=2",
    "train.mesh_resolution=24",
    "train.final_mesh_resolution=24",
]
"""Training overrides: 2 steps of the demo preset, coarse meshes, no image panels."""
TINY_EVAL = ["eval.num_surface_samples=2000"]
"""Evaluation overrides: fewer surface samples (faster ICP)."""
TINY_EXPORT = ["hand_mesh_resolution=24", "render_stride=8", "num_render_frames=1", *TINY_EVAL]
"""Export overrides that keep the export test to seconds."""


@pytest.fixture(scope="session")
def tiny_run(tiny_synthetic, tmp_path_factory):
    """RUN dir with stage 1 finished on the oracle SEQUENCE of the tiny fixture (which has gt/)."""
    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    run_stages(tiny_synthetic.oracle_dir, run_dir, load_config("demo", TINY_TRAIN), [1])
    return run_dir
