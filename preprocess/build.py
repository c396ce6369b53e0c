"""Step ``build``: the SEQUENCE dir (format v1, docs/formats.md) and an overlay video to check it by eye.

Reads every earlier step's output, writes ``images/``, ``masks/``, ``sequence.npz`` and
``sequence.json`` through ``hold.data.sequence.write_sequence`` (validated before anything is
written, atomic, sequence.json last), copies RAW/gt/ through (per-frame arrays subsampled like the
frames when a stride or a frame limit was used) and validates the result.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm import tqdm

import hold
from hold.config.hand import HandConfig
from hold.data.sequence import (
    HandTrack,
    ObjectTrack,
    Sequence,
    SequenceError,
    validate_sequence,
    write_sequence,
)
from hold.hand.build import build_hand_model
from hold.utils.io import atomic_open, write_npz
from hold.utils.logging import get_logger
from preprocess.config import BuildConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, load_frame
from preprocess.masks import load_mask

STEP = "build"
HAND_COLOURS = {"right": (255, 140, 40), "left": (40, 200, 255)}
OBJECT_COLOUR = (60, 230, 60)
log = get_logger("preprocess.build")


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def assemble(work: Path, raw: Path, hand_cfg: HandConfig, cfg: BuildConfig) -> Sequence:
    """The in-memory ``Sequence`` from the step outputs under ``work``."""
    info = FramesInfo.load(work / "frames" / "frames.json")
    hands, sfm, align = (load_arrays(work / d / f"{d}.npz") for d in ("hands", "sfm", "align"))
    sides = [s for s in ("right", "left") if f"{s}.transl" in align]
    valid = np.ones(info.num_frames, bool)
    for side in sides:
        valid &= hands[f"{side}.valid"]
    if cfg.invalid_unregistered:
        valid &= sfm.get("reliable", sfm["registered"])
    steps = {}
    for step in ("frames", "masks", "hands", "sfm", "align"):
        done = json.loads((work / step / "done.json").read_text())
        steps[step] = done.get("summary", {})
    return Sequence(
        K=sfm["K"],
        valid=valid,
        hands={
            s: HandTrack(
                global_orient=hands[f"{s}.global_orient"],
                pose=hands[f"{s}.pose"],
                betas=hands[f"{s}.betas"],
                transl=align[f"{s}.transl"],
            )
            for s in sides
        },
        object=ObjectTrack(
            rot=align["object.rot"],
            transl=align["object.transl"],
            scale=float(align["object.scale"]),
            points=sfm["points"],
            colors=sfm["colors"],
            source=sfm.get("source"),
        ),
        image_size=tuple(info.image_size),
        hand_model=hand_cfg.model,
        source={
            "made_by": f"hold-preprocess {hold.__version__}",
            "raw": str(raw.resolve()),
            "input": info.source,
            "source_indices": info.source_indices,
            "steps": steps,
        },
    )


def copy_ground_truth(raw: Path, seq_dir: Path, info: FramesInfo) -> bool:
    """RAW/gt → SEQ/gt: unchanged, or with per-frame arrays subsampled to the kept frames."""
    src, dst = raw / "gt", seq_dir / "gt"
    if not src.is_dir():
        return False
    if dst.exists():
        shutil.rmtree(dst)
    kept = info.source_indices
    if kept == list(range(info.num_input_frames)):
        shutil.copytree(src, dst)
        return True
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.name == "gt.npz":
            arrays = load_arrays(path)
            n = info.num_input_frames
            write_npz(
                dst / path.name,
                {k: (v[kept] if v.ndim and v.shape[0] == n else v) for k, v in arrays.items()},
            )
        elif path.is_file():
            with atomic_open(dst / path.name, "wb") as f:
                f.write(path.read_bytes())
    return True


def overlay_frames(
    seq: Sequence, frames_dir: Path, hand_cfg: HandConfig, alpha: float
) -> Iterator[np.ndarray]:
    """Frames with the posed hand mesh vertices and the object points projected on them."""
    K = seq.K
    verts = {}
    for side, h in seq.hands.items():
        model = build_hand_model(hand_cfg, side)
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            verts[side] = model(t(h.global_orient), t(h.pose), t(h.betas), t(h.transl)).vertices.numpy()
    o = seq.object
    R = Rotation.from_rotvec(o.rot).as_matrix()
    obj = o.scale * np.einsum("tij,pj->tpi", R, o.points) + o.transl[:, None]
    for t in range(seq.num_frames):
        image = load_frame(frames_dir, t).astype(np.float32)
        layers = [(obj[t], OBJECT_COLOUR)] + [(verts[s][t], HAND_COLOURS[s]) for s in verts]
        for points, colour in layers:
            _splat(image, points, K, colour, alpha)
        yield np.clip(image, 0, 255).astype(np.uint8)


def _splat(
    image: np.ndarray, points: np.ndarray, K: np.ndarray, colour: tuple[int, int, int], alpha: float
) -> None:
    H, W = image.shape[:2]
    front = points[:, 2] > 1e-6
    uvw = points[front] @ K.T
    uv = np.round(uvw[:, :2] / uvw[:, 2:3]).astype(int)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    u, v = uv[inside, 0], uv[inside, 1]
    image[v, u] = (1 - alpha) * image[v, u] + alpha * np.asarray(colour, np.float32)


def write_video(path: Path, frames: Iterator[np.ndarray], fps: float, total: int) -> None:
    """H.264 mp4 via imageio-ffmpeg, written under a temporary name and renamed."""
    import imageio.v2 as imageio

    tmp = path.with_name(f".{path.name}.tmp.mp4")
    writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2, quality=7)
    try:
        for frame in tqdm(frames, total=total, desc="overlay", unit="frame", disable=None):
            H, W = frame.shape[:2]
            writer.append_data(np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0))))  # yuv420p: even sizes
    finally:
        writer.close()
    tmp.replace(path)


def run_build(raw: Path, seq_dir: Path, work: Path, cfg: BuildConfig, hand_cfg: HandConfig) -> dict:
    """Write and validate the SEQUENCE dir, copy gt/ and write the overlay; returns the summary."""
    info = FramesInfo.load(work / "frames" / "frames.json")
    seq = assemble(work, raw, hand_cfg, cfg)
    masks_info = json.loads((work / "masks" / "masks.json").read_text())
    if len(masks_info["object_fraction"]) != seq.num_frames:
        raise PreprocessError(
            STEP,
            f"frame counts differ: {len(masks_info['object_fraction'])} masks but {seq.num_frames} frames; re-run with --redo",
            work / "masks",
        )
    frames_dir, masks_dir = work / "frames", work / "masks"
    try:
        write_sequence(
            seq_dir,
            seq,
            (load_frame(frames_dir, t) for t in range(seq.num_frames)),
            (load_mask(masks_dir, t) for t in range(seq.num_frames)),
        )
        has_gt = copy_ground_truth(raw, seq_dir, info)
        validate_sequence(seq_dir)
    except SequenceError as e:
        raise PreprocessError(STEP, f"the built sequence does not validate: {e}", seq_dir) from None
    if cfg.overlay:
        fps = cfg.overlay_fps
        write_video(
            seq_dir / "overlay.mp4",
            overlay_frames(seq, frames_dir, hand_cfg, cfg.overlay_alpha),
            fps,
            seq.num_frames,
        )
    log.info(
        "wrote %s: %d frames (%d valid), hands %s, %d object points%s%s",
        seq_dir, seq.num_frames, seq.valid.sum(), ",".join(seq.hands), len(seq.object.points),
        ", gt/ copied" if has_gt else "", ", overlay.mp4" if cfg.overlay else "",
    )  # fmt: skip
    return {"num_frames": seq.num_frames, "valid": int(seq.valid.sum()), "gt": has_gt, "overlay": cfg.overlay}
