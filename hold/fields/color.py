"""Colour (radiance) network: RGB from point, normal, view direction, SDF feature and a per-frame code."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hold.config.fields import ColorNetworkConfig
from hold.fields.encoding import FrequencyEncoding
from hold.fields.mlp import SkipMLP


class ColorNetwork(nn.Module):
    """IDR-style rendering network (as HOLD's): ReLU MLP, sigmoid output.

    Input, concatenated in this order, each part present when configured:
    point (3), normal (3), encoded view direction, per-frame latent code, SDF feature (F).

    Args:
        cfg: colour-network config.
        feature_dim: width of the SDF network's feature vector (``SDFNetworkConfig.feature_dim``).
    """

    def __init__(self, cfg: ColorNetworkConfig, feature_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_dim = feature_dim
        self.view_encoding = FrequencyEncoding(cfg.view_encoding, 3) if cfg.use_view_dirs else None
        in_dim = (
            3 * cfg.use_points
            + 3 * cfg.use_normals
            + (self.view_encoding.output_dim if self.view_encoding is not None else 0)
            + cfg.latent_dim
            + feature_dim
        )
        if in_dim == 0:
            raise ValueError(
                "color network has no input: enable points, normals or view dirs, or give features"
            )
        self.in_dim = in_dim
        self.mlp = SkipMLP(
            in_dim=in_dim,
            out_dim=3,
            hidden_dim=cfg.hidden_dim,
            num_layers=cfg.num_layers,
            skip_layers=cfg.skip_layers,
            activation=nn.ReLU(),
            weight_norm=cfg.weight_norm,
        )

    def set_step(self, step: int) -> None:
        """Forward the training step to the view encoding (coarse-to-fine annealing, if configured)."""
        if self.view_encoding is not None:
            self.view_encoding.set_step(step)

    def forward(
        self,
        points: Tensor,
        normals: Tensor,
        view_dirs: Tensor,
        feature: Tensor,
        latent: Tensor | None = None,
    ) -> Tensor:
        """Predict colour.

        Args:
            points: (N, 3) points (ignored unless ``use_points``).
            normals: (N, 3) normals or SDF gradients (ignored unless ``use_normals``).
            view_dirs: (N, 3) unit viewing directions (ignored unless ``use_view_dirs``).
            feature: (N, F) SDF feature vectors.
            latent: (N, latent_dim) or (1, latent_dim) per-frame code; required iff ``latent_dim > 0``.

        Returns:
            (N, 3) RGB in (0, 1).
        """
        n = feature.shape[0]
        if feature.shape[-1] != self.feature_dim:
            raise ValueError(
                f"ColorNetwork expects features of width {self.feature_dim}, found {tuple(feature.shape)}"
            )
        parts = []
        if self.cfg.use_points:
            parts.append(points)
        if self.cfg.use_normals:
            parts.append(normals)
        if self.view_encoding is not None:
            parts.append(self.view_encoding(view_dirs))
        if self.cfg.latent_dim > 0:
            if latent is None or latent.shape[-1] != self.cfg.latent_dim:
                found = "none" if latent is None else f"shape {tuple(latent.shape)}"
                raise ValueError(
                    f"ColorNetwork expects a latent code of width {self.cfg.latent_dim}, found {found}"
                )
            parts.append(latent.expand(n, -1))
        elif latent is not None:
            raise ValueError("ColorNetwork got a latent code but color.latent_dim is 0")
        parts.append(feature)
        return torch.sigmoid(self.mlp(torch.cat(parts, dim=-1)))
