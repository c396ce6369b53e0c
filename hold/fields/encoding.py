"""Input encodings behind one interface: Fourier features and the multiresolution hash grid.

Both optionally anneal coarse-to-fine (BARF, Lin et al., ICCV 2021, eq. 14): band (or level) k is
weighted by w_k(α) = (1 - cos(π · clamp(α - k, 0, 1))) / 2, with α growing linearly from 0 to the
number of bands over ``anneal_steps`` training steps after ``anneal_start``. HOLD anneals the object's
Fourier features this way; the training loop calls :meth:`Encoding.set_step` every step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hold.config.fields import EncodingConfig
from hold.fields.hashgrid import TorchHashGrid
from hold.utils.external import no_cuda, resolve_backend


def coarse_to_fine_weights(alpha: Tensor, num_bands: int) -> Tensor:
    """BARF window (eq. 14): (num_bands,) weights in [0, 1]; band k opens as α goes from k to k + 1."""
    k = torch.arange(num_bands, device=alpha.device, dtype=torch.float32)
    t = (alpha - k).clamp(0.0, 1.0)
    return (1.0 - torch.cos(t * math.pi)) / 2.0


class Encoding(nn.Module):
    """Base class: (N, input_dim) → (N, output_dim), raw input first when ``include_input``.

    Attributes:
        input_dim: D.
        output_dim: width of the encoding.
        passthrough_dim: number of leading output columns that are the raw input (D or 0); the
            SDF's geometric initialisation gives the remaining columns zero weight.
    """

    def __init__(self, cfg: EncodingConfig, input_dim: int, num_bands: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.include_input = cfg.include_input
        self.passthrough_dim = input_dim if cfg.include_input else 0
        self.num_bands = num_bands
        self.anneal_start = cfg.anneal_start
        self.anneal_steps = cfg.anneal_steps
        # Persistent so that a resumed run continues the annealing where it stopped.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def set_step(self, step: int) -> None:
        """Tell the encoding the current training step (drives coarse-to-fine annealing)."""
        self.step.fill_(int(step))

    @property
    def annealing(self) -> bool:
        return self.anneal_steps > 0 and self.num_bands > 0

    def alpha(self) -> Tensor:
        """Current α in [0, num_bands] (num_bands when annealing is off); a 0-d tensor."""
        if not self.annealing:
            return torch.tensor(float(self.num_bands), device=self.step.device)
        progress = (self.step.float() - self.anneal_start) / self.anneal_steps
        return progress.clamp(0.0, 1.0) * self.num_bands

    def band_weights(self) -> Tensor | None:
        """(num_bands,) coarse-to-fine weights, or ``None`` when annealing is off."""
        if not self.annealing:
            return None
        return coarse_to_fine_weights(self.alpha(), self.num_bands)


class FrequencyEncoding(Encoding):
    """NeRF positional encoding as HOLD writes it: [x, sin(2^0 x), cos(2^0 x), …, sin(2^(L-1) x), cos(2^(L-1) x)].

    Output width D · (include_input + 2L); within a band the D sines come before the D cosines.
    """

    def __init__(self, cfg: EncodingConfig, input_dim: int = 3) -> None:
        super().__init__(cfg, input_dim, num_bands=cfg.num_frequencies)
        self.output_dim = self.passthrough_dim + 2 * input_dim * cfg.num_frequencies
        self.register_buffer(
            "freqs", 2.0 ** torch.arange(cfg.num_frequencies, dtype=torch.float32), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, D) → (N, output_dim)."""
        parts = [x] if self.include_input else []
        if self.num_bands > 0:
            xf = x[:, None, :] * self.freqs.to(x.dtype)[:, None]  # (N, L, D)
            bands = torch.cat((torch.sin(xf), torch.cos(xf)), dim=-1)  # (N, L, 2D)
            w = self.band_weights()
            if w is not None:
                bands = bands * w.to(x.dtype)[:, None]
            parts.append(bands.reshape(x.shape[0], -1))
        return torch.cat(parts, dim=-1)


class HashGridEncoding(Encoding):
    """Multiresolution hash grid over a box (Instant-NGP), PyTorch or tinycudann behind ``backend``.

    Points are mapped from ``[bbox_min, bbox_max]`` to [0, 1]^D and clamped there. With annealing, the
    levels open one after the other (coarse to fine), as in Neuralangelo's progressive levels.
    """

    def __init__(self, cfg: EncodingConfig, input_dim: int = 3) -> None:
        super().__init__(cfg, input_dim, num_bands=cfg.num_levels)
        if len(cfg.bbox_min) != input_dim:
            raise ValueError(
                f"encoding.bbox_min/bbox_max have {len(cfg.bbox_min)} values but the input has {input_dim} dimensions"
            )
        self.backend = resolve_backend(
            cfg.backend,
            feature="hash-grid encoding",
            setting="backend",
            fallback="torch",
            accelerated="tcnn",
            package="tinycudann",
            blocker=no_cuda,
        )
        if self.backend == "tcnn":
            from hold.fields.tcnn_grid import TcnnHashGrid  # only imported where tinycudann exists

            self.grid: nn.Module = TcnnHashGrid(cfg, input_dim)
        else:
            self.grid = TorchHashGrid(cfg, input_dim)
        self.features_per_level = cfg.features_per_level
        self.output_dim = self.passthrough_dim + self.grid.output_dim
        self.register_buffer("bbox_min", torch.tensor(cfg.bbox_min, dtype=torch.float32), persistent=False)
        self.register_buffer(
            "bbox_size", torch.tensor(cfg.bbox_max, dtype=torch.float32) - self.bbox_min, persistent=False
        )

    def normalize(self, x: Tensor) -> Tensor:
        """(N, D) points → [0, 1]^D box coordinates, clamped."""
        return ((x - self.bbox_min.to(x.dtype)) / self.bbox_size.to(x.dtype)).clamp(0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        """(N, D) → (N, output_dim)."""
        feats = self.grid(self.normalize(x))
        w = self.band_weights()
        if w is not None:
            feats = (feats.view(x.shape[0], self.num_bands, -1) * w.to(feats.dtype)[:, None]).flatten(1)
        return torch.cat((x, feats), dim=-1) if self.include_input else feats


def build_encoding(cfg: EncodingConfig, input_dim: int = 3) -> Encoding:
    """The encoding named by ``cfg.type``."""
    if cfg.type == "frequency":
        return FrequencyEncoding(cfg, input_dim)
    if cfg.type == "hashgrid":
        return HashGridEncoding(cfg, input_dim)
    raise ValueError(f"encoding.type: {cfg.type!r} is not one of 'frequency', 'hashgrid'")
