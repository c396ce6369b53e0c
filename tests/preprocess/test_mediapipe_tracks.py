"""Right/left assignment of mediapipe detections, the backend's output file and the missing-environment
error (no mediapipe needed)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from hold.config import ConfigError
from hold.utils.io import write_png
from preprocess.config import MediapipeConfig, load_preprocess_config
from preprocess.errors import PreprocessError
from preprocess.hands import load_hands_npz
from preprocess.mediapipe import driver, estimate_hands, worker
from preprocess.mediapipe.tracks import (
    Detections,
    choose_sides,
    drop_duplicates,
    hand_estimates,
    usable_detections,
)
from tests.preprocess.mediapipe_fakes import FRAME_PIXEL, H, W

HAND_PX = 20.0  # side of a fake hand's square of keypoints


def detections(hands: list[list[tuple[float, ...] | None]]) -> Detections:
    """Per frame, per slot ``(x, y, P(mediapipe label "Right")[, size factor])`` or None; keypoints fill
    a square of side ``HAND_PX`` × the size factor (default 1)."""
    T, N = len(hands), max(len(f) for f in hands)
    offsets = np.random.default_rng(0).uniform(0, HAND_PX, (21, 2))
    lm = np.full((T, N, 21, 3), np.nan)
    world = np.full((T, N, 21, 3), np.nan)
    handedness, count = np.full((T, N), np.nan), np.zeros(T, int)
    for t, frame in enumerate(hands):
        present = [h for h in frame if h is not None]
        count[t] = len(present)
        for k, (x, y, p, *size) in enumerate(present):
            lm[t, k, :, :2] = np.array([x, y]) + offsets * (size[0] if size else 1.0)
            lm[t, k, :, 2] = 0.0
            world[t, k] = np.arange(63).reshape(21, 3) * 0.001 + 0.05
            handedness[t, k] = p
    score = np.where(np.isnan(handedness), 0.0, np.maximum(handedness, 1 - np.nan_to_num(handedness)))
    return Detections(
        landmarks=lm,
        world=world,
        handedness=handedness,
        score=score,
        source=(~np.isnan(handedness)).astype(int),
        count=count,
        image_size=np.tile([H, W], (T, 1)),
        seconds=np.zeros(T),
        version="fake",
    )


def assign(det: Detections, **changes) -> tuple[tuple[str, ...], np.ndarray]:
    cfg = MediapipeConfig(**changes)
    return choose_sides(det, usable_detections(det, cfg), cfg)


def test_handedness_is_unmirrored_for_an_ordinary_camera():
    det = detections([[(10, 10, 0.05)]] * 3)  # mediapipe says "Left": on a non-mirrored image, a right hand
    sides, slots = assign(det)
    assert sides == ("right",) and (slots == 0).all()
    sides, slots = assign(det, mirrored=True)
    assert sides == ("left",) and (slots == 0).all()


def test_a_flipped_label_does_not_switch_the_side():
    frames = [[(10 + t, 10, 0.05)] for t in range(7)]
    frames[3] = [(13, 10, 0.8)]  # one frame where mediapipe believes it is the other hand
    sides, slots = assign(detections(frames))
    assert sides == ("right",)
    np.testing.assert_array_equal(slots[:, 0], 0)


def test_two_hands_follow_their_positions_and_a_stray_detection_is_left_out():
    right, left = (10.0, 10.0), (50.0, 10.0)
    frames = []
    for t in range(8):
        frame = [(right[0] + t, right[1], 0.1), (left[0] - t, left[1], 0.9)]
        frames.append(frame[::-1] if t % 2 else frame)  # mediapipe's slot order is arbitrary
    sides, slots = assign(detections(frames))
    assert sides == ("right", "left")
    for t in range(8):
        np.testing.assert_array_equal(slots[t], [1, 0] if t % 2 else [0, 1])
    # a left-labelled "hand" seen in one frame of eight (the object) is not a left hand
    frames = [[(10.0 + t, 10.0, 0.05)] for t in range(8)]
    frames[4] = [*frames[4], (60.0, 30.0, 0.95)]
    sides, slots = assign(detections(frames))
    assert sides == ("right",) and (slots[:, 0] == 0).all()


def test_small_false_positives_are_dropped():
    frames = [[(10.0 + t, 10.0, 0.05)] for t in range(6)]
    for t in (1, 2):  # the detection fallback finds a small "hand" in the texture (2 of 6 frames)
        frames[t].append((40.0, 30.0, 0.95, 0.2))
    det = detections(frames)
    keep = usable_detections(det, MediapipeConfig())
    np.testing.assert_array_equal(keep[1:3, 1], False)
    sides, slots = assign(det)
    assert sides == ("right",) and (slots[:, 0] == 0).all()


def test_missed_frames_are_invalid_and_duplicates_dropped():
    frames = [[(10, 10, 0.05), (11, 10, 0.1)], [None], [(12, 10, 0.05)]]  # frame 0: the same hand twice
    det = detections(frames)
    keep = drop_duplicates(det, 0.5)
    np.testing.assert_array_equal(keep[0], [True, False])
    sides, slots = assign(det, sides="right")
    np.testing.assert_array_equal(slots[:, 0], [0, -1, 0])
    arrays = hand_estimates(det, sides, slots)
    np.testing.assert_array_equal(arrays["right.valid"], [True, False, True])
    assert (arrays["right.kp2d"][1] == 0).all()  # confidence 0 where invalid
    np.testing.assert_allclose(arrays["right.kp2d"][0, :, 2], 0.95)
    np.testing.assert_allclose(arrays["right.kp3d"][0, 0], 0.0)  # root-relative: the wrist is the origin
    np.testing.assert_allclose(arrays["right.kp3d"][0, 1], [0.003, 0.003, 0.003])


def test_missing_environment_says_how_to_create_it(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(driver.ENV_VAR, raising=False)
    cfg = MediapipeConfig(python=str(tmp_path / "nowhere" / "bin" / "python"))
    assert not driver.environment_ready(cfg)
    with pytest.raises(PreprocessError, match="make mediapipe-env") as e:
        driver.require_environment(cfg)
    assert e.value.path == tmp_path / "nowhere" / "bin" / "python" and e.value.step == "hands"
    monkeypatch.setenv(driver.ENV_VAR, sys.executable)
    assert driver.mediapipe_python(MediapipeConfig()) == Path(sys.executable)
    monkeypatch.delenv(driver.ENV_VAR)
    assert driver.mediapipe_python(MediapipeConfig()) == driver.DEFAULT_ENV / "bin" / "python"
    # the hands step stops with the same message before reading a frame
    write_png(tmp_path / "frames" / "00000.png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(PreprocessError, match="does not exist: create it with `make mediapipe-env`"):
        estimate_hands(tmp_path / "frames", 1, tmp_path / "mp", cfg)


def test_backend_writes_a_hands_npz_that_the_import_reader_accepts(tmp_path: Path, monkeypatch):
    frames = tmp_path / "frames"
    for t in range(3):
        write_png(frames / f"{t:05d}.png", np.full((H, W, 3), 100 + 2 * t, np.uint8))  # even: tracked
    script = tmp_path / "fake_worker.py"
    script.write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(driver.WORKER.parent)!r}, {str(Path(__file__).parent)!r}]\n"
        "import worker\nfrom mediapipe_fakes import FakeHands\n"
        "sys.exit(worker.main(make_estimator=FakeHands))\n"
    )
    monkeypatch.setattr(driver, "WORKER", script)
    cfg = dataclasses.replace(MediapipeConfig(), python=sys.executable)
    path, summary = estimate_hands(frames, 3, tmp_path / "mp", cfg)
    est = load_hands_npz(path, 3)
    assert list(est) == ["right"] and est["right"]["valid"].all()
    np.testing.assert_allclose(
        est["right"]["kp2d"][:, :, :2], np.broadcast_to(FRAME_PIXEL, (3, 21, 2)), atol=1e-4
    )
    assert summary["sides"] == {"right": {"assigned": 3}} and summary["frames_with_detection"] == 3
    assert {p.name for p in (tmp_path / "mp").iterdir()} >= {"request.json", "response.npz", "worker.log"}


def test_config_knows_the_backend():
    cfg = load_preprocess_config(["hands.backend=mediapipe", "hands.mediapipe.upscale_to=640"])
    assert cfg.hands.backend == "mediapipe" and cfg.hands.mediapipe.upscale_to == 640
    assert set(driver.worker_options(cfg.hands.mediapipe)) == set(worker.OPTION_KEYS)
    with pytest.raises(ConfigError, match="max_num_hands must be ≥ 1"):
        load_preprocess_config(["hands.mediapipe.max_num_hands=0"])
    with pytest.raises(ConfigError, match="'import', 'mediapipe'"):
        load_preprocess_config(["hands.backend=hamer"])
