"""The final model of a RUN dir and the per-frame quantities it reconstructs.

The final model is the highest completed stage of 3 (retrain) and 1 (pretrain); with
``export.final_stage=masks``, of the two the one whose object silhouettes fit the masks better. Its per-frame
parameters are those in ``stage<k>/model.pt``; the sequence it was built from gives the images, masks
and shapes: SEQ itself, with stage 2's refined poses (``stage2/refined.npz``) laid over it when stage 3
trained on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hold.config import HoldConfig
from hold.data.rays import SequenceRays
from hold.data.sequence import Sequence, read_sequence
from hold.final.object_level import LevelFit, NoObjectPixelsError, fit_object_level
from hold.geometry.mesh import EmptySurfaceError
from hold.model.holdnet import HoldNet
from hold.run import RunDir, RunDirError
from hold.stages import stage3_sequence
from hold.utils.logging import get_logger

log = get_logger("export")

FINAL_STAGES = (3, 1)
"""Stages whose model can be the final one, most final first (stage 2 refines poses only)."""


@dataclass
class FinalModel:
    """A run's final HOLD-Net, loaded for inference.

    Attributes:
        run: the RUN dir.
        cfg: the run's resolved config (with any export/eval overrides applied).
        stage: the stage whose weights were loaded (3 or 1).
        poses: ``"refined"`` (stage 2's refined.npz) or ``"sequence"`` (SEQ's initial poses).
        sequence_dir: the SEQUENCE dir of the run (from run.json).
        seq: the sequence the model was built from.
        model: HOLD-Net with the stage's weights, in eval mode (``render_frame``, ``extract_object_mesh``).
        rays: the sequence's rays, for ``model.render_frame``.
        fallback: why stage 1 stands in for a finished stage 3 (``final_stage``, or chosen by
            ``export.final_stage=masks``); None when it does not.
        stage_fit: with ``export.final_stage=masks``, the chosen stage and each stage's silhouette IoU.
    """

    run: RunDir
    cfg: HoldConfig
    stage: int
    poses: str
    sequence_dir: Path
    seq: Sequence
    model: HoldNet
    rays: SequenceRays
    fallback: str | None = None
    stage_fit: dict[str, object] | None = None

    @property
    def num_frames(self) -> int:
        return self.seq.num_frames

    def provenance(self) -> dict[str, object]:
        """Where the reconstruction comes from, for metrics.json and the export summary."""
        return {
            "run": str(self.run.root.resolve()),
            "stage": self.stage,
            "weights": str(self.weights_path.resolve()),
            "poses": self.poses,
            "sequence": str(self.sequence_dir),
            "fallback": self.fallback,
            "stage_fit": self.stage_fit,
        }

    @property
    def weights_path(self) -> Path:
        return self.run.stage_dir(self.stage) / "model.pt"

    @torch.no_grad()
    def joints(self) -> dict[str, np.ndarray]:
        """Per hand side, (T, 21, 3) keypoints in the camera frame (metres) from the final parameters."""
        frames = torch.arange(self.num_frames)
        return {
            side: self.model.posed_hand(side, frames).keypoints.cpu().numpy().astype(np.float32)
            for side in self.model.hands
        }

    def fit_object_level(
        self, candidates_beta: tuple[float, ...], grid: np.ndarray, bounds: tuple[float, float]
    ) -> LevelFit:
        """``fit_object_level`` for this model's object SDF grid, with its poses, β and every frame's
        masks (training fits the object to every frame's mask). Raises as ``fit_object_level``."""
        poses = self.object_poses()
        beta = float(self.model.object.density.get_beta().detach())
        return fit_object_level(
            grid, bounds, candidates_beta, beta / poses[2], poses,
            self.rays.K.numpy().astype(np.float64), self.rays.masks.numpy(), np.asarray(self.rays.frames),
        )  # fmt: skip

    @torch.no_grad()
    def object_poses(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Object rotation (T, 3, 3), translation (T, 3) and scale: x_cam = R (s x_can) + t."""
        pose = self.model.params.object(torch.arange(self.num_frames))
        return pose.R.cpu().numpy().astype(np.float64), pose.t.cpu().numpy().astype(np.float64), float(pose.s)


def final_stage(run: RunDir) -> tuple[int, str | None]:
    """The highest completed stage among 3 and 1, and why a lower one was taken (None when it was not).

    Stage 3 without an object mesh (its object SDF lost its surface) gives way to stage 1 when stage 1
    saved one: a flagged result rather than none. A RunDirError when neither stage finished.
    """
    done = run.completed_stages()
    finished = [stage for stage in FINAL_STAGES if stage in done]
    if not finished:
        raise RunDirError(
            f"{run.root}: no finished training stage to export (completed: {done or 'none'}); "
            "run hold-train until stage 1 (or 3) finishes"
        )
    meshed = [stage for stage in finished if (run.stage_dir(stage) / "object_canonical.ply").is_file()]
    if finished[0] == 3 and meshed == [1]:
        return 1, "stage 3 ended without an object surface (no stage3/object_canonical.ply): stage 1 is used"
    return finished[0], None


def run_sequence_dir(run: RunDir) -> Path:
    """The SEQUENCE dir recorded in run.json."""
    try:
        meta = json.loads(run.meta_path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{run.meta_path}: missing; is {run.root} a run dir made by hold-train?") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{run.meta_path}: not valid JSON ({e})") from None
    seq = meta.get("sequence")
    if not seq:
        raise RunDirError(
            f"{run.meta_path}: key 'sequence' is missing: the run does not say which SEQUENCE dir it used"
        )
    return Path(seq)


def load_final_model(run_dir: str | Path, cfg: HoldConfig | None = None) -> FinalModel:
    """Load the final model of a RUN dir (see the module docstring).

    Args:
        run_dir: the RUN dir.
        cfg: the run's config with overrides applied; None reads RUN/config.yaml.

    Raises:
        RunDirError: no finished stage, missing weights or run.json.
        SequenceError: the run's SEQUENCE dir is gone or malformed.
    """
    run = RunDir(run_dir)
    cfg = cfg if cfg is not None else run.load_config()
    stage, fallback = final_stage(run)
    if fallback is not None:
        log.warning("final model: %s", fallback)
    sequence_dir = run_sequence_dir(run)
    seq = read_sequence(sequence_dir, check_pixels=False)
    final = _load_stage(run, cfg, stage, sequence_dir, seq, fallback)
    if cfg.export.final_stage == "masks" and stage == 3 and 1 in run.completed_stages():
        final = _choose_by_masks(final, _load_stage(run, cfg, 1, sequence_dir, seq, None))
    log.info("final model: stage %d (%s), poses: %s", final.stage, final.weights_path, final.poses)
    return final


def _load_stage(
    run: RunDir, cfg: HoldConfig, stage: int, sequence_dir: Path, seq: Sequence, fallback: str | None
) -> FinalModel:
    """One finished stage's model (stage 3 on stage 2's refined poses when it trained on them)."""
    weights = run.stage_dir(stage) / "model.pt"
    if not weights.is_file():
        raise RunDirError(f"{weights}: missing, although state.json marks stage {stage} as finished")
    poses = "sequence"
    if stage == 3:
        # The same choice stage 3 made when it trained (hold.stages.stage3_sequence).
        seq3 = stage3_sequence(run, seq)
        poses = "refined" if seq3 is not seq else poses
        seq = seq3
    try:
        model = HoldNet(seq, cfg.model, cfg.hand, cfg.render, seed=cfg.seed).load_weights(weights)
    except ValueError as e:
        raise RunDirError(str(e)) from None
    model.eval()
    return FinalModel(run, cfg, stage, poses, sequence_dir, seq, model, SequenceRays(seq, cfg.rays), fallback)


def _choose_by_masks(stage3: FinalModel, stage1: FinalModel) -> FinalModel:
    """``export.final_stage=masks``: stage 1 instead of stage 3 when its object silhouettes, each at its
    best level, overlap the object masks better (a tie keeps stage 3). The scores go into ``stage_fit``."""
    cfg = stage3.cfg
    resolution = cfg.export.object_mesh_resolution or cfg.train.final_mesh_resolution
    iou: dict[int, float] = {}
    for final in (stage3, stage1):
        try:
            grid, bounds = final.model.object_sdf_grid(resolution)
            fit = final.fit_object_level(cfg.export.object_level_candidates_beta, grid, bounds)
        except (EmptySurfaceError, NoObjectPixelsError) as e:
            log.warning(
                "final model: export.final_stage=masks cannot score stage %d (%s): stage 3 is used",
                final.stage,
                e,
            )
            return stage3
        iou[final.stage] = fit.iou[fit.level_beta]
    chosen = stage1 if iou[1] > iou[3] else stage3
    chosen.stage_fit = {"chosen": chosen.stage, "iou_by_stage": {str(k): round(v, 4) for k, v in iou.items()}}
    if chosen is stage1:
        chosen.fallback = (
            f"stage 1's object silhouettes fit the masks better than stage 3's (IoU {iou[1]:.3f} vs "
            f"{iou[3]:.3f}; export.final_stage=masks): stage 1 is used"
        )
        log.warning("final model: %s", chosen.fallback)
    else:
        log.info("final model: stage 3's object silhouettes fit the masks at least as well as stage 1's "
                 "(IoU %.3f vs %.3f)", iou[3], iou[1])  # fmt: skip
    return chosen
