"""Multiresolution hash grid in pure PyTorch (Müller et al., "Instant Neural Graphics Primitives", 2022, §3).

Each level l has a grid of resolution N_l growing geometrically from ``base_resolution`` to
``max_resolution``. A point's feature at level l is the D-linear interpolation of the feature vectors
stored at the 2^D corners of its cell. Coarse levels whose grid fits into the table are indexed densely;
finer ones are indexed by the spatial hash h(x) = (⊕_i x_i π_i) mod T with π = (1, 2654435761,
805459861, …). Index arithmetic, level sizes and the parameter layout follow tinycudann's ``GridEncoding``
exactly, so a table can be moved between this implementation and the tcnn adapter unchanged.

Everything is vectorised over points, levels and corners; the per-dimension parts (corner coordinates,
hash terms, interpolation weights) are combined by broadcasting, so no (L, N, 2^D, D) tensor is built.
Interpolation is written with plain tensor ops, so it is differentiable twice with respect to the input
(the eikonal loss backpropagates through ∂features/∂x).

With ``encoding.compile`` the corner arithmetic (``corner_rows_and_weights``) runs through
``torch.compile``: one fused loop instead of a chain of small broadcast ops. Passes that are
differentiated twice, and small batches, run the same function eagerly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hold.config.fields import EncodingConfig
from hold.fields.compiled import MaybeCompiled
from hold.fields.interp import interpolate

# Instant-NGP / tinycudann hash primes, one per input dimension (tcnn's ``coherent_prime_hash``).
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
# tcnn pads every level's parameter count to a multiple of this (aligned memory access).
_TCNN_LEVEL_ALIGN = 8


@dataclass(frozen=True)
class GridLevel:
    """Geometry of one hash-grid level, as tinycudann lays it out."""

    scale: float
    """Input [0, 1] is mapped to grid coordinates ``x * scale + 0.5``."""
    resolution: int
    """Grid vertices per dimension (``ceil(scale) + 1``)."""
    size: int
    """Table rows of this level: ``min(next_multiple(resolution^D, 8), 2^log2_hashmap_size)``."""
    offset: int
    """First table row of this level."""
    hashed: bool
    """Whether corners are hashed (``resolution^D > size``) rather than indexed densely."""


def grid_levels(cfg: EncodingConfig, input_dim: int) -> list[GridLevel]:
    """Per-level scales, resolutions and table offsets, exactly as tinycudann computes them.

    tcnn counts ``base_resolution`` in grid vertices (hence the -1 in the scale) and computes the
    scale in float32: ``exp2(l * log2(per_level_scale)) * base_resolution - 1``.
    """
    f32 = np.float32
    log2_pls = f32(np.log2(f32(cfg.per_level_scale)))
    table_size = 1 << cfg.log2_hashmap_size
    levels, offset = [], 0
    for level in range(cfg.num_levels):
        scale = float(f32(np.exp2(f32(level) * log2_pls)) * f32(cfg.base_resolution) - f32(1.0))
        resolution = int(math.ceil(scale)) + 1
        dense = resolution**input_dim
        aligned = -(-dense // _TCNN_LEVEL_ALIGN) * _TCNN_LEVEL_ALIGN
        size = min(aligned, table_size)
        levels.append(GridLevel(scale, resolution, size, offset, hashed=dense > size))
        offset += size
    return levels


class TorchHashGrid(nn.Module):
    """Pure-PyTorch hash grid: (N, D) points in [0, 1]^D → (N, L·F) features (level-major, as tcnn).

    Args:
        cfg: encoding config (``type`` is not checked here).
        input_dim: D, at most 7.
        inference_chunk: points encoded at a time when no gradient is needed (a speed knob only;
            chunks of ~8k points measured ~30% faster on a CPU than one big batch).

    Attributes:
        table: (R, F) parameter, R = total rows over levels; row ``levels[l].offset + index``.
    """

    def __init__(self, cfg: EncodingConfig, input_dim: int = 3, inference_chunk: int = 8192) -> None:
        super().__init__()
        self.inference_chunk = inference_chunk
        self.compile = cfg.compile
        if not 1 <= input_dim <= len(HASH_PRIMES):
            raise ValueError(f"hash grid: input_dim must be in [1, {len(HASH_PRIMES)}], found {input_dim}")
        self.input_dim = input_dim
        self.num_levels = cfg.num_levels
        self.features_per_level = cfg.features_per_level
        self.output_dim = cfg.num_levels * cfg.features_per_level
        self.levels = grid_levels(cfg, input_dim)
        # Dense levels form a prefix: resolution grows with the level.
        self.num_dense = sum(not lv.hashed for lv in self.levels)
        rows = self.levels[-1].offset + self.levels[-1].size
        self.table = nn.Parameter(
            torch.empty(rows, cfg.features_per_level).uniform_(-cfg.init_scale, cfg.init_scale)
        )

        self.register_buffer("scales", torch.tensor([lv.scale for lv in self.levels]), persistent=False)
        self.register_buffer("offsets", torch.tensor([lv.offset for lv in self.levels]), persistent=False)
        self.register_buffer("sizes", torch.tensor([lv.size for lv in self.levels]), persistent=False)
        # Dense strides res^d per (dense level, dim); hash primes per dim.
        res = torch.tensor([lv.resolution for lv in self.levels[: self.num_dense]], dtype=torch.long)
        strides = res[:, None] ** torch.arange(input_dim)[None, :]
        self.register_buffer("dense_strides", strides, persistent=False)
        self.register_buffer(
            "primes", torch.tensor(HASH_PRIMES[:input_dim], dtype=torch.long), persistent=False
        )
        # For hashed levels the size is T = 2^k, so `mod T` is a bit mask.
        self.hash_mask = (1 << cfg.log2_hashmap_size) - 1

    def forward(self, x: Tensor) -> Tensor:
        """Encode points.

        Args:
            x: (N, D) points in [0, 1]^D (values outside are not clamped here).

        Returns:
            (N, L·F) features, level-major: ``out[:, l*F + f]``.
        """
        n, d = x.shape
        if d != self.input_dim:
            raise ValueError(
                f"hash grid expects points of dimension {self.input_dim}, found shape {tuple(x.shape)}"
            )
        needs_grad = torch.is_grad_enabled() and (self.table.requires_grad or x.requires_grad)
        if needs_grad or n <= self.inference_chunk:
            return self._encode(x)
        # Inference (ray sampling, meshing): chunks keep the (L, chunk, 2^D) index tensors in cache.
        return torch.cat([self._encode(chunk) for chunk in x.split(self.inference_chunk)])

    def _encode(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        rows, weights = self._corners(x)  # (L, N, 2^D) each
        corners = rows.shape[-1]
        out = interpolate(
            self.table, rows.view(-1, corners), weights.reshape(-1, corners).to(self.table.dtype)
        )
        return (
            out.view(self.num_levels, n, self.features_per_level).permute(1, 0, 2).reshape(n, self.output_dim)
        )

    def _corners(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Table rows (L, N, 2^D) int64 and D-linear weights (L, N, 2^D) of every cell corner."""
        return _CORNERS(
            self.compile,
            x,
            self.scales,
            self.dense_strides,
            self.sizes,
            self.primes,
            self.offsets,
            self.num_dense,
            self.hash_mask,
        )


