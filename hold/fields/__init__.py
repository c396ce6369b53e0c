"""Neural fields: input encodings (Fourier features, hash grid), SDF and colour networks."""

from __future__ import annotations

from hold.fields.color import ColorNetwork
from hold.fields.config import ColorNetworkConfig, EncodingConfig, SDFNetworkConfig
from hold.fields.encoding import (
    Encoding,
    FrequencyEncoding,
    HashGridEncoding,
    build_encoding,
    coarse_to_fine_weights,
)
from hold.fields.hashgrid import GridLevel, TorchHashGrid, grid_levels
from hold.fields.sdf import SDFGradientOutput, SDFNetwork, SDFOutput

__all__ = [
    "ColorNetwork",
    "ColorNetworkConfig",
    "Encoding",
    "EncodingConfig",
    "FrequencyEncoding",
    "GridLevel",
    "HashGridEncoding",
    "SDFGradientOutput",
    "SDFNetwork",
    "SDFNetworkConfig",
    "SDFOutput",
    "TorchHashGrid",
    "build_encoding",
    "coarse_to_fine_weights",
    "grid_levels",
]
