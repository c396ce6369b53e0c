"""Stage 2 of a run: load stage 1, refine the poses, write ``RUN/stage2/`` (docs/architecture.md).

```
RUN/stage2/
  refined.npz          the SEQUENCE v1 arrays (sequence.npz keys) with the refined poses, β and scale
  residuals.json       per-frame residuals before/after, their means, and what each phase did
  overlay.gif          stage-1 vs refined silhouettes over the input frames (or .mp4)
  object_refine.ply    the canonical object mesh the refinement used (canonical units)
  progress.pt          checkpoint after phase 1 and after each chunk (a killed run resumes from it)
```
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from hold.config import HoldConfig
from hold.config.refine import RefineConfig
from hold.data.sequence import Sequence, sequence_arrays, with_poses
from hold.fields.sdf import SDFNetwork
from hold.geometry.mesh import EmptySurfaceError
from hold.hand.build import build_hand_model
from hold.model.holdnet import HoldNet
from hold.params import FrameParams
from hold.refine.diagnostics import frame_residuals
from hold.refine.geometry import hand_geometry, object_geometry
from hold.refine.optimize import RefineProgress, refine_poses
from hold.refine.overlay import overlay_frames, silhouette_masks, write_video
from hold.refine.targets import load_targets
from hold.refine.terms import RefineProblem
from hold.run import RunDir, RunDirError
from hold.run_logger import RunLogger
from hold.utils.external import resolve_device
from hold.utils.io import atomic_open, write_json, write_npz
from hold.utils.logging import get_logger

log = get_logger("refine")

REFINED_POSES = "refined.npz"
RESIDUALS = "residuals.json"
PROGRESS = "progress.pt"
OBJECT_MESH = "object_refine.ply"


def load_stage1(run: RunDir, cfg: HoldConfig, seq: Sequence) -> tuple[FrameParams, SDFNetwork]:
    """The per-frame parameters and the object SDF network that stage 1 saved (``stage1/model.pt``)."""
    path = run.stage_dir(1) / "model.pt"
    if not path.is_file():
        raise RunDirError(
            f"{path}: missing; stage 2 refines the poses of a finished stage 1 (run --stages 1 first)"
        )
    try:
        net = HoldNet(seq, cfg.model, cfg.hand, cfg.render, seed=cfg.seed).load_weights(path)
    except ValueError as e:
        raise RunDirError(str(e)) from None
    return net.params, net.object.sdf_net.eval()


def build_problem(cfg: HoldConfig, seq: Sequence, params: FrameParams, sdf: SDFNetwork) -> RefineProblem:
    """Object mesh from the SDF (HOLD §3.3), hand geometry, mask targets → the refinement objective."""
    rc = cfg.refine
    device = torch.device(resolve_device(rc.device))
    bound = cfg.model.object.sphere_radius + cfg.model.object.sphere_margin
    sdf = sdf.to(device)
    obj = object_geometry(lambda x: sdf.sdf(x.to(device))[:, 0], bound, rc, seed=cfg.seed)
    log.info(
        "object mesh: %d faces at resolution %d → %d faces after decimation",
        len(obj.mesh.faces),
        rc.mesh_resolution,
        len(obj.faces),
    )
    hands = {
        side: hand_geometry(build_hand_model(cfg.hand, side), hp.betas.detach(), rc, cfg.hand).to(device)
        for side, hp in params.hands.items()
    }
    n = obj.points.shape[0]
    ids = torch.linspace(0, n - 1, min(rc.penetration_object_points, n)).long()
    return RefineProblem(
        hands=hands,
        obj=obj.to(device),
        targets=load_targets(seq, rc.raster_size).to(device),
        K=torch.as_tensor(seq.K, dtype=torch.float32, device=device),
        cfg=rc,
        initial=copy.deepcopy(params).requires_grad_(False).to(device),
        penetration_ids=ids.to(device),
        fixed_object_rot=fixed_rotations(seq, rc).to(device),
    )


def fixed_rotations(seq: Sequence, rc: RefineConfig) -> torch.Tensor:
    """(T,) bool: the frames whose object rotation phase 2 keeps (``refine.object_rot_frames``)."""
    if rc.object_rot_frames == "all":
        return torch.zeros(seq.num_frames, dtype=torch.bool)
    fixed = torch.as_tensor(seq.object.sfm_registered())
    log.info(
        "object rotations: refining the %d of %d frames not registered by SfM (refine.object_rot_frames=filled)",
        int((~fixed).sum()), seq.num_frames,
    )  # fmt: skip
    return fixed


class RefinementError(RuntimeError):
    """Stage 2 cannot run on what stage 1 produced."""


def run_refinement(run: RunDir, cfg: HoldConfig, seq: Sequence) -> dict:
    """Stage 2: refine the stage-1 poses and write the stage-2 outputs; returns a summary for state.json."""
    threads = torch.get_num_threads()
    if cfg.refine.num_threads > 0:
        torch.set_num_threads(cfg.refine.num_threads)
    try:
        return _run_refinement(run, cfg, seq)
    except EmptySurfaceError as e:
        raise RefinementError(
            f"stage 2: the stage-1 object has no surface to refine against ({e}): stage 1 did not reconstruct "
            "the object. Check that the object masks cover it and that its poses follow it "
            f"({run.root}/logs/images/stage1 shows the renders; SEQ/overlay.mp4 the poses)"
        ) from None
    finally:
        torch.set_num_threads(threads)


def _run_refinement(run: RunDir, cfg: HoldConfig, seq: Sequence) -> dict:
    out = run.stage_dir(2)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    params, sdf = load_stage1(run, cfg, seq)
    initial = copy.deepcopy(params)
    problem = build_problem(cfg, seq, params, sdf)
    params.to(problem.K.device)
    initial.to(problem.K.device)
    progress = None
    ckpt = out / PROGRESS
    if ckpt.is_file():
        saved = torch.load(ckpt, map_location=problem.K.device, weights_only=False)
        params.load_state_dict(saved["params"])
        progress = RefineProgress(**saved["progress"])
        log.info(
            "stage 2: resuming from %s (phase 1 done: %s, next chunk %d)",
            ckpt,
            progress.phase1_done,
            progress.next_chunk,
        )

    def save(p: FrameParams, state: RefineProgress) -> None:
        with atomic_open(ckpt, "wb") as f:
            torch.save({"params": p.state_dict(), "progress": dataclasses.asdict(state)}, f)

    logger = RunLogger(run.logs, cfg, "stage2")
    try:
        progress = refine_poses(params, problem, logger, progress, on_progress=save)
    finally:
        logger.finish()
    refined = params.to_sequence(seq)
    write_npz(out / REFINED_POSES, sequence_arrays(refined))
    with atomic_open(out / OBJECT_MESH, "wb") as f:
        f.write(problem.obj.mesh.export(file_type="ply"))
    before, after = frame_residuals(initial, problem), frame_residuals(params, problem)
    summary = {"before": before.summary(), "after": after.summary()}
    write_json(
        out / RESIDUALS,
        {
            "summary": summary,
            "object_scale": {
                "before": float(initial.object.scale.detach()),
                "after": float(params.object.scale.detach()),
            },
            "per_frame": {"before": before.per_frame(), "after": after.per_frame()},
            "phases": progress.logs,
        },
    )
    if cfg.refine.overlay != "none":
        frames = overlay_frames(
            seq,
            silhouette_masks(initial, problem),
            silhouette_masks(params, problem),
            cfg.refine.overlay_size,
        )
        write_video(out / f"overlay.{cfg.refine.overlay}", frames, cfg.refine.overlay_fps)
    seconds = time.perf_counter() - t0
    log.info(
        "stage 2 finished in %.0f s: tip gap %.2f → %.2f mm, penetration %.2f → %.2f mm, IoU hand %.3f → %.3f, "
        "object %.3f → %.3f",
        seconds,
        summary["before"]["tip_gap_mm"],
        summary["after"]["tip_gap_mm"],
        summary["before"]["penetration_mm"],
        summary["after"]["penetration_mm"],
        summary["before"]["iou_hand"],
        summary["after"]["iou_hand"],
        summary["before"]["iou_object"],
        summary["after"]["iou_object"],
    )
    return {
        "seconds": round(seconds, 1),
        **{k: {n: round(v, 4) for n, v in s.items()} for k, s in summary.items()},
    }


def with_refined_poses(seq: Sequence, path: Path) -> Sequence:
    """A copy of ``seq`` with the hand and object parameters of ``stage2/refined.npz`` (stage 3's input).

    Raises:
        SequenceError: a key is missing or has the wrong shape (naming the file and key).
    """
    with np.load(path, allow_pickle=False) as data:
        return with_poses(seq, {k: data[k] for k in data.files}, str(path))
