"""Fixtures of the preprocessing tests: a small textured object-only clip rendered with the synthetic
generator's renderer (enough texture for SfM at 160 px), with GT object poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hold.data.synthetic.objects import load_object
from hold.data.synthetic.presets import make_config
from hold.data.synthetic.render import Lighting, RenderMesh, render
from hold.utils.io import write_json, write_png

SIZE = 160
FRAMES = 12
SPIN_DEG = 200.0


def render_object_clip(
    out: Path, num_frames: int = FRAMES, size: int = SIZE, seed: int = 0
) -> dict[str, np.ndarray]:
    """RAW dir with frames/, masks/ (object = 1), camera.json of a bottle spinning before a static camera.

    Returns:
        GT ``R`` (T, 3, 3), ``t`` (T, 3) object → camera and ``K`` (3, 3).
    """
    cfg = make_config("demo", image_size=(size, size))
    rng = np.random.default_rng(seed)
    obj = load_object("bottle", cfg, rng)
    f = 1.2 * size
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    distance = obj.radius * f / (0.4 * size)
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    light = Lighting(np.array([-0.4, -0.6, -1.0]) / np.linalg.norm([-0.4, -0.6, -1.0]), 0.45)
    tilt = Rotation.from_euler("x", 20, degrees=True).as_matrix()
    Rs, ts = [], []
    for t in range(num_frames):
        R = Rotation.from_rotvec(axis * np.deg2rad(SPIN_DEG) * t / (num_frames - 1)).as_matrix() @ tilt
        trans = np.array([0.01 * np.sin(t / 3), 0.0, distance])
        frame = render(
            [RenderMesh(obj.vertices @ R.T + trans, obj.faces, 1, obj.albedo, obj.vertices)],
            K,
            (size, size),
            light,
            2,
        )
        write_png(out / "frames" / f"{t:05d}.png", frame.rgb)
        write_png(out / "masks" / f"{t:05d}.png", frame.labels)
        Rs.append(R)
        ts.append(trans)
    write_json(out / "camera.json", {"fx": f, "fy": f, "cx": (size - 1) / 2, "cy": (size - 1) / 2})
    return {"R": np.array(Rs), "t": np.array(ts), "K": K}


def relative_rotation_errors_deg(R_pred: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """(T,) angle between R_t R_0^T of prediction and GT (the SfM frame is arbitrary)."""
    rel_p = np.einsum("tij,kj->tik", R_pred, R_pred[0])
    rel_g = np.einsum("tij,kj->tik", R_gt, R_gt[0])
    return np.degrees(Rotation.from_matrix(np.einsum("tij,tkj->tik", rel_p, rel_g)).magnitude())


@pytest.fixture(scope="session")
def object_clip(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """(RAW dir, GT) of the textured object clip, rendered once per session."""
    raw = tmp_path_factory.mktemp("object_clip")
    return raw, render_object_clip(raw)
