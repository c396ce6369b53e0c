"""Training rays from a SEQUENCE: pixels sampled per step, biased to the hand and object (HOLD §3.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hold.config.data import RaySamplingConfig
from hold.data.sequence import LABEL_BACKGROUND, LABEL_UNKNOWN, Sequence


@dataclass
class RayBatch:
    """A batch of camera rays (camera frame = world frame, OpenCV axes, camera at the origin)."""

    frame: Tensor  # (R,) long, frame index
    pixels: Tensor  # (R, 2) float, pixel centres (x, y)
    origins: Tensor  # (R, 3)
    directions: Tensor  # (R, 3) unit length
    rgb: Tensor  # (R, 3) in [0, 1]
    labels: Tensor  # (R,) long, docs/formats.md labels (255 = unknown)

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def to(self, device: torch.device | str) -> RayBatch:
        return RayBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def pixel_rays(K: Tensor, pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through pixel centres.

    Args:
        K: (3, 3) intrinsics.
        pixels: (R, 2) pixel coordinates (x, y) of the centres, e.g. ``u + 0.5``.

    Returns:
        origins (R, 3) zeros, directions (R, 3) unit vectors.
    """
    homog = torch.cat([pixels, torch.ones_like(pixels[:, :1])], dim=1)
    dirs = homog @ torch.linalg.inv(K).T
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return torch.zeros_like(dirs), dirs


class SequenceRays:
    """All frames of a sequence held in memory as uint8, with per-frame foreground boxes."""

    def __init__(self, seq: Sequence, cfg: RaySamplingConfig, frames: list[int] | None = None):
        self.cfg = cfg
        self.frames = list(range(seq.num_frames)) if frames is None else list(frames)
        self.K = torch.as_tensor(seq.K, dtype=torch.float32)
        self.images = torch.from_numpy(np.stack([seq.load_image(t) for t in self.frames]))  # (F, H, W, 3)
        self.masks = torch.from_numpy(np.stack([seq.load_mask(t) for t in self.frames]))  # (F, H, W)
        self.height, self.width = self.masks.shape[1:]
        self.boxes = torch.stack([self._foreground_box(m) for m in self.masks])  # (F, 4) x0, y0, x1, y1

    def _foreground_box(self, mask: Tensor) -> Tensor:
        fg = (mask != LABEL_BACKGROUND) & (mask != LABEL_UNKNOWN)
        if not fg.any():
            return torch.tensor([0, 0, self.width, self.height], dtype=torch.float32)
        ys, xs = torch.nonzero(fg, as_tuple=True)
        x0, x1, y0, y1 = xs.min().item(), xs.max().item() + 1, ys.min().item(), ys.max().item() + 1
        pad = self.cfg.box_padding * max(x1 - x0, y1 - y0)
        return torch.tensor(
            [max(0.0, x0 - pad), max(0.0, y0 - pad), min(self.width, x1 + pad), min(self.height, y1 + pad)]
        )

    def sample(self, generator: torch.Generator) -> RayBatch:
        """Draw ``frames_per_step`` frames and ``rays_per_frame`` pixels in each (box-biased)."""
        n_frames = min(self.cfg.frames_per_step, len(self.frames))
        local = torch.randperm(len(self.frames), generator=generator)[:n_frames]
        per = self.cfg.rays_per_frame
        n_box = round(per * self.cfg.box_fraction)
        u = torch.rand(n_frames, per, 2, generator=generator)
        box = self.boxes[local]  # (n, 4)
        lo = torch.zeros(n_frames, per, 2)
        hi = torch.tensor([float(self.width), float(self.height)]).expand(n_frames, per, 2).clone()
        lo[:, :n_box] = box[:, None, :2]
        hi[:, :n_box] = box[:, None, 2:]
        xy = lo + u * (hi - lo)
        ix = xy[..., 0].long().clamp_(0, self.width - 1)
        iy = xy[..., 1].long().clamp_(0, self.height - 1)
        return self._gather(local[:, None].expand(-1, per).reshape(-1), ix.reshape(-1), iy.reshape(-1))

    def frame_rays(self, index: int, stride: int = 1) -> RayBatch:
        """Every ``stride``-th pixel of one frame (row-major), e.g. for image panels."""
        ys, xs = torch.meshgrid(
            torch.arange(0, self.height, stride), torch.arange(0, self.width, stride), indexing="ij"
        )
        local = torch.full((xs.numel(),), index, dtype=torch.long)
        return self._gather(local, xs.reshape(-1), ys.reshape(-1))

    def _gather(self, local: Tensor, ix: Tensor, iy: Tensor) -> RayBatch:
        pixels = torch.stack([ix, iy], dim=1).float() + 0.5
        origins, directions = pixel_rays(self.K, pixels)
        return RayBatch(
            frame=torch.as_tensor(self.frames)[local],
            pixels=pixels,
            origins=origins,
            directions=directions,
            rgb=self.images[local, iy, ix].float() / 255.0,
            labels=self.masks[local, iy, ix].long(),
        )
