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
TINY_REFINE = [
    "refine.mesh_resolution=32",
    "refine.mesh_faces=300",
    "refine.hand_raster_faces=300",
    "refine.sdf_grid_resolution=16",
    "refine.hand_sdf_grid_resolution=24",
    "refine.object_points=400",
    "refine.penetration_object_points=100",
    "refine.raster_size=48",
    "refine.phase1_frames=3",
    "refine.phase1_iterations=3",
    "refine.phase2_iterations=3",
    "refine.chunk_frames=3",
    "refine.overlay_size=48",
]
"""Stage-2 overrides: small meshes and rasters, 3 steps per phase."""
TINY_EVAL = ["eval.num_surface_samples=2000"]
"""Evaluation overrides: fewer surface samples (faster ICP)."""
TINY_EXPORT = [
    "hand_mesh_resolution=24",
    "render_stride=8",
    "num_render_frames=1",
    "object_level=beta",
    "object_level_beta=0",
    *TINY_EVAL,
]
"""Export overrides that keep the export test to seconds (level 0: the stage's saved object mesh is reused)."""


@pytest.fixture(scope="session")
def tiny_run(tiny_synthetic, tmp_path_factory):
    """RUN dir with stage 1 finished on the oracle SEQUENCE of the tiny fixture (which has gt/)."""
    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    run_stages(tiny_synthetic.oracle_dir, run_dir, load_config("demo", TINY_TRAIN), [1])
    return run_dir
