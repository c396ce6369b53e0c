"""hold-export and hold-eval on a stage-1 run made from the tiny synthetic fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import trimesh

from hold.cli import EXIT_USAGE, eval_main, export_main
from hold.config.export import ExportConfig
from hold.data.sequence import read_ground_truth, read_sequence, sequence_arrays
from hold.export.export import run_config
from hold.final.meshes import object_mesh, posed_hand
from hold.final.model import load_final_model
from hold.refine.stage import REFINED_POSES
from hold.run import RunDir
from hold.utils.io import write_npz
from tests.export.conftest import TINY_EVAL, TINY_EXPORT

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

HEADLINE = ("mpjpe_mm", "cd_cm2", "f5", "f10", "cd_h_cm2", "object_scale_error_pct")


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "export"
    assert export_main([str(tiny_run), "--out", str(out), *TINY_EXPORT]) == 0
    return out


def test_export_writes_the_export_dir(exported, tiny_synthetic, capsys):
    T = 6  # frames of the tiny preset
    for name in ("object_canonical.ply", "hand_canonical.ply", "joints.npz", "scene.glb", "metrics.json"):
        assert (exported / name).is_file(), name
    assert len(list((exported / "frames").glob("*_object.ply"))) == T
    assert len(list((exported / "frames").glob("*_hand.ply"))) == T
    hand = trimesh.load(exported / "frames" / "00003_hand.ply", process=False)
    assert len(hand.faces) == len(trimesh.load(exported / "hand_canonical.ply", process=False).faces)

    with np.load(exported / "joints.npz") as data:
        joints = data["right.joints"]
        assert joints.shape == (T, 21, 3) and data["valid"].shape == (T,)
    # The demo preset keeps the oracle poses fixed, so the exported joints are the GT joints.
    gt = read_ground_truth(Path(tiny_synthetic.oracle_dir) / "gt")
    np.testing.assert_allclose(joints, gt.joints["right"], atol=1e-4)

    scene = trimesh.load(exported / "scene.glb")
    assert set(scene.geometry) == {"object", "hand_right"}
    renders = exported / "renders"
    assert {p.name for p in renders.glob("*_panel.png")} == {"00000_panel.png"}
    assert sum(1 for _ in imageio.get_reader(renders / "preview.mp4")) == T

    manifest = json.loads((exported / "export.json").read_text())
    listed = set(manifest["files"])
    assert {"object_canonical.ply", "renders/preview.mp4", "metrics.json"} <= listed
    assert all((exported / f).is_file() for f in listed)


def test_export_meshes_are_in_metres_and_posed(exported, tiny_run):
    final = load_final_model(tiny_run)
    R, t, s = final.object_poses()
    saved = trimesh.load(Path(tiny_run) / "stage1" / "object_canonical.ply", process=False)
    canonical = trimesh.load(exported / "object_canonical.ply", process=False)
    np.testing.assert_allclose(canonical.vertices, saved.vertices * s, atol=1e-6)
    frame2 = trimesh.load(exported / "frames" / "00002_object.ply", process=False)
    np.testing.assert_allclose(frame2.vertices, canonical.vertices @ R[2].T + t[2], atol=1e-6)


def test_eval_matches_export_metrics(exported, tiny_run, capsys):
    assert (
        eval_main([str(tiny_run), *TINY_EVAL, "export.object_level=beta", "export.object_level_beta=0"]) == 0
    )  # as the export
    assert "MPJPE" in capsys.readouterr().out
    run_metrics = json.loads((Path(tiny_run) / "metrics.json").read_text())
    export_metrics = json.loads((exported / "metrics.json").read_text())
    for key in HEADLINE:
        assert run_metrics[key] is not None, key
        assert run_metrics[key] == pytest.approx(export_metrics[key], rel=1e-9), key
    assert run_metrics["mpjpe_mm"] < 0.1  # joints equal the oracle's (see above)
    assert run_metrics["reconstruction"]["stage"] == 1
    assert run_metrics["reconstruction"]["poses"] == "sequence"
    protocol = run_metrics["protocol"]
    assert protocol["num_surface_samples"] == 2000 and protocol["frames_gt_valid"] == list(range(6))
    assert run_metrics["frames"]["gt_valid"] == 6 and "rotation_hand_deg" in run_metrics["object_pose"]
    assert "sfm_registered_fraction" in run_metrics and "object_track" in run_metrics


def test_posed_hand_follows_the_hand_model(tiny_run):
    """Posing the hand model's own rest mesh by the export's LBS gives (nearly) the model's posed mesh."""
    final = load_final_model(tiny_run)
    hand_model = final.model.hands["right"].hand_model
    betas = final.model.params.hands["right"].betas.detach()
    rest = trimesh.Trimesh(
        hand_model.canonical_vertices(betas).numpy(), hand_model.faces.numpy(), process=False
    )
    with torch.no_grad():
        expected = final.model.posed_hand("right", torch.tensor([4])).vertices[0].numpy()
    error = np.linalg.norm(posed_hand(final, "right", rest, 4) - expected, axis=1)
    # Weights blended from the K nearest vertices differ a little from each vertex's own weights.
    assert np.median(error) < 2e-4 and error.max() < 5e-3


