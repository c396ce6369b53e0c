"""The synthetic generator's motion options, config overrides and the hold-synth key=value CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hold.data.sequence import read_ground_truth
from hold.data.synthetic import main, make_config, validate_raw
from hold.data.synthetic.config import NoiseConfig, SynthConfig
from hold.data.synthetic.presets import NOISE_PRESETS, noise_config
from hold.data.synthetic.scene import finger_motion_weights, make_trajectory, spin_progress
from hold.hand.build import build_hand_model

FINGERTIPS, THUMB = [8, 12, 16, 20], [1, 2, 3, 4]
FRAMES = 8


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """A tiny clip with every motion option and realistic noise, made through the CLI's overrides."""
    raw = tmp_path_factory.mktemp("synth_motion") / "raw"
    argv = [str(raw), "--preset", "tiny", "--seed", "2", "--noise", "realistic", f"num_frames={FRAMES}"]
    argv += ["finger_motion=wave", "spin_axis=random", "translation_m=0.03", "fast_segment_fraction=0.3"]
    argv += [
        "camera_motion=orbit",
        "image_size=[48, 64]",
        "texture.cell_size_m=0.01",
        "noise.kp2d_noise_px=4",
    ]
    assert main(argv) == 0
    return raw


def _local_joints(raw) -> np.ndarray:
    """(T, 21, 3) GT joints relative to the wrist, in the hand's root frame."""
    joints = read_ground_truth(raw / "gt", num_frames=FRAMES).joints["right"]
    go = np.load(raw / "synth" / "params.npz")["right.global_orient"]
    R = Rotation.from_rotvec(go).as_matrix()
    return np.einsum("tji,tkj->tki", R, joints - joints[:, :1])


def test_cli_key_value_overrides_reach_the_config(moving):
    assert validate_raw(moving) == FRAMES
    meta = json.loads((moving / "synth.json").read_text())
    cfg = meta["config"]
    assert cfg["image_size"] == [48, 64] and cfg["texture"]["cell_size_m"] == 0.01
    assert cfg["camera_motion"] == "orbit" and cfg["finger_motion"] == "wave"
    assert meta["noise_preset"] == "realistic" and meta["preset"] == "tiny"
    realistic = json.loads(json.dumps(NOISE_PRESETS["realistic"]))  # tuples → lists, as in the JSON
    assert meta["noise"] == {**meta["noise"], **realistic, "kp2d_noise_px": 4.0}  # the preset, overridden