def corner_rows_and_weights(
    x: Tensor,
    scales: Tensor,
    dense_strides: Tensor,
    sizes: Tensor,
    primes: Tensor,
    offsets: Tensor,
    num_dense: int,
    hash_mask: int,
) -> tuple[Tensor, Tensor]:
    """Table rows (L, N, 2^D) int64 and D-linear weights (L, N, 2^D) of every cell corner of (N, D)
    points, for the levels described by :class:`TorchHashGrid`'s buffers.

    Level-major, so each level's rows are contiguous (better cache use in the gather).
    """
    levels, (n, d) = scales.shape[0], x.shape
    pos = scales.to(x.dtype)[:, None, None] * x[None] + 0.5  # (L, N, D)
    cell = torch.floor(pos)
    frac = pos - cell  # ∂frac/∂x = scale; floor is piecewise constant
    # Per-dimension corner coordinates and weights, (L, N, D, 2): lower and upper vertex.
    corner = cell.long()[..., None] + torch.arange(2, device=x.device)
    weights = _combine(torch.stack((1.0 - frac, frac), dim=-1), torch.mul)

    rows = torch.empty((levels, n, 2**d), dtype=torch.long, device=x.device)
    nd = num_dense
    if nd > 0:
        # Dense: Σ_d c_d · res^d, mod the level size as tcnn does (it only wraps at the upper face).
        terms = corner[:nd] * dense_strides[:, None, :, None]
        torch.remainder(_combine(terms, torch.add), sizes[:nd, None, None], out=rows[:nd])
    if nd < levels:
        # Hashed (Instant-NGP eq. 4): ⊕_d c_d π_d mod T. T = 2^k, so masking each term first is exact
        # (and equals tcnn's uint32 arithmetic, whose low k bits are all that survive).
        terms = (corner[nd:] * primes[None, None, :, None]) & hash_mask
        rows[nd:] = _combine(terms, torch.bitwise_xor)
    rows += offsets[:, None, None]
    return rows, weights


# The corner arithmetic is a chain of small broadcast ops: compiled, it is one fused loop.
_CORNERS = MaybeCompiled(corner_rows_and_weights, "hash-grid corners")


def _combine(per_dim: Tensor, op) -> Tensor:
    """Combine per-dimension corner terms (L, N, D, 2) into all 2^D corners (L, N, 2^D) with ``op``.

    Corner c takes the upper vertex along dimension d when bit d of c is set (tcnn's ordering).
    """
    levels, n, d, _ = per_dim.shape
    out = per_dim[:, :, 0, :]  # dim 0 varies fastest
    for k in range(1, d):
        out = op(out[:, :, None, :], per_dim[:, :, k, :, None]).reshape(levels, n, 2 ** (k + 1))
    return out
