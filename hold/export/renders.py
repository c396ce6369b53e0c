"""Renders of a reconstruction: neural RGB / normal renders of chosen frames (as HOLD Fig. 1), mesh
overlays, and the preview video (input | meshes over the input | side view, per frame)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from tqdm import tqdm

from hold.config.export import ExportConfig
from hold.export.raster import normal_image, normal_to_rgb
from hold.final.meshes import ExportError
from hold.final.model import FinalModel
from hold.utils.io import write_png
from hold.utils.visualize import to_uint8

VIDEO_CODEC_BLOCK = 2
"""libx264 with yuv420p needs even frame sizes: frames are padded to a multiple of this."""


@dataclass
class FrameMeshes:
    """The posed meshes of one frame, merged into one mesh (camera frame, metres)."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)


def choose_frames(cfg: ExportConfig, valid: np.ndarray) -> list[int]:
    """The frames to render: ``cfg.render_frames``, else ``num_render_frames`` evenly spaced valid ones."""
    T = len(valid)
    if cfg.render_frames:
        bad = [f for f in cfg.render_frames if not 0 <= f < T]
        if bad:
            raise ExportError(
                f"export.render_frames: frames {bad} do not exist (the sequence has frames 0-{T - 1})"
            )
        return list(cfg.render_frames)
    candidates = np.flatnonzero(valid) if valid.any() else np.arange(T)
    n = min(cfg.num_render_frames, len(candidates))
    if n == 0:
        return []
    picks = np.round(np.linspace(0, len(candidates) - 1, n)).astype(int)
    return sorted({int(candidates[i]) for i in picks})


def merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> FrameMeshes:
    """Concatenate (vertices, faces) meshes into one, offsetting the face indices."""
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(np.asarray(v, np.float32))
        faces.append(np.asarray(f, np.int64) + offset)
        offset += len(v)
    return FrameMeshes(np.concatenate(verts), np.concatenate(faces))


def mesh_render(
    meshes: FrameMeshes, K: np.ndarray, image_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Normal-coloured render of the meshes: rgb (H, W, 3) float in [0, 1] and mask (H, W) bool."""
    rgb, mask = normal_image(
        torch.as_tensor(meshes.vertices),
        torch.as_tensor(meshes.faces),
        torch.as_tensor(K, dtype=torch.float32),
        image_size,
    )
    return rgb.numpy(), mask.numpy()


def overlay(image: np.ndarray, rgb: np.ndarray, mask: np.ndarray, alpha: float) -> np.ndarray:
    """Draw a render over a uint8 image where ``mask`` is set, with opacity ``alpha`` → uint8."""
    out = image.astype(np.float32) / 255.0
    a = alpha * mask[..., None]
    return to_uint8(out * (1 - a) + rgb * a)


def side_view(meshes: FrameMeshes, degrees: float) -> FrameMeshes:
    """The meshes turned by ``degrees`` about the camera's vertical (y) axis through their box centre."""
    v = meshes.vertices
    centre = (v.min(0) + v.max(0)) / 2
    a = np.deg2rad(degrees)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    return FrameMeshes((v - centre) @ R.T + centre, meshes.faces)


def upsample(image: np.ndarray, stride: int, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a strided render back to (H, W)."""
    H, W = size
    return np.repeat(np.repeat(image, stride, axis=0), stride, axis=1)[:H, :W]


def neural_render(final: FinalModel, frame: int, stride: int) -> dict[str, np.ndarray]:
    """HOLD-Net's render of a frame at every ``stride``-th pixel: ``rgb`` and ``normal`` (normal map on
    white, weighted by the foreground opacity), uint8 (h, w, 3)."""
    out = final.model.render_frame(final.rays, frame, stride, final.cfg.train.render_chunk)
    alpha = 1.0 - out["class_probs"][..., :1]  # foreground opacity: 1 − P(background)
    # Σ w n is shorter than a unit normal where the opacity is partial: colour its direction.
    unit = torch.nn.functional.normalize(torch.as_tensor(out["normal"]), dim=-1)
    normal = normal_to_rgb(unit).numpy()
    return {"rgb": to_uint8(out["rgb"]), "normal": to_uint8(normal * alpha + (1 - alpha))}


def render_frames(
    final: FinalModel, frames: list[int], posed: dict[int, FrameMeshes], cfg: ExportConfig, out_dir: Path
) -> list[Path]:
    """Neural RGB and normal renders, a mesh overlay and a side-by-side panel of each frame.

    Writes ``<frame>_rgb.png``, ``<frame>_normal.png`` (at the render stride), ``<frame>_mesh.png`` and
    ``<frame>_panel.png`` (input | RGB | normals | meshes over the input, full size) into ``out_dir``.
    """
    seq = final.seq
    size = tuple(seq.image_size)
    paths = []
    for frame in tqdm(frames, desc="neural renders", unit="frame"):
        image = seq.load_image(frame)
        r = neural_render(final, frame, cfg.render_stride)
        rgb, mask = mesh_render(posed[frame], seq.K, size)
        mesh = overlay(image, rgb, mask, cfg.overlay_alpha)
        panel = np.concatenate(
            [
                image,
                upsample(r["rgb"], cfg.render_stride, size),
                upsample(r["normal"], cfg.render_stride, size),
                mesh,
            ],
            axis=1,
        )
        for name, img in (("rgb", r["rgb"]), ("normal", r["normal"]), ("mesh", mesh), ("panel", panel)):
            path = out_dir / f"{frame:05d}_{name}.png"
            write_png(path, img)
            paths.append(path)
    return paths


def video_frame(image: np.ndarray, meshes: FrameMeshes, K: np.ndarray, cfg: ExportConfig) -> np.ndarray:
    """input | meshes over the input | side view of the meshes on white, uint8 (H, 3W, 3)."""
    size = image.shape[:2]
    rgb, mask = mesh_render(meshes, K, size)
    side_rgb, side_mask = mesh_render(side_view(meshes, cfg.side_view_deg), K, size)
    side = to_uint8(np.where(side_mask[..., None], side_rgb, 1.0))
    return np.concatenate([image, overlay(image, rgb, mask, cfg.overlay_alpha), side], axis=1)


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Write uint8 frames as an H.264 mp4, atomically (temporary file renamed on success)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=VIDEO_CODEC_BLOCK) as writer:
            for frame in frames:
                writer.append_data(_pad(frame, VIDEO_CODEC_BLOCK))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _pad(image: np.ndarray, block: int) -> np.ndarray:
    H, W = image.shape[:2]
    return np.pad(image, ((0, -H % block), (0, -W % block), (0, 0)), mode="edge")
