from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo
from preprocess.hands import fill_invalid, read_hand_estimates


def test_invalid_frames_are_filled_by_slerp_and_lerp():
    T = 5
    go = np.zeros((T, 3))
    go[4] = (0, 0, np.pi / 2)
    go[2] = (3.0, 0, 0)  # garbage in an invalid frame
    pose = np.zeros((T, 2, 3))
    pose[4, 1] = (1.0, 0, 0)
    transl = np.zeros((T, 3))
    transl[4] = (0.4, 0, 0)
    valid = np.array([True, False, False, False, True])
    out = fill_invalid({"global_orient": go, "pose": pose, "transl": transl}, valid)
    angle = Rotation.from_rotvec(out["global_orient"][2]).magnitude()
    assert angle == pytest.approx(np.pi / 4)  # halfway along the great circle
    np.testing.assert_allclose(out["pose"][1, 1], (0.25, 0, 0), atol=1e-9)
    np.testing.assert_allclose(out["transl"][3], (0.3, 0, 0))
    np.testing.assert_array_equal(out["global_orient"][valid], go[valid])


def test_clip_ends_continue_the_motion():
    T = 8
    valid = np.zeros(T, bool)
    valid[2:6] = True
    t = np.arange(T)
    go = np.where(valid[:, None], np.stack([0.1 * t, 0 * t, 0 * t], -1), 5.0)  # steady turn about x
    pose = np.zeros((T, 2, 3))
    transl = np.where(valid[:, None], np.stack([0.01 * t, 0.5 + 0 * t, 0.02 * t], -1), -1.0)
    out = fill_invalid({"global_orient": go, "pose": pose, "transl": transl}, valid, window=3, horizon=2)
    np.testing.assert_allclose(out["global_orient"][:, 0], 0.1 * t, atol=1e-12)
    np.testing.assert_allclose(out["transl"][:, 0], 0.01 * t, atol=1e-12)
    np.testing.assert_allclose(out["transl"][:, 1], 0.5)
    np.testing.assert_allclose(out["pose"], 0.0)
    everything = fill_invalid({"global_orient": go, "pose": pose, "transl": transl}, np.ones(T, bool))
    np.testing.assert_array_equal(everything["transl"], transl)
    np.testing.assert_array_equal(everything["global_orient"], go)


def _info(n_in: int, kept: list[int]) -> FramesInfo:
    return FramesInfo(len(kept), (50, 100), (100, 200), n_in, kept, "frames")


def test_estimates_follow_stride_and_resize(tmp_path: Path):
    kp2d = np.zeros((6, 21, 3), np.float32)
    kp2d[:, :, 0] = np.arange(6)[:, None] * 10 + 9.5
    kp2d[:, :, 2] = 0.9
    np.savez(tmp_path / "hands.npz", **{"right.kp2d": kp2d, "right.valid": np.ones(6, bool)})
    est = read_hand_estimates(tmp_path, _info(6, [0, 2, 4]))
    assert set(est) == {"right"} and "kp3d" not in est["right"]
    np.testing.assert_allclose(est["right"]["kp2d"][:, 0, 0], [4.5, 14.5, 24.5])  # (x + .5) / 2 − .5


def test_hand_frame_count_must_match(tmp_path: Path):
    np.savez(tmp_path / "hands.npz", **{"right.kp2d": np.zeros((4, 21, 3)), "right.valid": np.ones(4, bool)})
    with pytest.raises(
        PreprocessError, match="frame counts differ: 'right.kp2d' has 4 frames but the input has 6"
    ):
        read_hand_estimates(tmp_path, _info(6, list(range(6))))
    with pytest.raises(PreprocessError, match="needs RAW/hands.npz"):
        read_hand_estimates(tmp_path / "nowhere", _info(6, list(range(6))))


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {"right.kp2d": np.zeros((6, 21, 3), complex)},
            "'right.kp2d': expected real numbers, found dtype complex128",
        ),
        (
            {"right.kp2d": np.zeros((6, 21, 3)), "right.valid": np.full(6, 0.7)},
            "'right.valid': expected booleans",
        ),
        (
            {"right.kp2d": np.zeros((6, 21, 3)), "right.kp3d": np.zeros((6, 21, 3), complex)},
            "'right.kp3d': expected real numbers",
        ),
    ],
)
def test_estimates_of_the_wrong_kind_are_named(tmp_path: Path, arrays: dict, message: str):
    np.savez(tmp_path / "hands.npz", **arrays)
    with pytest.raises(PreprocessError, match=message):
        read_hand_estimates(tmp_path, _info(6, list(range(6))))