def test_eval_without_ground_truth_is_a_clear_error(tiny_run, tiny_synthetic, tmp_path, capsys):
    seq = tmp_path / "seq"
    shutil.copytree(tiny_synthetic.oracle_dir, seq, ignore=shutil.ignore_patterns("gt"))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("metrics.json", "export"))
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "sequence": str(seq)}))
    assert eval_main([str(run)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "gt: missing" in err and "Traceback" not in err
    assert not (run / "metrics.json").exists()


def test_overrides_are_limited_to_export_and_eval(tiny_run, capsys):
    assert export_main([str(tiny_run), "model.hand.sdf.hidden_dim=8"]) == EXIT_USAGE
    assert "only export.*, eval.*" in capsys.readouterr().err
    assert export_main([str(tiny_run), "render_stride=0"]) == EXIT_USAGE
    assert "render_stride" in capsys.readouterr().err
    cfg = run_config(tiny_run, ["num_render_frames=3", "eval.num_surface_samples=500"])
    assert cfg.export.num_render_frames == 3 and cfg.eval.num_surface_samples == 500


def test_export_needs_a_finished_stage(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("stage1", "export"))
    (run / "state.json").write_text(json.dumps({"completed_stages": {}}))
    assert export_main([str(run)]) == EXIT_USAGE
    assert "no finished training stage" in capsys.readouterr().err


def test_a_finished_stage_3_is_final_with_the_refined_poses(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export"))
    shutil.copytree(run / "stage1", run / "stage3")  # stands in for a retrained model of the same config
    seq = read_sequence(json.loads((run / "run.json").read_text())["sequence"])
    refined = sequence_arrays(seq)
    refined["right.transl"] = refined["right.transl"] + np.float32(0.01)
    write_npz(run / "stage2" / REFINED_POSES, refined)
    for stage in (2, 3):
        RunDir(run).mark_stage_done(stage)
    final = load_final_model(run)
    assert (final.stage, final.poses) == (3, "refined")
    np.testing.assert_allclose(final.seq.hands["right"].transl, seq.hands["right"].transl + 0.01, atol=1e-6)
    assert final.provenance()["weights"].endswith("stage3/model.pt")


def test_a_failed_re_export_leaves_the_old_export_and_the_run_intact(exported, tiny_run, tmp_path, capsys):
    out = tmp_path / "export"
    shutil.copytree(exported, out)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    for bad in (["render_frames=[0,99]"], ["render_frames=[-1]"]):
        assert export_main([str(tiny_run), "--out", str(out), *TINY_EXPORT, *bad]) != 0
        err = capsys.readouterr().err
        assert "render_frames" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    run_files = sorted(p for p in Path(tiny_run).rglob("*") if p.is_file())
    for dest in (tiny_run, Path(tiny_run).parent, Path(tiny_run) / "stage1"):
        assert export_main([str(tiny_run), "--out", str(dest), *TINY_EXPORT]) != 0
        assert "would replace the run's or the sequence's files" in capsys.readouterr().err
    assert sorted(p for p in Path(tiny_run).rglob("*") if p.is_file()) == run_files


def test_object_level_meshes_the_set_the_silhouette_sees(tiny_run):
    """``export.object_level_beta``: the object mesh k·β outside the SDF's zero set, recorded in the source."""
    final = load_final_model(tiny_run)
    beta = float(final.model.object.density.get_beta().detach())
    zero, src0 = object_mesh(final, ExportConfig())
    grown, src2 = object_mesh(final, ExportConfig(object_level_beta=2.0))
    assert src0["level"] == {"beta": 0.0, "metres": 0.0}
    assert src2["level"]["metres"] == pytest.approx(2.0 * beta)
    radius = lambda m: np.linalg.norm(m.vertices - m.vertices.mean(0), axis=1).mean()  # noqa: E731
    # the stage-1 field of the tiny run is still near its initial sphere: every point moves out by ~2β
    assert radius(grown) - radius(zero) == pytest.approx(2.0 * beta, rel=0.35)


def test_object_level_from_the_masks_is_recorded(tiny_run):
    """``export.object_level=masks``: one of the candidate levels, its fit in the mesh's source note."""
    final = load_final_model(tiny_run)
    beta = float(final.model.object.density.get_beta().detach())
    cfg = ExportConfig(object_level="masks", object_level_candidates_beta=(0.0, 2.0, 4.0))
    mesh, source = object_mesh(final, cfg)
    fit = source["level_fit"]
    assert fit["chosen_beta"] in (0.0, 2.0, 4.0) and fit["frames"] == final.num_frames
    assert set(fit["iou_by_level_beta"]) == {"0", "2", "4"}
    assert all(0 < v <= 1 for v in fit["iou_by_level_beta"].values())
    assert fit["iou_by_level_beta"][f"{fit['chosen_beta']:g}"] == max(fit["iou_by_level_beta"].values())
    assert source["level"]["metres"] == pytest.approx(fit["chosen_beta"] * beta)
    assert len(mesh.faces) > 0


def test_object_level_falls_back_to_beta_when_the_masks_show_no_object(tiny_run, caplog):
    final = load_final_model(tiny_run)
    final.rays.masks[:] = 0  # background everywhere
    _, source = object_mesh(final, ExportConfig(object_level="masks", object_level_beta=0.5))
    assert source["level"]["beta"] == 0.5 and "object_level_beta used" in source["level_fit"]["fallback"]
    assert "cannot choose a level" in caplog.text
