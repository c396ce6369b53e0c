"""Writers: the RAW dir (docs/formats.md) with gt/, the oracle SEQUENCE dir and the contact sheet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial.transform import Rotation

from hold.data.sequence import (
    GroundTruth,
    HandTrack,
    ObjectTrack,
    Sequence,
    write_ground_truth,
    write_sequence,
)
from hold.data.synthetic.estimators import HandEstimates
from hold.utils.io import write_json, write_npz, write_png

_OVERLAY = {1: (255, 60, 60), 2: (60, 140, 255), 3: (60, 220, 90), 255: (255, 255, 0)}  # label → RGB
_OVERLAY_ALPHA = 0.45
_KEYPOINT_RGB = (255, 255, 0)
_KEYPOINT_RADIUS = 1.5  # pixels at 256 px, scaled with the image
_REFERENCE_SIZE = 256.0


@dataclass
class RenderedSequence:
    """Everything generated for one sequence, camera frame, metres."""

    K: np.ndarray  # (3, 3) float64
    images: np.ndarray  # (T, H, W, 3) uint8
    labels: np.ndarray  # (T, H, W) uint8 exact label maps
    depth: np.ndarray  # (T, H, W) float32 z-depth, metres
    hand_global_orient: np.ndarray  # (T, 3)
    hand_pose: np.ndarray  # (T, J, 3)
    hand_betas: np.ndarray  # (B,)
    hand_transl: np.ndarray  # (T, 3)
    joints: np.ndarray  # (T, 21, 3)
    hand_vertices: np.ndarray  # (T, V, 3)
    object_R: np.ndarray  # (T, 3, 3) object-mesh frame → camera
    object_t: np.ndarray  # (T, 3)
    object_ply: bytes  # GT mesh, own frame, metres, vertex colours
    hand_model: str
    plate: np.ndarray | None = None  # (H, W, 3) uint8 the static scene without hand and object


def write_raw(
    root: Path, seq: RenderedSequence, masks: np.ndarray, hands: HandEstimates, meta: dict[str, Any]
) -> None:
    """Write a RAW dir: frames/, camera.json, masks/ and hands.npz (emulated estimators), gt/, synth/.

    ``synth/`` holds what no real RAW dir has but tests and diagnostics want: the exact label maps,
    depth and hand/object parameters, and for a static camera a clean plate (``background.png``: the
    scene without hand and object, under the light's nominal intensity (the drift wobbles about it), with sensor noise; a user's RAW dir
    would hold it as RAW/background.png); ``synth.json`` records the seed, config and noise levels.

    Args:
        root: RAW dir (created).
        seq: the rendered sequence.
        masks: (T, H, W) uint8 noisy label maps (the emulated segmenter).
        hands: emulated hand-pose estimates.
        meta: provenance written as ``synth.json``.
    """
    root = Path(root)
    for t, image in enumerate(seq.images):
        write_png(root / "frames" / f"{t:05d}.png", image)
    for t, mask in enumerate(masks):
        write_png(root / "masks" / f"{t:05d}.png", mask)
    for t, label in enumerate(seq.labels):
        write_png(root / "synth" / "labels" / f"{t:05d}.png", label)
    K = seq.K
    write_json(
        root / "camera.json",
        {"fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])},
    )
    write_npz(
        root / "hands.npz",
        {"right.kp2d": hands.kp2d, "right.kp3d": hands.kp3d, "right.valid": hands.valid},
    )
    write_npz(root / "synth" / "depth.npz", {"depth": seq.depth})
    if seq.plate is not None:
        write_png(root / "synth" / "background.png", seq.plate)
    write_npz(
        root / "synth" / "params.npz",
        {
            "K": K,
            "right.global_orient": seq.hand_global_orient.astype(np.float32),
            "right.pose": seq.hand_pose.astype(np.float32),
            "right.betas": seq.hand_betas.astype(np.float32),
            "right.transl": seq.hand_transl.astype(np.float32),
            "right.occluded": hands.occluded,
            "object.R": seq.object_R.astype(np.float32),
            "object.t": seq.object_t.astype(np.float32),
        },
    )
    write_ground_truth(root / "gt", ground_truth(seq), seq.object_ply)
    write_json(root / "synth.json", meta)


def ground_truth(seq: RenderedSequence) -> GroundTruth:
    """The ``gt/`` content (docs/formats.md) of a rendered sequence."""
    T = len(seq.images)
    return GroundTruth(
        joints={"right": seq.joints},
        object_R=seq.object_R,
        object_t=seq.object_t,
        valid=np.ones(T, bool),
        verts={"right": seq.hand_vertices},
    )


def write_oracle(
    root: Path,
    seq: RenderedSequence,
    points: np.ndarray,
    colors: np.ndarray,
    scale: float,
    source: dict[str, Any],
) -> Path:
    """Write the oracle SEQUENCE dir: exact parameters, exact masks, GT-surface object points.

    Args:
        root: SEQUENCE dir (created).
        seq: the rendered sequence.
        points: (P, 3) object surface samples in the object-mesh frame, metres.
        colors: (P, 3) uint8 their colours.
        scale: canonical → metres (the mesh's bounding radius, so the points fill the unit sphere).
        source: provenance for ``sequence.json``.
    """
    T = len(seq.images)
    sequence = Sequence(
        K=seq.K,
        valid=np.ones(T, bool),
        hands={
            "right": HandTrack(
                global_orient=seq.hand_global_orient,
                pose=seq.hand_pose,
                betas=seq.hand_betas,
                transl=seq.hand_transl,
            )
        },
        object=ObjectTrack(
            rot=Rotation.from_matrix(seq.object_R).as_rotvec(),
            transl=seq.object_t,
            scale=scale,
            points=points / scale,
            colors=colors,
        ),
        image_size=seq.images.shape[1:3],
        hand_model=seq.hand_model,
        source=source,
    )
    write_sequence(root, sequence, list(seq.images), list(seq.labels))
    write_ground_truth(Path(root) / "gt", ground_truth(seq), seq.object_ply)
    return Path(root)


def contact_sheet(images: np.ndarray, masks: np.ndarray, kp2d: np.ndarray | None, columns: int) -> np.ndarray:
    """A grid of the frames with the label maps tinted on top and the 2D keypoints as dots.

    Args:
        images: (T, H, W, 3) uint8.
        masks: (T, H, W) uint8 label maps.
        kp2d: (T, 21, 3) pixel x, y, confidence (dots for confidence > 0), or None.
        columns: frames per row.

    Returns:
        (rows * H, columns * W, 3) uint8.
    """
    T, H, W, _ = images.shape
    rows = -(-T // columns)
    sheet = np.zeros((rows * H, columns * W, 3), np.uint8)
    radius = _KEYPOINT_RADIUS * max(1.0, min(H, W) / _REFERENCE_SIZE)
    for t in range(T):
        tile = images[t].astype(np.float32)
        for label, rgb in _OVERLAY.items():
            sel = masks[t] == label
            tile[sel] = (1 - _OVERLAY_ALPHA) * tile[sel] + _OVERLAY_ALPHA * np.asarray(rgb, np.float32)
        pil = Image.fromarray(np.round(tile).astype(np.uint8))
        if kp2d is not None:
            draw = ImageDraw.Draw(pil)
            for x, y, c in kp2d[t]:
                if c > 0:
                    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=_KEYPOINT_RGB)
        r, c = divmod(t, columns)
        sheet[r * H : (r + 1) * H, c * W : (c + 1) * W] = np.asarray(pil)
    return sheet
