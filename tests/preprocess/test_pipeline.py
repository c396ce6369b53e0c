"""The whole chain on a small synthetic sequence (12 frames, 160 px), the skip/redo logic and the CLI."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from hold.data.sequence import SOURCE_HAND, read_ground_truth, read_sequence, validate_sequence
from hold.eval.metrics import mpjpe_mm
from hold.hand.build import build_hand_model
from preprocess import STEPS
from preprocess.cli import main
from preprocess.config import load_preprocess_config
from preprocess.errors import PreprocessError
from preprocess.pipeline import run_pipeline
from tests.preprocess.conftest import relative_rotation_errors_deg

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

# Few optimisation steps: the chain, not the accuracy of the fits, is under test here.
FAST = ["hand.fit.iterations=100", "align.iterations=100", "build.overlay_fps=5"]


@pytest.fixture(scope="session")
def synthetic_raw(tmp_path_factory) -> Path:
    """A RAW dir from the synthetic generator, sized so that SfM registers every frame in seconds."""
    from hold.data.synthetic.generate import generate
    from hold.data.synthetic.presets import make_config

    cfg = make_config(
        "tiny", num_frames=12, image_size=(160, 160), rotation_deg=90.0, object_voxel_m=0.003,
        fill_fraction=1.4, supersample=2, texture={"cell_size_m": 0.02, "fine_cell_size_m": 0.007},
    )  # fmt: skip
    raw = tmp_path_factory.mktemp("synthetic") / "raw"
    generate(raw, cfg=cfg, seed=1)
    return raw


@pytest.fixture(scope="session")
def built(synthetic_raw, tmp_path_factory) -> tuple[Path, Path, object]:
    seq = tmp_path_factory.mktemp("built") / "seq"
    result = run_pipeline(synthetic_raw, seq, cfg=load_preprocess_config(FAST))
    return synthetic_raw, seq, result


def test_whole_chain_builds_a_valid_accurate_sequence(built):
    raw, seq_dir, result = built
    assert list(result.ran) == list(STEPS)
    validate_sequence(seq_dir)
    seq = read_sequence(seq_dir)
    gt = read_ground_truth(seq_dir / "gt", num_frames=seq.num_frames)
    assert (seq_dir / "overlay.mp4").stat().st_size > 0
    assert result.summaries["sfm"]["registered_fraction"] >= 0.9
    err = relative_rotation_errors_deg(Rotation.from_rotvec(seq.object.rot).as_matrix(), gt.object_R)
    assert np.median(err) < 5.0, err
    h = seq.hands["right"]
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        joints = build_hand_model(None, "right")(
            t(h.global_orient), t(h.pose), t(h.betas), t(h.transl)
        ).keypoints
    assert mpjpe_mm(joints.numpy(), gt.joints["right"]) < 15.0
    # the alignment puts the hand where it is (metric depth from the hand model)
    wrist = np.linalg.norm(joints.numpy()[:, 0] - gt.joints["right"][:, 0], axis=1)
    assert np.median(wrist) < 0.02
    assert seq.source["steps"]["sfm"]["registered"] == seq.num_frames


def test_sfm_that_registers_nothing_gives_hand_anchored_poses_and_says_so(built, tmp_path: Path, caplog):
    """SfM forced to register no frame (no pair reaches the match threshold): every frame still gets an
    object pose, from the hand, within the suite's bounds, and the step warns with the numbers."""
    raw, seq_dir, _ = built
    seq = tmp_path / "seq"
    shutil.copytree(seq_dir, seq)
    cfg = load_preprocess_config(FAST + ["sfm.min_num_matches=100000"])
    with caplog.at_level(logging.WARNING, logger="hold.preprocess.sfm"):
        result = run_pipeline(raw, seq, steps=["sfm", "align", "build"], redo=True, cfg=cfg)
    summary = result.summaries["sfm"]
    assert summary["registered"] == 0 and summary["mode"] == "hand"
    assert not np.load(seq / "work" / "sfm" / "sfm.npz")["reliable"].any()
    warned = [r.getMessage() for r in caplog.records if "anchored to the hand" in r.getMessage()]
    assert len(warned) == 1 and warned[0] == summary["warnings"][0]
    assert "SfM registered 0/12 frames reliably" in warned[0]
    out = read_sequence(seq)
    hands_valid = np.load(seq / "work" / "hands" / "hands.npz")["right.valid"]
    assert (out.object.source[hands_valid] == SOURCE_HAND).all()
    gt = read_ground_truth(seq / "gt", num_frames=out.num_frames)
    err = relative_rotation_errors_deg(Rotation.from_rotvec(out.object.rot).as_matrix(), gt.object_R)
    assert np.median(err) <= 5.0 and np.percentile(err, 95) <= 15.0, err
    # the canonical sphere holds the object and is not much larger: its radius in metres vs the GT mesh's
    verts = trimesh.load(seq / "gt" / "object.ply", process=False, force="mesh").vertices
    gt_radius = np.linalg.norm(verts - 0.5 * (verts.min(0) + verts.max(0)), axis=1).max()
    assert 0.9 <= out.object.scale / gt_radius <= 2.0, out.object.scale / gt_radius


