"""Background field: NeRF++'s inverted-sphere parametrisation (Zhang et al. 2020, §4) with a per-frame code.

Outside the foreground sphere a point at distance r along a ray is described by (x / r, 1 / r), which
maps all of space out to infinity into a bounded 4-D domain. With the camera at the origin (docs/formats.md), x / r is the ray direction, so the field is a function of (direction, inverse depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hold.config.fields import BackgroundConfig
from hold.fields.encoding import FrequencyEncoding
from hold.fields.mlp import SkipMLP


@dataclass
class BackgroundSamples:
    """The background field along each ray: (R, S) depths (increasing), (R, S) densities, (R, S, 3) colours."""

    depth: Tensor
    sigma: Tensor
    rgb: Tensor


class BackgroundField(nn.Module):
    """Colour of each ray beyond the foreground, from a NeRF++ background field.

    Args:
        cfg: background config.
        num_frames: T, rows of the per-frame code table.
    """

    def __init__(self, cfg: BackgroundConfig, num_frames: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoding = FrequencyEncoding(cfg.encoding, 4)
        self.latents = nn.Embedding(num_frames, cfg.latent_dim)
        nn.init.zeros_(self.latents.weight)
        self.mlp = SkipMLP(
            in_dim=self.encoding.output_dim + cfg.latent_dim,
            out_dim=4,
            hidden_dim=cfg.hidden_dim,
            num_layers=cfg.num_layers,
            skip_layers=cfg.skip_layers,
            activation=nn.ReLU(),
            weight_norm=False,
            skip_dim=self.encoding.output_dim,
        )

    def forward(
        self,
        directions: Tensor,
        inner_depth: Tensor,
        frames: Tensor,
        perturb: bool = False,
        generator: torch.Generator | None = None,
    ) -> BackgroundSamples:
        """Render the background.

        Args:
            directions: (R, 3) unit ray directions (camera at the origin).
            inner_depth: (R,) depth where the background starts (beyond the foreground sphere).
            frames: (R,) frame index of each ray (selects the per-frame code).
            perturb: jitter the samples (training).
            generator: what the jitter is drawn from (the step's, so a resumed run draws the same numbers).

        Returns:
            The samples along each ray; ``hold.render.compositing.background_colour`` composites them.
        """
        R, S = directions.shape[0], self.cfg.num_samples
        # Inverse depth from 1/inner to ~0 (infinity), uniform: NeRF++ §4.
        u = torch.linspace(0.0, 1.0, S + 1, device=directions.device)[:-1].expand(R, S)
        if perturb:
            u = u + torch.rand(u.shape, generator=generator, device=u.device, dtype=u.dtype) / S
        inv = (1.0 - u) / inner_depth.clamp_min(1e-3)[:, None]  # (R, S), decreasing
        coords = torch.cat([directions[:, None].expand(R, S, 3), inv[..., None]], -1).reshape(-1, 4)
        latent = self.latents(frames)[:, None].expand(R, S, -1).reshape(R * S, -1)
        out = self.mlp(torch.cat([self.encoding(coords), latent], -1)).reshape(R, S, 4)
        sigma = torch.nn.functional.softplus(out[..., 0])
        rgb = torch.sigmoid(out[..., 1:])
        return BackgroundSamples(depth=1.0 / inv.clamp_min(1e-6), sigma=sigma, rgb=rgb)
