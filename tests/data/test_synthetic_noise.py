"""Estimator-noise presets: the realistic preset's calibration, thin parts, contact confusion, dropout runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from hold.data.synthetic.config import NoiseConfig
from hold.data.synthetic.estimators import dropout_runs, emulate_hand_estimates, noisy_masks
from hold.data.synthetic.presets import noise_config
from hold.geometry.camera import project

T = 300


def _fake_hand(num_frames: int = T):
    """GT joints 0.5 m in front of the camera, nothing occluding them.

    The noise is set in pixels, so a small image serves: 8 × 8 label maps (only read at the
    projected keypoints) and a focal length that keeps every keypoint inside them.
    """
    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.05, 0.05, (num_frames, 21, 2))
    joints = np.concatenate([xy, np.full((num_frames, 21, 1), 0.5)], -1)
    K = np.array([[30.0, 0, 4.0], [0, 30.0, 4.0], [0, 0, 1]])
    labels = np.full((num_frames, 8, 8), 2, np.uint8)
    depth = np.full((num_frames, 8, 8), 0.49, np.float32)
    return joints, K, labels, depth


def _runs(missed: np.ndarray) -> int:
    return int(np.sum(np.diff(np.concatenate([[0], missed.astype(int)])) == 1))


def test_realistic_keypoints_match_the_benchmark():
    joints, K, labels, depth = _fake_hand()
    est = emulate_hand_estimates(
        joints, K, labels, depth, noise_config("realistic"), np.random.default_rng(1)
    )
    err2d = np.linalg.norm(est.kp2d[..., :2] - project(joints, K), axis=-1)
    assert np.median(err2d) == pytest.approx(6.0, abs=0.5)
    assert 0.01 < (err2d > 25).mean() < 0.06  # outliers
    err3d = np.linalg.norm(est.kp3d[:, 1:] - (joints - joints[:, :1])[:, 1:], axis=-1)
    assert err3d.mean() == pytest.approx(0.030, abs=0.003) and np.all(est.kp3d[:, 0] == 0)
    # The per-frame offset makes the errors of one frame's keypoints correlated.
    offset = (est.kp3d[:, 1:] - (joints - joints[:, :1])[:, 1:]).mean(1)
    assert np.linalg.norm(offset, axis=-1).mean() > 0.015


def test_realistic_detection_drops_out_in_runs():
    for seed in range(40):
        missed = dropout_runs(32, 2, (0.1, 0.5), np.random.default_rng(seed))
        assert 0.1 - 1 / 64 <= missed.mean() <= 0.5 + 1 / 64 and 1 <= _runs(missed) <= 2
    assert dropout_runs(10, 3, (1.0, 1.0), np.random.default_rng(0)).all()
    assert not dropout_runs(10, 3, (0.0, 0.0), np.random.default_rng(0)).any()
    joints, K, labels, depth = _fake_hand(40)
    est = emulate_hand_estimates(
        joints, K, labels, depth, noise_config("realistic"), np.random.default_rng(3)
    )
    missed = ~est.valid
    assert 0.1 <= missed.mean() <= 0.5 and 1 <= _runs(missed) <= 2
    assert np.all(est.kp2d[missed, :, 2] == 0)


def test_mild_hand_estimates_draw_as_before():
    """The defaults draw exactly what the generator drew before the new options (the demo's bytes)."""
    joints, K, labels, depth = _fake_hand(20)
    cfg = NoiseConfig()
    est = emulate_hand_estimates(joints, K, labels, depth, cfg, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    uv = project(joints, K) + rng.normal(0.0, cfg.kp2d_noise_px, (20, 21, 2))
    conf = np.clip(cfg.kp2d_conf_visible + rng.normal(0.0, cfg.kp2d_conf_jitter, (20, 21)), 0.01, 1.0)
    conf[rng.random((20, 21)) < cfg.kp2d_dropout_prob] = 0.0
    valid = rng.random(20) >= cfg.hand_dropout_prob
    kp3d = joints - joints[:, :1] + rng.normal(0.0, cfg.kp3d_noise_m, (20, 21, 3))
    kp3d[:, 0] = 0.0
    assert np.array_equal(est.kp2d, np.concatenate([uv, conf[..., None]], -1).astype(np.float32))
    assert np.array_equal(est.kp3d, kp3d.astype(np.float32)) and np.array_equal(est.valid, valid)


_EXACT = NoiseConfig(mask_boundary_px=0.0, mask_blob_prob=0.0)  # masks unchanged but for the option


def test_thin_object_parts_vanish_from_the_masks():
    labels = np.zeros((1, 40, 40), np.uint8)
    labels[0, 5:25, 5:25] = 1  # a thick part …
    labels[0, 10:35, 30:32] = 1  # … and a 2-px-wide blade
    labels[0, 30:32, 5:20] = 2  # a thin part of the hand stays
    out = noisy_masks(labels, NoiseConfig(**{**vars(_EXACT), "mask_thin_px": 3.0}), np.random.default_rng(0))
    assert np.all(out[0, 10:35, 30:32] == 0)
    assert np.array_equal(out[0, 5:25, 5:25], labels[0, 5:25, 5:25]) and np.all(out[0, 30:32, 5:20] == 2)
    assert np.array_equal(noisy_masks(labels, _EXACT, np.random.default_rng(0)), labels)


def test_contact_confusion_swaps_labels_only_near_the_boundary():
    labels = np.zeros((6, 48, 48), np.uint8)
    labels[:, 8:40, 4:24] = 1
    labels[:, 8:40, 24:44] = 2
    cfg = NoiseConfig(**{**vars(_EXACT), "mask_contact_confusion_px": 3.0})
    out = noisy_masks(labels, cfg, np.random.default_rng(0))
    changed = out != labels
    assert changed.sum() > 20
    assert set(map(tuple, np.stack([labels[changed], out[changed]], -1))) <= {(1, 2), (2, 1)}
    for t in range(len(labels)):
        to_hand = distance_transform_edt(labels[t] != 2)
        to_object = distance_transform_edt(labels[t] != 1)
        assert np.all(np.minimum(to_hand, to_object)[changed[t]] <= 3.0)
