"""CPU smoke tests of training: every preset for 2 steps on the tiny synthetic fixture, guards, resume."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
import torch

from hold import losses
from hold.config import list_presets, load_config
from hold.data.sequence import SOURCE_HAND, SOURCE_SFM, read_sequence
from hold.stages import run_stages
from hold.system import HoldSystem, NonFiniteLossError

# Fewer rays than the presets draw, so that even paper.yaml's 8×256 MLPs take seconds per step here.
SMALL = [
    "rays.frames_per_step=2",
    "rays.rays_per_frame=16",
    "logging.wandb=disabled",
    "logging.log_every_steps=1",
]
SHORT = [
    "train.stage1_steps=2",
    "train.checkpoint_every=1",
    "train.image_every=2",
    "train.image_stride=8",
    "train.render_chunk=256",
    "train.mesh_every=2",
    "train.mesh_resolution=24",
    "train.final_mesh_resolution=24",
]


@pytest.mark.parametrize(
    "preset", [pytest.param(p, marks=pytest.mark.slow) if p == "paper" else p for p in list_presets()]
)
def test_every_preset_trains_two_steps(preset, tiny_synthetic, tmp_path):
    cfg = load_config(preset, SMALL + SHORT)
    run = run_stages(tiny_synthetic.oracle_dir, tmp_path / "run", cfg, [1])
    assert run.completed_stages() == [1]
    stage = run.stage_dir(1)
    assert (stage / "model.pt").is_file() and (stage / "ckpts" / "last.ckpt").is_file()
    rows = list(csv.DictReader((run.logs / "metrics.csv").read_text().splitlines()))
    values = {(r["step"], r["name"]): float(r["value"]) for r in rows}
    for term in ("rgb", "segmentation", "eikonal", "hand_prior", "sparsity", "total"):
        assert math.isfinite(values[("1", f"loss/{term}")]), term
    assert list((run.logs / "images" / "stage1").glob("panel_*.png"))
    state = torch.load(stage / "model.pt", weights_only=True)
    assert any(k.startswith("object.sdf_net") for k in state)


def test_finished_stage_is_skipped_on_rerun(tiny_synthetic, tmp_path):
    cfg = load_config("demo", SMALL + SHORT)
    run = run_stages(tiny_synthetic.oracle_dir, tmp_path / "run", cfg, [1])
    before = (run.stage_dir(1) / "model.pt").stat().st_mtime_ns
    run_stages(tiny_synthetic.oracle_dir, tmp_path / "run", cfg, [1])
    assert (run.stage_dir(1) / "model.pt").stat().st_mtime_ns == before


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tiny_synthetic, tmp_path, monkeypatch):
    cfg = load_config("demo", SMALL + SHORT + ["train.stage1_steps=4"])
    real = losses.rgb_l1
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] == 3 else value

    monkeypatch.setattr(losses, "rgb_l1", poisoned)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 2.*rgb"):
        run_stages(tiny_synthetic.oracle_dir, tmp_path / "run", cfg, [1])
    ckpt = torch.load(tmp_path / "run" / "stage1" / "ckpts" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2


def test_learning_rates_decay_to_the_configured_factor(tiny_synthetic):
    cfg = load_config("demo", SMALL + ["optim.lr_decay=0.1"])
    system = HoldSystem(cfg, read_sequence(tiny_synthetic.oracle_dir), None, max_steps=10)
    opt = system.configure_optimizers()
    optimizer, schedule = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    start = [g["lr"] for g in optimizer.param_groups]
    for _ in range(10):
        optimizer.step()
        schedule.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1 * lr for lr in start])


def train_steps(system: HoldSystem, optimizer: torch.optim.Optimizer, steps: int) -> None:
    """Plain optimisation steps on the system's losses (no Lightning loop)."""
    for step in range(steps):
        generator = system._generator(step)
        batch = system.rays.sample(generator)
        loss = system.compute_losses(batch, system.model(batch, generator), step, generator).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_object_poses_are_optimised_alone_when_the_preset_says_so(tiny_synthetic):
    """``optim.optimize_object_poses``: the rendering losses move the object's per-frame poses (own
    learning rate) while the hand's stay fixed (``optimize_frame_params`` false in demo)."""
    cfg = load_config("demo", SMALL + ["optim.optimize_object_poses=true", "optim.lr_object_poses=0.01"])
    system = HoldSystem(cfg, read_sequence(tiny_synthetic.oracle_dir), None, max_steps=3)
    optimizer = system.configure_optimizers()["optimizer"]
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["object_poses"]["lr"] == 0.01 and "frame_params" not in groups
    params = system.model.params
    before = (
        params.object.rot.weight.detach().clone(),
        params.hands["right"].global_orient.weight.detach().clone(),
    )
    train_steps(system, optimizer, 2)
    assert not torch.equal(params.object.rot.weight, before[0])
    assert torch.equal(params.hands["right"].global_orient.weight, before[1])


