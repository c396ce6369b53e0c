"""Keypoint fitting: recovery of known poses from their own noisy keypoints, inputs, chunks.

Acceptance (issue): from 2D keypoints with 3 px noise plus root-relative 3D keypoints with 5 mm noise,
mean keypoint error < 5 mm; from 2D keypoints alone with known shape, < 10 mm root-relative. The
sequences are smooth random motions (``sample_sequence``): a random pose within 0.8 × the joint
limits blended into another while the hand turns by 0.5 rad and moves 5 cm, about 0.45 m from a
600 px focal-length camera. Errors are MPJPE-style: mean root-relative keypoint distance.
"""

from __future__ import annotations

import math

import pytest
import torch

from hold.config.hand import HandConfig
from hold.geometry.camera import project
from hold.hand.fitting import HandFitter
from hold.hand.sampling import sample_sequence

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

K = torch.tensor([[600.0, 0.0, 256.0], [0.0, 600.0, 256.0], [0.0, 0.0, 1.0]])


def _observe(hand, cfg: HandConfig, frames: int, seed: int, noise_px: float = 3.0, noise_3d: float = 0.005):
    g = torch.Generator().manual_seed(seed)
    params = sample_sequence(hand, cfg.joint_limits, frames, g)
    with torch.no_grad():
        kp = hand.forward_keypoints(**params)
    uv = project(kp, K.expand(frames, 3, 3)) + noise_px * torch.randn(frames, 21, 2, generator=g)
    kp2d = torch.cat([uv, torch.ones(frames, 21, 1)], dim=-1)
    kp3d = kp - kp[:, :1] + noise_3d * torch.randn(frames, 21, 3, generator=g)
    return params, kp, kp2d, kp3d


def _mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(T,) mean root-relative keypoint distance, metres."""
    return ((pred - pred[:, :1]) - (gt - gt[:, :1])).norm(dim=-1).mean(-1)


def test_recovers_pose_from_2d_and_3d_keypoints(anny_right, one_thread):
    cfg = HandConfig()
    params, kp, kp2d, kp3d = _observe(anny_right, cfg, 16, seed=0)
    # one frame without any detection: filled in from its neighbours by the smoothness term
    kp2d[7, :, 2] = 0.0
    kp3d[7] = math.nan
    res = HandFitter(anny_right, cfg.fit, cfg.joint_limits).fit(kp2d, K, kp3d)
    err = _mpjpe(res.keypoints, kp)
    assert err.mean() < 0.005, err
    assert err[7] < 0.01
    assert (res.keypoints - kp).norm(dim=-1).mean() < 0.02  # absolute, camera frame
    assert res.reprojection_error.shape == (16,) and torch.isnan(res.reprojection_error[7])
    assert res.reprojection_error[torch.arange(16) != 7].mean() < 4.0
    # residuals to the noisy 3D input (5 mm per axis on every keypoint, the root's included)
    assert res.keypoint3d_error[torch.arange(16) != 7].mean() < 0.02 and torch.isnan(res.keypoint3d_error[7])
    assert res.loss.shape == (16,) and torch.isfinite(res.loss).all()


def test_recovers_pose_from_2d_keypoints_with_known_shape(anny_right, one_thread):
    """2D keypoints leave genuine ambiguities (a finger bent towards or away from the camera); over
    random sequences some end in the mirror solution, so we assert the mean over three of them."""
    cfg = HandConfig()
    errors = []
    for seed in (0, 1, 2):
        params, kp, kp2d, _ = _observe(anny_right, cfg, 16, seed=seed)
        res = HandFitter(anny_right, cfg.fit, cfg.joint_limits).fit(kp2d, K, betas=params["betas"])
        assert torch.equal(res.betas, params["betas"])  # known shape stays fixed
        assert torch.isnan(res.keypoint3d_error).all()
        errors.append(_mpjpe(res.keypoints, kp).mean())
    assert sum(errors) / len(errors) < 0.010, errors


def test_noise_free_frames_are_recovered_exactly(anny_left, one_thread):
    """Independent frames (no smoothness): without noise, 2D + 3D pin the hand down to ~1 mm."""
    cfg = HandConfig()
    cfg.fit.weight_smooth = 0.0
    cfg.fit.propagation_rounds = 0
    g = torch.Generator().manual_seed(5)
    hand = anny_left
    p = dict(
        global_orient=torch.randn(4, 3, generator=g),
        pose=hand.sample_pose(cfg.joint_limits, 4, g, scale=0.6),
        betas=torch.zeros(6),
        transl=torch.tensor([0.0, 0.0, 0.5]).expand(4, 3),
    )
    p["pose"][:, 0] = 0.0
    with torch.no_grad():
        kp = hand.forward_keypoints(**p)
    kp2d = torch.cat([project(kp, K.expand(4, 3, 3)), torch.ones(4, 21, 1)], dim=-1)
    res = HandFitter(hand, cfg.fit, cfg.joint_limits).fit(kp2d, K, kp - kp[:, :1])
    assert _mpjpe(res.keypoints, kp).max() < 0.002
    assert res.reprojection_error.max() < 1.0


def test_chunks_warm_start_and_keep_the_shape(anny_right, one_thread):
    cfg = HandConfig()
    cfg.fit.chunk_size = 4
    cfg.fit.iterations, cfg.fit.hypothesis_iterations, cfg.fit.propagation_rounds = 120, 40, 0
    params, kp, kp2d, kp3d = _observe(anny_right, cfg, 8, seed=3, noise_px=1.0, noise_3d=0.002)
    fitter = HandFitter(anny_right, cfg.fit, cfg.joint_limits)
    res = fitter.fit(kp2d, K, kp3d)
    assert res.global_orient.shape == (8, 3) and res.pose.shape == (8, 20, 3) and res.betas.shape == (6,)
    err = _mpjpe(res.keypoints, kp)
    assert err.max() < 0.01, err  # no jump at the chunk boundary (frames 3|4)
    # warm start from a previous result: the refit stays where it was
    init = dict(global_orient=res.global_orient, pose=res.pose, transl=res.transl, betas=res.betas)
    again = fitter.fit(kp2d, K, kp3d, init=init)
    assert _mpjpe(again.keypoints, res.keypoints).mean() < 0.003


def test_bad_inputs_name_argument_and_shapes(anny_right):
    cfg = HandConfig()
    fitter = HandFitter(anny_right, cfg.fit, cfg.joint_limits)
    with pytest.raises(ValueError, match=r"keypoints2d: expected shape \(T, 21, 3\), found \(4, 20, 3\)"):
        fitter.fit(torch.zeros(4, 20, 3), K)
    with pytest.raises(ValueError, match=r"K: expected shape \(3, 3\) or \(4, 3, 3\), found \(2, 3, 3\)"):
        fitter.fit(torch.zeros(4, 21, 3), K.expand(2, 3, 3))
    with pytest.raises(ValueError, match=r"keypoints3d: expected shape \(4, 21, 3\)"):
        fitter.fit(torch.zeros(4, 21, 3), K, torch.zeros(3, 21, 3))
