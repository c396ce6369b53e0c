"""Configuration of HOLD-Net's nodes (HOLD §3.2, docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hold.config.fields import BackgroundConfig, ColorNetworkConfig, EncodingConfig, SDFNetworkConfig
from hold.utils.checks import at_least, fraction


@dataclass
class HandNodeConfig:
    sdf: SDFNetworkConfig = field(default_factory=SDFNetworkConfig)
    """Canonical hand SDF network; its input is the canonical point scaled into the unit sphere."""
    color: ColorNetworkConfig = field(default_factory=ColorNetworkConfig)
    """Hand colour network (no per-frame code: the hand's appearance is constant)."""
    sphere_margin: float = 0.02
    """Metres added to the posed hand mesh's bounding sphere to get the ray interval sampled."""
    sparsity_margin: float = 0.01
    """Rays whose distance to every posed hand vertex exceeds this (metres) count as far from the
    hand; their hand opacity is penalised (HOLD L_sparse)."""
    prior_bank_size: int = 20000
    """Canonical points with precomputed sealed-mesh SDF, drawn from for the hand SDF prior."""
    prior_near_surface_std: float = 0.005
    """Std (metres) of the offsets of the prior points drawn near the sealed mesh surface (HOLD's
    released code: 0.008; ours 0.005, a tighter band for the unclamped prior)."""
    prior_uniform_fraction: float = 0.25
    """Share of the prior points drawn uniformly in the canonical bounding box (HOLD's released code:
    0.166; ours 0.25: with no clamp, the uniform points carry the prior away from the hand)."""
    prior_box_padding: float = 0.1
    """That box is the sealed mesh's bounding box grown by this fraction of its size on each side."""
    prior_points_per_step: int = 2048
    """Prior-bank points evaluated per training step, for the SDF prior and the eikonal term."""
    prior_clamp: float = 0.0
    """Clamp both the predicted SDF and its target to ±this (metres) before the L1 of the SDF prior, so
    that only the band near the surface is supervised (HOLD's released code: 0.01). 0 (ours): no clamp,
    the prior also shapes the field away from the hand."""
    prior_subdivisions: int = 0
    """Loop subdivisions of the sealed hand mesh before the prior points and their targets are drawn
    (HOLD's released code: 1, on MANO's mesh). 0 (ours): the mesh as the hand model gives it."""

    def __post_init__(self) -> None:
        at_least(self, 0, "sphere_margin", "sparsity_margin", "prior_near_surface_std", "prior_box_padding")
        at_least(self, 0, "prior_clamp", "prior_subdivisions")
        at_least(self, 1, "prior_bank_size", "prior_points_per_step")
        fraction(self, "prior_uniform_fraction")


@dataclass
class ObjectNodeConfig:
    sdf: SDFNetworkConfig = field(
        default_factory=lambda: SDFNetworkConfig(
            encoding=EncodingConfig(num_frequencies=6, anneal_start=1000, anneal_steps=9000)
        )
    )
    """Canonical object SDF network, in the unit sphere of SEQUENCE ``object.points`` (HOLD anneals
    the object's frequencies coarse-to-fine)."""
    color: ColorNetworkConfig = field(default_factory=lambda: ColorNetworkConfig(latent_dim=32))
    """Object colour network with a per-frame code (``latent_dim``; HOLD: 32)."""
    sphere_radius: float = 1.0
    """Radius, in canonical units, of the object's bounding sphere (the SfM points are normalised to 1)."""
    sphere_margin: float = 0.1
    """Canonical units added to ``sphere_radius`` for the ray interval."""
    sparsity_margin: float = 0.01
    """Rays farther than this (metres) from every posed object-mesh vertex count as far from the object."""
    eikonal_points: int = 2048
    """Canonical points per step for the eikonal term: half uniform in the bounding ball, half near the
    current object mesh (or the SfM points before the first extraction)."""
    eikonal_surface_std: float = 0.02
    """Std (canonical units) of the offsets of the near-surface eikonal points."""

    def __post_init__(self) -> None:
        at_least(self, 0, "sphere_margin", "sparsity_margin", "eikonal_surface_std")
        at_least(self, 1, "eikonal_points")
        if not self.sphere_radius > 0:
            raise ValueError(f"sphere_radius must be > 0, found {self.sphere_radius}")


@dataclass
class ModelConfig:
    hand: HandNodeConfig = field(default_factory=HandNodeConfig)
    """The hand node(s); left and right share the settings, not the weights."""
    object: ObjectNodeConfig = field(default_factory=ObjectNodeConfig)
    """The object node."""
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    """NeRF++ background behind the foreground sphere."""
    background_margin: float = 0.05
    """Metres beyond the farthest foreground bound where the background starts."""
