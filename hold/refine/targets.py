"""Mask targets of the occlusion-aware silhouette terms (HOLD §3.4), at the rasteriser's resolution.

A node's silhouette is compared with its mask only where the other nodes' masks cannot hide it: the
object term ignores hand pixels (a hand in front of the object occludes it, so the object's rendered
silhouette may extend there) and each hand term ignores object and other-hand pixels. Unknown pixels
(label 255) count nowhere. Label maps are area-averaged to the raster size, so targets and weights
are fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN, Sequence

HAND_LABELS = {"right": LABEL_RIGHT, "left": LABEL_LEFT}


@dataclass
class MaskTargets:
    """Per-frame targets and weights of every node, (T, h, w) float32.

    Attributes:
        size: (h, w) raster size.
        K: (3, 3) intrinsics scaled to that size.
        object_target, object_weight: fraction of object pixels among the counted ones, and the
            fraction of counted pixels (not hand, not unknown).
        hand_target, hand_weight: the same per hand side (not object, not another hand, not unknown).
    """

    size: tuple[int, int]
    K: Tensor
    object_target: Tensor
    object_weight: Tensor
    hand_target: dict[str, Tensor]
    hand_weight: dict[str, Tensor]

    def to(self, device: torch.device) -> MaskTargets:
        return MaskTargets(
            self.size,
            self.K.to(device),
            self.object_target.to(device),
            self.object_weight.to(device),
            {k: v.to(device) for k, v in self.hand_target.items()},
            {k: v.to(device) for k, v in self.hand_weight.items()},
        )


def raster_size(image_size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(H, W) scaled so that the longest side is ``longest`` pixels (never upscaled)."""
    H, W = image_size
    f = min(1.0, longest / max(H, W))
    return max(1, round(H * f)), max(1, round(W * f))


def scale_intrinsics(K: np.ndarray, image_size: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Intrinsics for the image resized from ``image_size`` to ``size`` (pixel edges stay on integers)."""
    out = torch.as_tensor(np.asarray(K), dtype=torch.float32).clone()
    out[0] *= size[1] / image_size[1]
    out[1] *= size[0] / image_size[0]
    return out


def _area(mask: np.ndarray, size: tuple[int, int]) -> Tensor:
    """(T, H, W) bool → (T, h, w) float fraction of True pixels per output pixel."""
    t = torch.as_tensor(mask, dtype=torch.float32)[:, None]
    return F.interpolate(t, size=size, mode="area")[:, 0]


def occlusion_aware_targets(labels: np.ndarray, sides: list[str], size: tuple[int, int]) -> tuple:
    """Targets and weights from label maps (T, H, W) uint8 (docs/formats.md labels).

    Returns:
        (object_target, object_weight, hand_target, hand_weight) as in ``MaskTargets``.
    """
    known = labels != LABEL_UNKNOWN
    hand_pixels = {s: labels == HAND_LABELS[s] for s in sides}
    any_hand = np.zeros_like(known)
    for m in hand_pixels.values():
        any_hand |= m
    obj = labels == LABEL_OBJECT

    def pair(target: np.ndarray, counted: np.ndarray) -> tuple[Tensor, Tensor]:
        weight = _area(counted, size)
        frac = _area(target & counted, size)
        return torch.where(weight > 0, frac / weight.clamp_min(1e-6), torch.zeros_like(frac)), weight

    object_target, object_weight = pair(obj, known & ~any_hand)
    hand_target, hand_weight = {}, {}
    for s in sides:
        others = any_hand & ~hand_pixels[s]
        hand_target[s], hand_weight[s] = pair(hand_pixels[s], known & ~obj & ~others)
    return object_target, object_weight, hand_target, hand_weight


def load_targets(seq: Sequence, longest: int) -> MaskTargets:
    """Read every mask of ``seq`` and build the targets at raster size (longest side ``longest``)."""
    size = raster_size(seq.image_size, longest)
    labels = np.stack([seq.load_mask(t) for t in range(seq.num_frames)])
    obj_t, obj_w, hand_t, hand_w = occlusion_aware_targets(labels, list(seq.hands), size)
    return MaskTargets(size, scale_intrinsics(seq.K, seq.image_size, size), obj_t, obj_w, hand_t, hand_w)
