"""The refinement on the tiny synthetic sequence with its exact object mesh: it recovers perturbed poses,
and an interrupted refinement resumes to the same result."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from hold.config import load_config
from hold.data.sequence import SOURCE_HAND, SOURCE_SFM, read_ground_truth, read_sequence
from hold.geometry.mesh import signed_distance
from hold.geometry.rotations import axis_angle_to_matrix
from hold.hand.build import build_hand_model
from hold.params import FrameParams
from hold.refine.diagnostics import frame_residuals
from hold.refine.geometry import hand_geometry, object_geometry
from hold.refine.optimize import RefineProgress, chunks, phase1_frames, refine_poses
from hold.refine.stage import fixed_rotations
from hold.refine.targets import load_targets
from hold.refine.terms import RefineProblem

SMALL = [
    "refine.mesh_resolution=40",
    "refine.mesh_faces=400",
    "refine.hand_raster_faces=400",
    "refine.sdf_grid_resolution=24",
    "refine.hand_sdf_grid_resolution=32",
    "refine.object_points=800",
    "refine.penetration_object_points=200",
    "refine.raster_size=64",
    "refine.phase1_frames=3",
    "refine.chunk_frames=6",
]


@pytest.fixture(autouse=True)
def one_thread():
    """As the stage does (refine.num_threads): small ops, no gain from threads, large loss under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_problem(tiny_synthetic):
    """The oracle sequence, its exact poses and a refinement problem built on the GT object mesh."""
    seq = read_sequence(tiny_synthetic.oracle_dir)
    cfg = load_config("demo", SMALL)
    gt = read_ground_truth(tiny_synthetic.oracle_dir / "gt")
    mesh = trimesh.load(gt.object_mesh_path, force="mesh")
    s = seq.object.scale  # oracle canonical frame = GT mesh frame / scale

    def sdf(x: torch.Tensor) -> torch.Tensor:
        d = signed_distance(x.numpy() * s, np.asarray(mesh.vertices), np.asarray(mesh.faces))
        return torch.as_tensor(d / s, dtype=torch.float32)

    obj = object_geometry(sdf, 1.1, cfg.refine)
    params = FrameParams(seq)
    hands = {
        "right": hand_geometry(
            build_hand_model(cfg.hand, "right"), params.hands["right"].betas, cfg.refine, cfg.hand
        )
    }
    problem = RefineProblem(
        hands=hands,
        obj=obj,
        targets=load_targets(seq, cfg.refine.raster_size),
        K=torch.as_tensor(seq.K, dtype=torch.float32),
        cfg=cfg.refine,
        initial=copy.deepcopy(params).requires_grad_(False),
        penetration_ids=torch.arange(0, 800, 4),
    )
    return seq, params, problem


