"""Configuration of volume rendering: SDF → density (VolSDF), ray samplers, compositing.

Lengths (β, ray depths) are in the units of the space the rays are marched in. VolSDF's and HOLD's
defaults below (β = 0.1, ε = 0.1, 128/64/32 samples) assume a scene normalised to a bounding sphere of
a few units; a caller that marches rays in metres around a hand must scale ``beta_init`` accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hold.utils.checks import at_least, positive


@dataclass
class DensityConfig:
    """Laplace-CDF density σ(x) = α Ψ_β(−d(x)), α = 1/β (VolSDF Eq. 2–3), one learnable β per node."""

    beta_init: float = 0.1
    """Initial value of the learnable β parameter (VolSDF / HOLD: 0.1)."""
    beta_min: float = 1e-4
    """Floor added to |β_param| so that β never reaches 0 (VolSDF / HOLD: 1e-4)."""

    def __post_init__(self) -> None:
        positive(self, "beta_init", "beta_min")


@dataclass
class ErrorBoundedSamplerConfig:
    """VolSDF's error-bounded sampler (VolSDF §3.4, Algorithm 1); defaults are VolSDF's / HOLD's."""

    num_init: int = 128
    """Uniform samples per ray at the start, and samples added per upsampling iteration
    (VolSDF ``N_samples_eval``)."""
    num_final: int = 64
    """Samples drawn by inverse-CDF from the final opacity (VolSDF ``N_samples``)."""
    num_extra: int = 32
    """Samples kept from the upsampled set and added to the final ones (VolSDF ``N_samples_extra``);
    they keep some coverage of the whole interval, e.g. for the eikonal term."""
    include_bounds: bool = True
    """Add the ray's near and far depths to the final set (VolSDF does), so the samples span the interval."""
    eps: float = 0.1
    """Target bound ε on the opacity error of the sample set (VolSDF Theorem 1)."""
    max_iters: int = 5
    """Maximum upsampling iterations of Algorithm 1 (VolSDF ``max_total_iters``)."""
    bisection_steps: int = 10
    """Bisection steps of the per-ray search for the smallest β that meets ε (VolSDF ``beta_iters``)."""
    pdf_tiny: float = 1e-6
    """Added to the error-bound pdf before upsampling, so rays with a zero bound still sample
    (HOLD ``add_tiny``)."""
    pdf_floor: float = 1e-5
    """Added to the final opacity pdf, so empty rays sample the whole interval (VolSDF)."""
    num_eikonal: int = 1
    """Depths per ray picked at random from the final set for the eikonal term (VolSDF: 1)."""

    def __post_init__(self) -> None:
        at_least(self, 1, "num_init", "num_final", "max_iters", "bisection_steps")
        at_least(self, 0, "num_extra", "num_eikonal")
        positive(self, "eps", "pdf_tiny", "pdf_floor")


@dataclass
class BoundedSamplerConfig:
    """Cheaper sampler: coarse uniform samples in the bounding-sphere interval, one SDF evaluation,
    importance resampling of the coarse opacity with the current β, merged with the coarse samples."""

    num_coarse: int = 64
    """Stratified uniform samples per ray in the ray's [near, far] interval."""
    num_fine: int = 32
    """Samples drawn by inverse-CDF of the coarse opacity and merged with the coarse ones."""
    beta_floor_spacing: float = 1.0
    """The β used for the coarse opacity is at least this many coarse spacings, so that a surface
    crossed between two coarse samples still attracts fine samples when the learned β is much smaller
    (0 uses the learned β as is)."""
    pdf_floor: float = 1e-5
    """Added to the coarse opacity pdf, so empty rays sample the whole interval."""
    num_eikonal: int = 1
    """Depths per ray picked at random from the final set for the eikonal term."""

    def __post_init__(self) -> None:
        at_least(self, 1, "num_coarse")
        at_least(self, 0, "num_fine", "num_eikonal")
        positive(self, "beta_floor_spacing", "pdf_floor")


@dataclass
class SamplerConfig:
    type: Literal["error_bounded", "bounded"] = "error_bounded"
    """``error_bounded``: VolSDF's Algorithm 1 (HOLD's choice; several SDF evaluations per ray).
    ``bounded``: one coarse SDF evaluation + importance resampling (faster)."""
    error_bounded: ErrorBoundedSamplerConfig = field(default_factory=ErrorBoundedSamplerConfig)
    """Settings used when ``type`` is ``error_bounded``."""
    bounded: BoundedSamplerConfig = field(default_factory=BoundedSamplerConfig)
    """Settings used when ``type`` is ``bounded``."""


@dataclass
class RenderConfig:
    density: DensityConfig = field(default_factory=DensityConfig)
    """SDF → density conversion (one learnable β per node)."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Depth sampling along each ray, per node."""
