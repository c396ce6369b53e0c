"""Evaluation of a RUN dir against its sequence's ground truth (`hold-eval`, docs/evaluation.md).

Reads SEQ/gt/ (the SEQUENCE dir named in RUN/run.json) and the final model's reconstruction, runs the
HOLD protocol (``hold.eval.evaluate``) and returns the metrics.json content. `hold-export` calls the
same function on the meshes it exports, so EXPORT/metrics.json and RUN/metrics.json agree.

Conventions: the predicted object mesh is in metres in the object frame (canonical units × scale), so
its per-frame transform to the camera is ``[R_t | t_t]`` with unit scale; the GT mesh (gt/object.ply,
metres) goes to the camera by gt.npz's ``object.R``, ``object.t``. Hand roots are joint ``root_index``
of the predicted and GT joints.

Every GT-valid frame is scored with the joints and object poses the model used (``FinalModel`` gives
all T frames); the sequence's ``valid`` (hand detected) only selects the ``*_detected`` figures. The
metrics also record how much of the object track came from SfM (``read_object_track_sources``).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

import hold
from hold.config import HoldConfig
from hold.data.sequence import OBJECT_SOURCES, SOURCE_SFM, GroundTruth, read_ground_truth
from hold.eval.evaluate import HandObjectSequence, evaluate, similarity_matrices
from hold.final.meshes import object_mesh
from hold.final.model import FinalModel, load_final_model
from hold.utils.io import write_json
from hold.utils.logging import get_logger

log = get_logger("eval")

METRICS_FILE = "metrics.json"
HAND_SIDES = ("right", "left")
SEQUENCE_ARRAYS = "sequence.npz"
SFM_ARRAYS = Path("work") / "sfm" / "sfm.npz"
OBJECT_SOURCE_KEY = "object.source"


class NoGroundTruthError(FileNotFoundError):
    """The run's sequence has no gt/ dir: there is nothing to evaluate against."""


def ground_truth_dir(final: FinalModel) -> Path:
    return final.sequence_dir / "gt"


def has_ground_truth(final: FinalModel) -> bool:
    return ground_truth_dir(final).is_dir()


def load_ground_truth(final: FinalModel) -> GroundTruth:
    """SEQ/gt/ of the run, validated against the sequence's frame count."""
    gt_dir = ground_truth_dir(final)
    if not gt_dir.is_dir():
        raise NoGroundTruthError(
            f"{gt_dir}: missing; hold-eval needs ground truth (gt/gt.npz and gt/object.ply; see docs/formats.md, SEQUENCE dir) "
            f"in the run's sequence {final.sequence_dir}"
        )
    return read_ground_truth(gt_dir, num_frames=final.num_frames)


