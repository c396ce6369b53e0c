"""HOLD-Net training losses (HOLD §3.2, docs/architecture.md) as pure functions; weights live in the config."""

from __future__ import annotations

import torch
from torch import Tensor

from hold.data.sequence import LABEL_UNKNOWN


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(values)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def rgb_l1(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Photometric L1 (HOLD §3.2, L_rgb).

    Args:
        pred, target: (R, 3) colours in [0, 1].
        valid: (R,) bool, rays that count (e.g. not labelled unknown).
    """
    return _masked_mean((pred - target).abs(), valid)


def _labelled(class_probs: Tensor, labels: Tensor) -> Tensor:
    """Rays whose label is a rendered class: not 255 (unknown), not beyond the C classes."""
    return (labels != LABEL_UNKNOWN) & (labels < class_probs.shape[1])


def segmentation_nll(class_probs: Tensor, labels: Tensor, eps: float = 1e-6) -> Tensor:
    """Negative log-likelihood of each ray's label under the rendered class distribution (HOLD L_seg).

    Args:
        class_probs: (R, C) rendered distribution over (background, object, right, left); rows sum to 1.
        labels: (R,) long mask labels (docs/formats.md); 255 (unknown) and labels ≥ C are ignored.
    """
    valid = _labelled(class_probs, labels)
    if not valid.any():
        return class_probs.sum() * 0.0
    picked = class_probs[valid].gather(1, labels[valid, None]).squeeze(1)
    return -(picked.clamp_min(eps)).log().mean()


def segmentation_squared(class_probs: Tensor, labels: Tensor) -> Tensor:
    """Squared error between the rendered class distribution and the one-hot label (HOLD's released
    ``get_sem_loss``): summed over the classes, mean over the rays.

    Unlike the negative log-likelihood, a ray's cost is bounded (at most 2), so confidently wrong rays,
    e.g. at mask boundaries, do not dominate.

    Args:
        class_probs: (R, C) rendered distribution over (background, object, right, left); rows sum to 1.
        labels: (R,) long mask labels (docs/formats.md); 255 (unknown) and labels ≥ C are ignored.
    """
    valid = _labelled(class_probs, labels)
    if not valid.any():
        return class_probs.sum() * 0.0
    probs = class_probs[valid]
    one_hot = torch.nn.functional.one_hot(labels[valid], probs.shape[1]).to(probs.dtype)
    return (probs - one_hot).square().sum(-1).mean()


def eikonal(gradients: Tensor) -> Tensor:
    """Eikonal regulariser (IGR): (‖∇d‖ − 1)², mean over points. ``gradients``: (N, 3)."""
    return ((gradients.norm(dim=-1) - 1.0) ** 2).mean()


def sdf_prior_l1(pred_sdf: Tensor, target_sdf: Tensor) -> Tensor:
    """L1 between the hand field's canonical SDF and the hand model's sealed-mesh SDF (HOLD L_prior)."""
    return (pred_sdf - target_sdf).abs().mean()


def sparsity(opacity: Tensor, far: Tensor) -> Tensor:
    """Opacity of a node on rays far from its mesh should vanish (HOLD L_sparse).

    Args:
        opacity: (R,) the node's amodal accumulated opacity.
        far: (R,) bool, rays whose distance to the node's posed mesh exceeds the configured margin.
    """
    return _masked_mean(opacity.abs(), far) if far.any() else opacity.sum() * 0.0


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB for colours in [0, 1]."""
    mse = ((pred - target) ** 2).mean().clamp_min(1e-10)
    return -10.0 * torch.log10(mse)