def test_finished_steps_are_skipped_and_redo_recomputes(built, tmp_path: Path):
    raw, seq_dir, _ = built
    seq = tmp_path / "seq"
    shutil.copytree(seq_dir, seq)
    cfg = load_preprocess_config(FAST)
    again = run_pipeline(raw, seq, cfg=cfg)
    assert again.ran == {} and again.skipped == list(STEPS)
    before = (seq / "sequence.npz").stat().st_mtime_ns
    redo = run_pipeline(raw, seq, steps=["build"], redo=True, cfg=cfg)
    assert list(redo.ran) == ["build"] and (seq / "sequence.npz").stat().st_mtime_ns > before
    validate_sequence(seq)


def test_stale_outputs_with_other_frame_counts_are_caught(built, tmp_path: Path):
    raw, seq_dir, _ = built
    seq = tmp_path / "seq"
    shutil.copytree(seq_dir, seq)
    run_pipeline(raw, seq, steps=["frames"], redo=True, cfg=load_preprocess_config(["frames.max_frames=6"]))
    with pytest.raises(
        PreprocessError, match=r"frame counts differ between masks, hands and frames \(frames 6, masks 12"
    ):
        run_pipeline(raw, seq, steps=["build"], redo=True, cfg=load_preprocess_config(FAST))


def test_missing_input_step_says_what_to_run(synthetic_raw, tmp_path: Path):
    with pytest.raises(PreprocessError, match=r"needs the output of step 'frames'.*--steps frames,masks"):
        run_pipeline(synthetic_raw, tmp_path / "seq", steps=["masks"])


def test_cli_errors_are_one_line(synthetic_raw, tmp_path: Path, capsys):
    assert main([str(synthetic_raw), str(tmp_path / "s"), "sfm.bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "sfm.bogus" in err and "Traceback" not in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "video.mp4").write_bytes(b"\x00" * 64)
    assert main([str(bad), str(tmp_path / "s2"), "--steps", "frames"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hold-preprocess: error: frames: ") and "unreadable video" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_cli_runs_a_step_and_saves_the_config(synthetic_raw, tmp_path: Path):
    seq = tmp_path / "seq"
    assert main([str(synthetic_raw), str(seq), "--steps", "frames,masks", "frames.stride=2"]) == 0
    info = json.loads((seq / "work" / "frames" / "frames.json").read_text())
    assert info["num_frames"] == 6 and "stride: 2" in (seq / "work" / "config.yaml").read_text()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_sequence_dir_on_top_of_the_raw_dir_is_refused(synthetic_raw, tmp_path: Path, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(synthetic_raw, raw)
    before = _snapshot(raw)
    for seq in (raw, raw / "masks" / "seq", raw / "gt"):
        assert main([str(raw), str(seq)]) == 2
        err = capsys.readouterr().err
        assert "overlaps the RAW dir" in err and "Traceback" not in err
    assert _snapshot(raw) == before


def test_a_failed_redo_keeps_the_finished_output(built, tmp_path: Path, capsys):
    raw0, seq_dir, _ = built
    raw, seq = tmp_path / "raw", tmp_path / "seq"
    shutil.copytree(raw0, raw)
    shutil.copytree(seq_dir, seq)
    (raw / "hands.npz").write_bytes(b"not an npz archive")
    before = _snapshot(seq / "work" / "hands")
    assert main([str(raw), str(seq), "--steps", "hands", "--redo", *FAST]) == 2
    assert "hands" in capsys.readouterr().err
    assert _snapshot(seq / "work" / "hands") == before


def test_preprocess_numbers_out_of_range_are_refused(synthetic_raw, tmp_path: Path, capsys):
    for bad in ("frames.max_size=-5", "frames.stride=0", "sfm.min_registered_fraction=2"):
        assert main([str(synthetic_raw), str(tmp_path / "s"), bad]) == 2
        err = capsys.readouterr().err
        assert bad.split("=")[0].split(".")[-1] in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()