def evaluate_reconstruction(
    final: FinalModel,
    gt: GroundTruth,
    mesh: trimesh.Trimesh,
    mesh_source: dict[str, Any],
    joints: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics of the final model's reconstruction against ``gt``, as the metrics.json dict.

    Args:
        final: the loaded final model (gives the joints, object poses, valid frames, provenance).
        gt: the sequence's ground truth.
        mesh: the predicted canonical object mesh, metres (undecimated).
        mesh_source: how ``mesh`` was made (recorded in the output).
        joints: per side (T, 21, 3) predicted joints; None computes them from the model.
    """
    joints = final.joints() if joints is None else joints
    sides = [s for s in HAND_SIDES if s in joints and s in gt.joints]
    side = sides[0] if sides else None
    R, t, _ = final.object_poses()
    pred = HandObjectSequence(
        joints=joints[side] if side else None,
        object_mesh=mesh,
        object_to_camera=similarity_matrices(R, t, 1.0),  # the mesh is already in metres
        valid=np.asarray(final.seq.valid, bool),
    )
    gt_mesh = trimesh.load(gt.object_mesh_path, process=False, force="mesh")
    target = HandObjectSequence(
        joints=gt.joints[side] if side else None,
        object_mesh=gt_mesh,
        object_to_camera=similarity_matrices(gt.object_R, gt.object_t, 1.0),
        valid=np.asarray(gt.valid, bool),
    )
    result = evaluate(pred, target, final.cfg.eval).to_dict()
    sources = read_object_track_sources(
        final.sequence_dir, final.num_frames, getattr(final.seq.object, "source", None)
    )
    result["sfm_registered_fraction"] = None if sources is None else sources.sfm_registered_fraction
    result["object_track"] = None if sources is None else sources.to_dict()
    result["reconstruction"] = {
        **final.provenance(),
        "hand_side": side,
        "object_mesh": mesh_source,
        "ground_truth": str(ground_truth_dir(final)),
    }
    result["hold_version"] = hold.__version__
    result["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return result


@dataclass
class ObjectTrackSources:
    """Where the per-frame object poses of a sequence came from.

    Attributes:
        origin: what the counts were read from (``sequence.npz:object.source``,
            ``work/sfm/sfm.npz:reliable``, ...).
        num_frames: T.
        sfm_registered: frames whose pose SfM registered (reliably, when the source says).
        counts: frames per source name (``OBJECT_SOURCES``; for sfm.npz its boolean arrays).
    """

    origin: str
    num_frames: int
    sfm_registered: int
    counts: dict[str, int]

    @property
    def sfm_registered_fraction(self) -> float:
        return self.sfm_registered / self.num_frames

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "num_frames": self.num_frames,
            "sfm_registered": self.sfm_registered,
            "sfm_registered_fraction": self.sfm_registered_fraction,
            "counts": dict(self.counts),
        }


def read_object_track_sources(
    sequence_dir: str | Path, num_frames: int, source: np.ndarray | None = None
) -> ObjectTrackSources | None:
    """How many frames of the object track came from SfM; None when nothing records it.

    Reads, in order: ``source`` (the sequence's ``object.source`` when already loaded), the key
    ``object.source`` of SEQ/sequence.npz ((T,) uint8, codes ``OBJECT_SOURCES``), then
    SEQ/work/sfm/sfm.npz's boolean ``reliable`` (registered and not an outlier) or ``registered``.
    An array of the wrong length is skipped with a warning.

    Args:
        sequence_dir: the SEQUENCE dir.
        num_frames: T of the sequence.
        source: (T,) uint8 ``object.source`` if the caller has it.
    """
    root = Path(sequence_dir)
    origin = f"{SEQUENCE_ARRAYS}:{OBJECT_SOURCE_KEY}"
    codes = source if source is not None else _npz_key(root / SEQUENCE_ARRAYS, OBJECT_SOURCE_KEY)
    if codes is not None and _has_frames(codes, num_frames, root / origin):
        codes = np.asarray(codes).astype(np.int64)
        counts = {name: int(np.sum(codes == code)) for code, name in OBJECT_SOURCES.items()}
        for code in sorted(set(codes.tolist()) - set(OBJECT_SOURCES)):
            counts[f"unknown_{code}"] = int(np.sum(codes == code))
        return ObjectTrackSources(origin, num_frames, counts[OBJECT_SOURCES[SOURCE_SFM]], counts)
    sfm = {}
    for key in ("registered", "reliable"):
        flags = _npz_key(root / SFM_ARRAYS, key)
        if flags is not None and _has_frames(flags, num_frames, root / f"{SFM_ARRAYS}:{key}"):
            sfm[key] = np.asarray(flags, bool)
    if not sfm:
        return None
    key = "reliable" if "reliable" in sfm else "registered"
    counts = {k: int(v.sum()) for k, v in sfm.items()}
    return ObjectTrackSources(f"{SFM_ARRAYS.as_posix()}:{key}", num_frames, counts[key], counts)


def _npz_key(path: Path, key: str) -> np.ndarray | None:
    """``path[key]`` of an npz archive, None when the file or the key is missing."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data[key] if key in data.files else None


def _has_frames(values: np.ndarray, num_frames: int, where: Path) -> bool:
    shape = np.shape(values)
    if shape != (num_frames,):
        log.warning(
            "%s: expected shape (%d,), found %s; not used for the SfM fraction", where, num_frames, shape
        )
        return False
    return True


def evaluate_run(run_dir: str | Path, cfg: HoldConfig | None = None) -> tuple[dict[str, Any], Path]:
    """Evaluate a RUN dir and write RUN/metrics.json.

    Args:
        run_dir: the RUN dir.
        cfg: the run's config with overrides (eval.*, export.object_mesh_resolution); None reads it.

    Returns:
        The metrics and the path written.

    Raises:
        NoGroundTruthError: the sequence has no gt/.
    """
    final = load_final_model(run_dir, cfg)
    gt = load_ground_truth(final)
    mesh, source = object_mesh(final, final.cfg.export)
    log.info("evaluating stage %d of %s against %s", final.stage, final.run.root, ground_truth_dir(final))
    metrics = evaluate_reconstruction(final, gt, mesh, source)
    path = final.run.root / METRICS_FILE
    try:
        write_json(path, metrics)
    except OSError:  # a read-only run: the numbers were computed, print them rather than lose them
        print(json.dumps(metrics, indent=1, default=str))
        log.warning("metrics: %s (printed above: %s could not be written)", summary_line(metrics), path)
        raise
    log.info("metrics: %s → %s", summary_line(metrics), path)
    return metrics, path


def summary_line(metrics: dict[str, Any]) -> str:
    """One line: ``MPJPE 12.3 mm | CD 0.45 cm² | F5 40.1 % | F10 70.2 % | CD_h 3.2 cm² | scale +12 %``.

    ``scale`` is the signed object size error (``object_scale_error_pct``); — marks missing values.
    """
    fmt = lambda v, unit, p=2, sign="": "—" if v is None else f"{v:{sign}.{p}f} {unit}"  # noqa: E731
    return " | ".join(
        [
            f"MPJPE {fmt(metrics.get('mpjpe_mm'), 'mm', 1)}",
            f"CD {fmt(metrics.get('cd_cm2'), 'cm²')}",
            f"F5 {fmt(metrics.get('f5'), '%', 1)}",
            f"F10 {fmt(metrics.get('f10'), '%', 1)}",
            f"CD_h {fmt(metrics.get('cd_h_cm2'), 'cm²')}",
            f"scale {fmt(metrics.get('object_scale_error_pct'), '%', 0, '+')}",
        ]
    )