def test_filled_object_rotations_move_and_sfm_registered_ones_stay(tiny_synthetic):
    """``optim.object_rot_frames=filled``: only the frames whose pose did not come from SfM rotate;
    translations move in every frame."""
    cfg = load_config(
        "demo",
        SMALL
        + [
            "optim.optimize_object_poses=true",
            "optim.object_rot_frames=filled",
            "optim.lr_object_poses=0.01",
            "rays.frames_per_step=4",
        ],
    )
    seq = read_sequence(tiny_synthetic.oracle_dir)
    sfm = np.arange(seq.num_frames) % 2 == 0
    seq.object.source = np.where(sfm, SOURCE_SFM, SOURCE_HAND).astype(np.uint8)
    system = HoldSystem(cfg, seq, None, max_steps=3)
    optimizer = system.configure_optimizers()["optimizer"]
    rot, transl = system.model.params.object.rot.weight, system.model.params.object.transl.weight
    before, transl_before = rot.detach().clone(), transl.detach().clone()
    train_steps(system, optimizer, 3)
    moved = (rot.detach() != before).any(dim=1).numpy()
    assert not moved[sfm].any() and moved[~sfm].any()
    assert (transl.detach() != transl_before).any(dim=1).numpy()[sfm].any()


def test_segmentation_form_and_eikonal_floor(tiny_synthetic):
    """``loss.segmentation_form`` picks the term (HOLD's squared error or our NLL) and ``loss.eikonal_min``
    drops the eikonal term from the total while it is at or below the floor (HOLD's released code)."""
    system = HoldSystem(
        load_config("demo", SMALL), read_sequence(tiny_synthetic.oracle_dir), None, max_steps=2
    )
    generator = system._generator(0)
    batch = system.rays.sample(generator)
    out = system.model(batch, generator)

    def terms_at(**loss):
        system.cfg.loss = dataclasses.replace(system.cfg.loss, **loss)
        return system.compute_losses(batch, out, 0, system._generator(1))  # the same regulariser points

    nll, squared = terms_at(segmentation_form="nll"), terms_at(segmentation_form="squared")
    probs, labels = out.render.class_probs, batch.labels
    assert nll.terms["segmentation"].item() == pytest.approx(losses.segmentation_nll(probs, labels).item())
    assert squared.terms["segmentation"].item() == pytest.approx(
        losses.segmentation_squared(probs, labels).item()
    )
    assert squared.terms["segmentation"].item() != pytest.approx(nll.terms["segmentation"].item())

    eikonal = nll.terms["eikonal"].item()
    gated = terms_at(segmentation_form="nll", eikonal_min=2 * eikonal)
    open_ = terms_at(segmentation_form="nll", eikonal_min=0.5 * eikonal)
    assert open_.total.item() == pytest.approx(nll.total.item())
    weight = nll.weights["eikonal"]
    assert gated.total.item() == pytest.approx(nll.total.item() - weight * eikonal, rel=1e-5)


def test_stage_2_without_an_object_surface_is_one_clear_error(tiny_synthetic, tmp_path, monkeypatch, capsys):
    from hold.cli import train_main
    from hold.geometry.mesh import EmptySurfaceError
    from hold.refine import geometry

    argv = [
        str(tiny_synthetic.oracle_dir),
        "--out",
        str(tmp_path / "run"),
        "--config",
        "demo",
        *SMALL,
        *SHORT,
    ]
    assert train_main([*argv, "--stages", "1"]) == 0

    def empty(*args, **kwargs):
        raise EmptySurfaceError("SDF has no surface inside the box (-1.1, 1.1)")

    monkeypatch.setattr(geometry, "marching_cubes", empty)
    capsys.readouterr()
    assert train_main([*argv, "--stages", "2"]) == 2
    err = capsys.readouterr().err
    assert "stage 1 did not reconstruct the object" in err and "Traceback" not in err


def test_an_object_within_one_grid_cell_of_a_surface_is_not_stopped(tiny_synthetic, monkeypatch):
    """The surface check lets an object SDF that is still forming (no zero set, but within one marching-
    cubes cell of one) train on, and still stops one that is clearly empty."""
    from hold.geometry.mesh import EmptySurfaceError

    system = HoldSystem(
        load_config("demo", SMALL), read_sequence(tiny_synthetic.oracle_dir), None, max_steps=2
    )
    node, res = system.model.object, 24
    cell = 2 * (system.cfg.model.object.sphere_radius + system.cfg.model.object.sphere_margin) / (res - 1)
    sdf = node.canonical_sdf
    with torch.no_grad():
        lowest = float(sdf(torch.zeros(1, 3)))  # the initial sphere's centre
    for lift, expected in ((-lowest + 0.3 * cell, True), (-lowest + 5 * cell, False)):
        monkeypatch.setattr(node, "canonical_sdf", lambda x, lift=lift: sdf(x) + lift)
        with pytest.raises(EmptySurfaceError) as err:
            system.model.extract_object_mesh(res)
        assert system._object_nearly_surfaced(1, res, err.value) is expected