def test_finger_motion_changes_the_articulation_but_not_the_thumb(moving):
    local = _local_joints(moving)
    moved = np.linalg.norm(local - local[:1], axis=-1)  # (T, 21) displacement from frame 0, metres
    assert moved[:, FINGERTIPS].max() > 0.01  # the fingertips lift by centimetres …
    assert moved[1:-1, FINGERTIPS].max(0).min() > 0.003  # … every one of them at some point
    assert moved[:, THUMB].max() < 5e-4  # the thumb holds
    assert moved[-1].max() < 5e-4  # both clip ends are the static grasp
    pose = np.load(moving / "synth" / "params.npz")["right.pose"]
    assert np.array_equal(pose[0], pose[-1]) and not np.allclose(pose[0], pose[FRAMES // 2])


def test_gt_hand_follows_the_per_frame_pose(moving):
    params = np.load(moving / "synth" / "params.npz")
    hand = build_hand_model(side="right")
    as_t = lambda k: torch.as_tensor(params[k])  # noqa: E731
    with torch.no_grad():
        out = hand(as_t("right.global_orient"), as_t("right.pose"), as_t("right.betas"), as_t("right.transl"))
    gt = read_ground_truth(moving / "gt", num_frames=FRAMES)
    assert np.abs(out.keypoints.numpy() - gt.joints["right"]).max() < 1e-4
    assert np.abs(out.vertices.numpy() - gt.verts["right"]).max() < 1e-4


def test_finger_motion_profiles():
    cfg = make_config("tiny", num_frames=101, finger_motion="wave")
    wave = finger_motion_weights(cfg)
    frac = np.linspace(0, 1, 101)
    outside = (frac <= 0.2) | (frac >= 0.8)
    assert wave.shape == (101, 4) and np.all(wave[outside] == 0) and wave.max() > 0.99
    assert np.all(np.diff(wave.argmax(0)) > 0)  # index, middle, ring, little: one after the other
    cfg.finger_motion = "regrasp"
    regrasp = finger_motion_weights(cfg)
    assert np.allclose(regrasp, regrasp[:, :1]) and regrasp[50, 0] == pytest.approx(1.0)
    cfg.finger_motion = "none"
    assert not finger_motion_weights(cfg).any()


def _still(**kw) -> SynthConfig:
    """Only the spin (and the option under test) moves the group."""
    return make_config("tiny", wobble_m=0.0, wobble_deg=0.0, **kw)


def _trajectory(cfg: SynthConfig, seed: int = 0):
    points = np.random.default_rng(99).normal(0, 0.04, (500, 3))
    return make_trajectory(cfg, np.array([0.0, 0.0, 1.0]), points, np.random.default_rng(seed))


def _step_angles(R: np.ndarray) -> np.ndarray:
    return np.rad2deg(
        np.linalg.norm(Rotation.from_matrix(R[1:] @ R[:-1].transpose(0, 2, 1)).as_rotvec(), axis=1)
    )


def _spin_axis(traj) -> np.ndarray:
    """The spin axis in the object frame, from the first step (static camera, no rocking)."""
    rotvec = Rotation.from_matrix(traj.group_R[1] @ traj.group_R[0].T).as_rotvec()
    return traj.group_R[0].T @ (rotvec / np.linalg.norm(rotvec))


@pytest.mark.parametrize("degrees", [90.0, 360.0])
def test_spins_from_a_quarter_to_a_full_turn(degrees):
    traj = _trajectory(_still(rotation_deg=degrees, num_frames=13))
    assert _step_angles(traj.group_R).sum() == pytest.approx(degrees, rel=1e-6)
    assert np.allclose(_step_angles(traj.group_R), degrees / 12)


def test_random_spin_axis_tilts_from_the_palm_axis():
    palm = np.array([0.0, 0.0, 1.0])
    assert np.degrees(np.arccos(np.clip(_spin_axis(_trajectory(_still())) @ palm, -1, 1))) < 1e-3
    tilts = []
    for seed in range(8):
        traj = _trajectory(_still(spin_axis="random", spin_axis_jitter_deg=60.0), seed)
        tilts.append(np.degrees(np.arccos(np.clip(_spin_axis(traj) @ palm, -1, 1))))
    assert max(tilts) <= 60.0 + 1e-6 and min(tilts) >= 0 and np.ptp(tilts) > 10.0


def test_translation_drifts_the_group_by_translation_m():
    base, drift = _trajectory(_still(num_frames=9)), _trajectory(_still(num_frames=9, translation_m=0.05))
    step = drift.group_t[1:] - drift.group_t[:-1]
    assert np.linalg.norm(drift.group_t[-1] - drift.group_t[0]) == pytest.approx(0.05, rel=1e-6)
    assert np.allclose(step, step[0])  # linear
    assert abs(step[0, 2]) < 0.3 * np.linalg.norm(step[0])  # mostly in the image plane
    assert np.allclose(drift.group_R, base.group_R)  # the spin is untouched
    assert drift.distance > base.distance  # the framing leaves room for the drift
    along = np.random.default_rng(99).normal(0, 0.04, (500, 3))[:, 2]  # _trajectory's points on the axis
    centre = drift.group_R[4] @ np.array([0.0, 0.0, 0.5 * (along.min() + along.max())]) + drift.group_t[4]
    assert np.allclose(centre[:2], 0.0, atol=1e-12)  # mid-clip, the swept volume is centred in the view


def test_fast_segment_spins_faster_and_keeps_the_total():
    cfg = _still(num_frames=61, rotation_deg=240.0, fast_segment_fraction=0.3, fast_segment_speedup=3.0)
    steps = _step_angles(_trajectory(cfg).group_R)
    assert steps.sum() == pytest.approx(240.0, rel=1e-6)
    slow, fast = steps.min(), steps.max()
    assert fast / slow == pytest.approx(3.0, rel=1e-6)
    assert 16 <= np.isclose(steps, fast).sum() <= 18  # 30 % of the 60 steps, less the boundary steps
    assert np.array_equal(spin_progress(_still(num_frames=61), np.random.default_rng(0)), np.arange(61) / 60)


def test_demo_defaults_are_the_old_settings():
    cfg = make_config("demo")
    assert cfg.noise == NoiseConfig() == noise_config("mild") and cfg.noise_preset == "mild"
    assert (cfg.spin_axis, cfg.translation_m, cfg.fast_segment_fraction, cfg.finger_motion) == (
        "palm",
        0.0,
        0.0,
        "none",
    )
    assert cfg.camera_motion == "static" and cfg == SynthConfig()


def test_make_config_noise_presets_and_dotted_overrides():
    cfg = make_config("tiny", noise="realistic", **{"noise.kp2d_noise_px": 3, "grasp.steps": 7})
    assert cfg.noise == NoiseConfig(**{**NOISE_PRESETS["realistic"], "kp2d_noise_px": 3.0})
    assert cfg.noise_preset == "realistic" and cfg.grasp.steps == 7
    assert make_config("demo", noise={"kp2d_noise_px": 2.0}).noise == NoiseConfig(kp2d_noise_px=2.0)
    assert make_config("demo", noise=noise_config("realistic")).noise_preset == "realistic"
    with pytest.raises(ValueError, match="mild, realistic"):
        make_config("demo", noise="loud")
    with pytest.raises(ValueError, match="valid: .*cell_size_m"):
        make_config("demo", **{"texture.cell_sise_m": 0.01})
    with pytest.raises(ValueError, match="palm, random"):
        make_config("demo", spin_axis="diagonal")
    with pytest.raises(ValueError, match="expected a number"):
        make_config("demo", rotation_deg="fast")


def test_cli_unknown_key_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path / "raw"), "--preset", "tiny", "rotation_degs=90"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "rotation_degs" in err and "valid:" in err and "rotation_deg" in err
    assert main([str(tmp_path / "raw"), "--preset", "tiny", "noise.blur=1"]) == 2
    assert "kp2d_noise_px" in capsys.readouterr().err
    assert main([str(tmp_path / "raw"), "rotation_deg"]) == 2
    assert "key=value" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()
