"""HOLD's two-phase pose refinement (HOLD §3.4; the schedule of its ``optimize_ckpt.py``).

Phase 1 optimises one batch of frames spread evenly over the sequence; only the quantities shared by
all frames — hand shape β and object scale s — are kept from it. Phase 2 walks over the sequence in
consecutive chunks with β and s fixed and refines each chunk's per-frame poses, the previous chunk's
last frames entering the smoothness terms as fixed context. Every optimisation runs Adam with
reduce-on-plateau learning rates and stops early once they have decayed (HOLD: patience 30, stop below
1e-5 from 1e-2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from hold.config.refine import RefineConfig
from hold.params import FrameParams
from hold.refine.scene import PoseBatch, pose_scene
from hold.refine.terms import Context, RefineProblem, weighted_total
from hold.run_logger import RunLogger
from hold.utils.logging import get_logger

log = get_logger("refine")


class NonFiniteRefinementError(RuntimeError):
    """The refinement objective became NaN/Inf."""


@dataclass
class PhaseLog:
    """What one optimisation (phase 1, or one phase-2 chunk) did."""

    name: str
    frames: list[int]
    iterations: int
    stopped_early: bool
    seconds: float
    initial: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def phase1_frames(num_frames: int, count: int) -> list[int]:
    """``count`` frames spread evenly over the sequence, first and last included (HOLD: linspace)."""
    return sorted({int(i) for i in np.floor(np.linspace(0, num_frames - 1, min(count, num_frames)))})


def chunks(num_frames: int, size: int) -> list[list[int]]:
    """Consecutive chunks of ``size`` frames covering the sequence."""
    return [list(range(s, min(s + size, num_frames))) for s in range(0, num_frames, size)]


def optimize_batch(
    problem: RefineProblem,
    batch: PoseBatch,
    iterations: int,
    name: str,
    context: Context | None = None,
    smooth: bool = True,
    logger: RunLogger | None = None,
    step_offset: int = 0,
) -> PhaseLog:
    """Optimise the batch's leaves in place until ``iterations`` or early stopping.

    Raises:
        NonFiniteRefinementError: a term became NaN/Inf (naming it).
    """
    cfg = problem.cfg
    with torch.no_grad():
        anchors = problem.anchors(pose_scene(batch, problem.hands, problem.obj))
    groups = batch.param_groups(cfg)
    optimizer = torch.optim.Adam(groups)
    start_lr = [g["lr"] for g in optimizer.param_groups]
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=cfg.plateau_factor, patience=cfg.plateau_patience, threshold=cfg.plateau_threshold
    )
    t0 = time.perf_counter()
    initial: dict[str, float] = {}
    values: dict[str, float] = {}
    it, stopped = 0, False
    for it in range(1, iterations + 1):
        optimizer.zero_grad(set_to_none=True)
        terms = problem.terms(batch, context, anchors, smooth)
        total = weighted_total(terms, cfg.loss)
        values = {k: float(v.detach()) for k, v in terms.items()} | {"total": float(total.detach())}
        if not np.isfinite(values["total"]):
            bad = [k for k, v in values.items() if not np.isfinite(v)]
            raise NonFiniteRefinementError(
                f"{name}: non-finite refinement terms at step {it}: {', '.join(bad)}"
            )
        initial = initial or values
        if logger is not None and (it == 1 or it % cfg.log_every == 0):
            logger.log_scalars(step_offset + it, {f"refine/{k}": v for k, v in values.items()})
        if not groups:  # nothing to optimise (every value frozen)
            break
        total.backward()
        optimizer.step()
        scheduler.step(values["total"])
        if all(g["lr"] < lr * cfg.min_lr_ratio for g, lr in zip(optimizer.param_groups, start_lr)):
            stopped = True
            break
    with torch.no_grad():  # the values after the last step
        final = problem.terms(batch, context, anchors, smooth)
        values = {k: float(v) for k, v in final.items()} | {"total": float(weighted_total(final, cfg.loss))}
    seconds = time.perf_counter() - t0
    log.info(
        "%s: %d steps in %.1f s%s, loss %.4g → %.4g",
        name,
        it,
        seconds,
        " (early stop)" if stopped else "",
        initial.get("total", float("nan")),
        values["total"],
    )
    return PhaseLog(name, batch.frames.tolist(), it, stopped, round(seconds, 2), initial, values)


@dataclass
class RefineProgress:
    """Where a refinement stands: phase 1 done or not, and the next phase-2 chunk."""

    phase1_done: bool = False
    next_chunk: int = 0
    logs: list[dict] = field(default_factory=list)


def refine_poses(
    params: FrameParams,
    problem: RefineProblem,
    logger: RunLogger | None = None,
    progress: RefineProgress | None = None,
    on_progress: Callable[[FrameParams, RefineProgress], None] | None = None,
) -> RefineProgress:
    """Run both phases on ``params`` in place (resuming from ``progress`` when given).

    Args:
        params: per-frame tables holding the stage-1 values; refined in place.
        problem: the fixed data of the objective.
        logger: scalar sink (``refine/<term>`` rows).
        progress: state of an interrupted run (``params`` must then hold its saved values).
        on_progress: called after phase 1 and after every chunk (e.g. to save a checkpoint).
    """
    cfg: RefineConfig = problem.cfg
    device = problem.K.device
    T = params.object.rot.num_embeddings
    progress = progress or RefineProgress()
    if not progress.phase1_done:
        frames = torch.tensor(phase1_frames(T, cfg.phase1_frames), device=device)
        batch = PoseBatch.from_params(params, frames, cfg, shared=True)
        phase = optimize_batch(problem, batch, cfg.phase1_iterations, "phase 1", smooth=False, logger=logger)
        batch.write_back(params, per_frame=False, shared=True)  # HOLD keeps only β and s from phase 1
        progress.phase1_done = True
        progress.logs.append(phase.to_dict())
        if on_progress is not None:
            on_progress(params, progress)
    all_chunks = chunks(T, cfg.chunk_frames)
    for k in range(progress.next_chunk, len(all_chunks)):
        frames = torch.tensor(all_chunks[k], device=device)
        fixed = None if problem.fixed_object_rot is None else problem.fixed_object_rot[frames]
        batch = PoseBatch.from_params(params, frames, cfg, shared=False, fixed_rot=fixed)
        first = all_chunks[k][0]
        before = torch.arange(max(0, first - cfg.context_frames), first, device=device)
        context = Context.from_params(params, before)
        name = f"chunk {k + 1}/{len(all_chunks)} (frames {frames[0].item()}–{frames[-1].item()})"
        offset = cfg.phase1_iterations + k * cfg.phase2_iterations
        phase = optimize_batch(
            problem, batch, cfg.phase2_iterations, name, context, True, logger, step_offset=offset
        )
        batch.write_back(params, per_frame=True, shared=False)
        progress.next_chunk = k + 1
        progress.logs.append(phase.to_dict())
        if on_progress is not None:
            on_progress(params, progress)
    return progress