def test_schedules():
    assert phase1_frames(32, 10) == [0, 3, 6, 10, 13, 17, 20, 24, 27, 31]
    assert phase1_frames(4, 10) == [0, 1, 2, 3]
    assert chunks(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize("preset", ["demo", "paper"])
def test_refinement_recovers_a_shifted_object(tiny_problem, preset):
    """Ours (demo) and HOLD's stage 2 (paper: masks and per-vertex contact only, the hand's rotation
    fixed) both pull back an object shifted by 1 cm."""
    seq, exact, problem = tiny_problem
    problem = copy.copy(problem)
    problem.cfg = copy.deepcopy(problem.cfg) if preset == "demo" else load_config(preset, SMALL).refine
    problem.cfg.phase1_iterations = 0
    problem.cfg.phase2_iterations = 40
    problem.cfg.lr_transl = 2e-3
    # The tiny fixture moves ~6 cm between frames: far from a real video's smooth motion.
    for name in ("smooth_transl", "smooth_transl_accel", "smooth_rot", "smooth_rot_accel"):
        setattr(problem.cfg.loss, name, 0.0)
    params = copy.deepcopy(exact)
    # An SfM-like error: the object's canonical origin is off by 1 cm, in every frame alike.
    offset = torch.tensor([0.008, -0.006, 0.0])
    with torch.no_grad():
        R = axis_angle_to_matrix(params.object.rot.weight)
        params.object.transl.weight += R @ offset
    problem.initial = copy.deepcopy(params).requires_grad_(False)
    before = frame_residuals(params, problem)
    refine_poses(params, problem)
    after = frame_residuals(params, problem)
    error = (params.object.transl.weight - exact.object.transl.weight).detach().norm(dim=1)
    assert error.mean() < 0.5 * offset.norm()
    assert after.iou_object.mean() > before.iou_object.mean() + 0.05
    assert np.isfinite(after.tip_gap_mm).all() and after.penetration_mm.shape == (seq.num_frames,)


def test_interrupted_refinement_resumes_to_the_same_result(tiny_problem):
    _, exact, problem = tiny_problem
    problem = copy.copy(problem)
    problem.cfg = copy.deepcopy(problem.cfg)
    problem.cfg.phase1_iterations = 3
    problem.cfg.phase2_iterations = 3
    problem.cfg.chunk_frames = 3
    full = copy.deepcopy(exact)
    done = refine_poses(full, problem)
    assert done.phase1_done and done.next_chunk == 2 and len(done.logs) == 3

    saved = {}

    class Killed(Exception):
        pass

    def kill_after_first_chunk(p: FrameParams, progress: RefineProgress) -> None:
        saved["params"] = copy.deepcopy(p.state_dict())
        saved["progress"] = copy.deepcopy(progress)
        if progress.next_chunk == 1:
            raise Killed

    with pytest.raises(Killed):
        refine_poses(copy.deepcopy(exact), problem, on_progress=kill_after_first_chunk)
    resumed = copy.deepcopy(exact)
    resumed.load_state_dict(saved["params"])
    progress = refine_poses(resumed, problem, progress=saved["progress"])
    assert progress.next_chunk == 2 and [p["name"] for p in progress.logs] == [p["name"] for p in done.logs]
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_hand_proxy_follows_the_posed_hand(tiny_problem):
    seq, params, problem = tiny_problem
    geo = problem.hands["right"]
    model = geo.model
    betas = params.hands["right"].betas.detach()
    full = hand_geometry(
        model, betas, dataclasses.replace(problem.cfg, hand_raster_faces=0), load_config("demo").hand
    )
    with torch.no_grad():
        p = params.hands["right"](torch.arange(2))
        posed = model(p.global_orient, p.pose, p.betas, p.transl)
        sealed = model.seal(posed.vertices)
        assert torch.equal(full.proxy_vertices(sealed), sealed) and torch.equal(
            full.proxy_faces, model.sealed_faces
        )
        proxy = geo.proxy_vertices(sealed)  # decimated: every proxy vertex lies on the posed surface
        assert len(geo.proxy_faces) <= 400
        assert torch.cdist(proxy, sealed).min(-1).values.max() < 0.01
    assert [len(r) for r in geo.tips] == [len(r) for r in model.contact_vertex_ids().tips]


def test_sfm_registered_object_rotations_stay_when_only_filled_ones_are_refined(tiny_problem):
    """``refine.object_rot_frames=filled``: phase 2 leaves the fixed frames' object rotations as they were
    and still rotates the others."""
    _, exact, problem = tiny_problem
    problem = copy.copy(problem)
    problem.cfg = copy.deepcopy(problem.cfg)
    problem.cfg.phase1_iterations = 0
    problem.cfg.phase2_iterations = 5
    T = exact.object.rot.num_embeddings
    problem.fixed_object_rot = torch.arange(T) % 2 == 0
    params = copy.deepcopy(exact)
    with torch.no_grad():  # every rotation off by ~6°, so that the masks pull on all of them
        params.object.rot.weight += torch.tensor([0.1, 0.0, 0.0])
    before = params.object.rot.weight.detach().clone()
    refine_poses(params, problem)
    moved = (params.object.rot.weight.detach() != before).any(dim=1)
    assert not moved[problem.fixed_object_rot].any()
    assert moved[~problem.fixed_object_rot].all()


def test_the_frames_whose_rotation_stays_are_the_sfm_registered_ones(tiny_synthetic):
    seq = read_sequence(tiny_synthetic.oracle_dir)
    seq.object.source = np.where(np.arange(seq.num_frames) < 3, SOURCE_SFM, SOURCE_HAND).astype(np.uint8)
    filled = load_config("demo", ["refine.object_rot_frames=filled"]).refine
    assert fixed_rotations(seq, filled).tolist() == (seq.object.source == SOURCE_SFM).tolist()
    assert not fixed_rotations(seq, load_config("demo", ["refine.object_rot_frames=all"]).refine).any()
