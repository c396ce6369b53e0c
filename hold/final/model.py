"""The final model of a RUN dir and the per-frame quantities it reconstructs.

The final model is the highest completed stage of 3 (retrain) and 1 (pretrain). Its per-frame
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
        fallback: why stage 1 stands in for a finished stage 3 (``final_stage``); None when it does not.
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
    weights = run.stage_dir(stage) / "model.pt"
    if not weights.is_file():
        raise RunDirError(f"{weights}: missing, although state.json marks stage {stage} as finished")
    sequence_dir = run_sequence_dir(run)
    seq = read_sequence(sequence_dir, check_pixels=False)
    poses = "sequence"
    if stage == 3:
        # The same choice stage 3 made when it trained (hold.stages.stage3_sequence).
        seq3 = stage3_sequence(run, seq)
        poses = "refined" if seq3 is not seq else poses
        seq = seq3
    log.info("final model: stage %d (%s), poses: %s", stage, weights, poses)
    try:
        model = HoldNet(seq, cfg.model, cfg.hand, cfg.render, seed=cfg.seed).load_weights(weights)
    except ValueError as e:
        raise RunDirError(str(e)) from None
    model.eval()
    return FinalModel(run, cfg, stage, poses, sequence_dir, seq, model, SequenceRays(seq, cfg.rays), fallback)
