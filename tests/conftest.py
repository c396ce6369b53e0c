"""Shared fixtures. W&B is forced off for every test (an online init without network blocks ≥ 90 s)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("ANNY_CACHE_DIR", os.path.expanduser("~/.cache/anny"))

from hold.data.sequence import HandTrack, ObjectTrack, Sequence, write_sequence  # noqa: E402
from hold.hand.spec import HAND_MODEL_SPECS  # noqa: E402


def random_sequence(
    T: int = 4, H: int = 12, W: int = 16, seed: int = 0, hand_model: str = "anny"
) -> Sequence:
    """A small, valid in-memory Sequence with random (but well-formed) arrays."""
    rng = np.random.default_rng(seed)
    spec = HAND_MODEL_SPECS[hand_model]
    points = rng.normal(size=(50, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True).max() * 1.01
    return Sequence(
        K=np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]]),
        valid=np.ones(T, bool),
        hands={
            "right": HandTrack(
                global_orient=rng.normal(size=(T, 3)) * 0.1,
                pose=rng.normal(size=(T, spec.num_pose_joints, 3)) * 0.1,
                betas=np.zeros(spec.num_betas),
                transl=rng.normal(size=(T, 3)) * 0.01 + [0, 0, 0.5],
            )
        },
        object=ObjectTrack(
            rot=rng.normal(size=(T, 3)),
            transl=rng.normal(size=(T, 3)) * 0.01 + [0, 0, 0.5],
            scale=0.08,
            points=points,
            colors=rng.integers(0, 256, size=(50, 3), dtype=np.uint8),
        ),
        image_size=(H, W),
        hand_model=hand_model,
        source={"made_by": "tests"},
    )


def random_frames(seq: Sequence, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    H, W = seq.image_size
    images = [rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for _ in range(seq.num_frames)]
    labels = np.array([0, 1, 2, 255], np.uint8)
    masks = [labels[rng.integers(0, 4, size=(H, W))] for _ in range(seq.num_frames)]
    return images, masks


@pytest.fixture
def sequence_dir(tmp_path):
    """A valid SEQUENCE dir on disk (T=4, 12×16 px)."""
    seq = random_sequence()
    images, masks = random_frames(seq)
    return write_sequence(tmp_path / "seq", seq, images, masks)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """The synthetic ``tiny`` preset: RAW dir with gt/ and its oracle SEQUENCE dir (made once per run)."""
    from hold.data.synthetic import generate

    root = tmp_path_factory.mktemp("tiny_synthetic")
    return generate(root / "raw", preset="tiny", seed=0, oracle=root / "seq")
