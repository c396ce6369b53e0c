"""tinycudann adapter for the hash grid: the same hyper-parameters and the same parameter layout as
:class:`hold.fields.hashgrid.TorchHashGrid`, so tables can be copied between the two.

Only built by :class:`hold.fields.encoding.HashGridEncoding` when ``backend`` resolves to ``tcnn``
(tinycudann importable and CUDA available). Tested by ``@pytest.mark.gpu`` tests only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hold.config.fields import EncodingConfig
from hold.fields.hashgrid import grid_levels
from hold.utils.external import require


def tcnn_encoding_config(cfg: EncodingConfig) -> dict[str, Any]:
    """The tinycudann ``HashGrid`` config for these hyper-parameters (linear interpolation)."""
    return {
        "otype": "HashGrid",
        "n_levels": cfg.num_levels,
        "n_features_per_level": cfg.features_per_level,
        "log2_hashmap_size": cfg.log2_hashmap_size,
        "base_resolution": cfg.base_resolution,
        "per_level_scale": cfg.per_level_scale,
        "interpolation": "Linear",
        # XOR of coordinate × prime, prime_0 = 1: Instant-NGP's hash (tcnn's default, stated explicitly).
        "hash": "CoherentPrime",
    }


class TcnnHashGrid(nn.Module):
    """(N, D) points in [0, 1]^D → (N, L·F) float32 features, computed by tinycudann on the GPU.

    Attributes:
        params: tcnn's flat parameter vector, i.e. ``TorchHashGrid.table`` flattened row-major.
    """

    def __init__(self, cfg: EncodingConfig, input_dim: int = 3) -> None:
        super().__init__()
        tcnn = require("tinycudann", "hash-grid encoding with backend=tcnn")
        self.input_dim = input_dim
        self.features_per_level = cfg.features_per_level
        self.output_dim = cfg.num_levels * cfg.features_per_level
        self.encoding = tcnn.Encoding(input_dim, tcnn_encoding_config(cfg), dtype=torch.float32)
        levels = grid_levels(cfg, input_dim)
        rows = levels[-1].offset + levels[-1].size
        n_params = self.encoding.params.numel()
        if n_params != rows * cfg.features_per_level:
            # A tcnn version with a different layout: copying tables would silently be wrong.
            raise RuntimeError(
                f"tinycudann allocated {n_params} hash-grid parameters, but hold's layout expects "
                f"{rows * cfg.features_per_level}; this tinycudann version is not supported by the adapter"
            )
        self.rows = rows
        with torch.no_grad():
            self.encoding.params.uniform_(-cfg.init_scale, cfg.init_scale)

    @property
    def table(self) -> Tensor:
        """(R, F) view of the parameters, laid out as ``TorchHashGrid.table``."""
        return self.encoding.params.view(self.rows, self.features_per_level)

    def forward(self, x: Tensor) -> Tensor:
        """(N, D) in [0, 1]^D → (N, L·F)."""
        return self.encoding(x.contiguous()).to(x.dtype)
