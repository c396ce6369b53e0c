"""Configuration of the neural fields: input encodings, the SDF network and the colour network.

Defaults are HOLD's (Fan et al., CVPR 2024, built on VolSDF / Vid2Avatar): 8×256 MLPs with weight norm,
6 Fourier frequencies for points and 4 for view directions, a skip connection into the 5th layer and a
sphere of radius 0.6 as the initial surface. Each dataclass checks itself on construction, so a bad
value fails when the config is loaded, with a message that names the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hold.utils.checks import at_least, check


@dataclass
class EncodingConfig:
    """Input encoding: Fourier features (NeRF positional encoding) or a multiresolution hash grid."""

    type: Literal["frequency", "hashgrid"] = "frequency"
    """``frequency``: sin/cos of the input at octave-spaced frequencies (HOLD). ``hashgrid``: Instant-NGP
    multiresolution hash grid (Müller et al. 2022), much faster to train with a small MLP."""
    include_input: bool = True
    """Put the raw input in front of the encoded features. The SDF's geometric initialisation needs it."""
    num_frequencies: int = 6
    """frequency: number of octaves L; band k uses sin(2^k x) and cos(2^k x), k = 0..L-1 (HOLD: 6 for
    points, 4 for view directions)."""
    anneal_start: int = 0
    """Coarse-to-fine (BARF, Lin et al. 2021): training step at which the bands (frequency) or levels
    (hashgrid) start opening; before it only the raw input passes. HOLD's object: 1000."""
    anneal_steps: int = 0
    """Coarse-to-fine: number of steps over which all bands / levels open, one after the other; 0 turns
    annealing off (everything open from the start). HOLD's object: 9000 (fully open at step 10000)."""
    num_levels: int = 16
    """hashgrid: number of resolution levels L (Instant-NGP: 16)."""
    features_per_level: int = 2
    """hashgrid: feature channels F per level (Instant-NGP: 2; tinycudann accepts 1, 2, 4 or 8)."""
    log2_hashmap_size: int = 19
    """hashgrid: log2 of the table size T per level (Instant-NGP: 14–24, 19 by default)."""
    base_resolution: int = 16
    """hashgrid: grid resolution of the coarsest level (Instant-NGP: N_min = 16)."""
    max_resolution: int = 2048
    """hashgrid: resolution of the finest level; levels grow geometrically in between (Instant-NGP §3)."""
    bbox_min: tuple[float, ...] = (-1.0, -1.0, -1.0)
    """hashgrid: lower corner of the box mapped to [0, 1]^D (one value per input dimension); points
    outside are clamped to the box."""
    bbox_max: tuple[float, ...] = (1.0, 1.0, 1.0)
    """hashgrid: upper corner of that box."""
    init_scale: float = 1e-4
    """hashgrid: table entries start uniform in [-init_scale, init_scale] (Instant-NGP §4)."""
    backend: Literal["auto", "torch", "tcnn"] = "auto"
    """hashgrid implementation: ``torch`` (pure PyTorch, any device), ``tcnn`` (tinycudann, CUDA only,
    an error when missing) or ``auto`` (tinycudann when importable with CUDA, else torch with a warning)."""
    compile: Literal["never", "cpu", "always"] = "never"
    """hashgrid, torch backend: fuse the corner arithmetic with ``torch.compile`` (the same results, a
    faster step, after a one-off compile of up to ~30 s per process, a few seconds once inductor's
    on-disk cache holds it). ``cpu``: where the points are on the CPU; ``always``: any device (untested
    on CUDA); ``never``: eager PyTorch. Falls back to eager with one warning where compiling fails
    (e.g. no C++ compiler)."""

    def __post_init__(self) -> None:
        check(
            self.type in ("frequency", "hashgrid"),
            f"EncodingConfig.type: {self.type!r} is not one of 'frequency', 'hashgrid'",
        )
        check(
            self.backend in ("auto", "torch", "tcnn"),
            f"EncodingConfig.backend: {self.backend!r} is not one of 'auto', 'torch', 'tcnn'",
        )
        check(
            self.compile in ("never", "cpu", "always"),
            f"EncodingConfig.compile: {self.compile!r} is not one of 'never', 'cpu', 'always'",
        )
        check(self.anneal_start >= 0, f"EncodingConfig.anneal_start must be >= 0, found {self.anneal_start}")
        check(self.anneal_steps >= 0, f"EncodingConfig.anneal_steps must be >= 0, found {self.anneal_steps}")
        if self.type == "frequency":
            check(
                self.num_frequencies >= 0,
                f"EncodingConfig.num_frequencies must be >= 0, found {self.num_frequencies}",
            )
            check(
                self.include_input or self.num_frequencies > 0,
                "EncodingConfig: num_frequencies=0 with include_input=false encodes nothing",
            )
            return
        check(self.num_levels >= 1, f"EncodingConfig.num_levels must be >= 1, found {self.num_levels}")
        check(
            self.features_per_level in (1, 2, 4, 8),
            f"EncodingConfig.features_per_level must be 1, 2, 4 or 8 (as in tinycudann), found {self.features_per_level}",
        )
        check(
            4 <= self.log2_hashmap_size <= 30,
            f"EncodingConfig.log2_hashmap_size must be in [4, 30], found {self.log2_hashmap_size}",
        )
        check(
            self.base_resolution >= 2,
            f"EncodingConfig.base_resolution must be >= 2, found {self.base_resolution}",
        )
        check(
            self.max_resolution >= self.base_resolution,
            f"EncodingConfig.max_resolution ({self.max_resolution}) must be >= base_resolution ({self.base_resolution})",
        )
        check(
            self.num_levels > 1 or self.max_resolution == self.base_resolution,
            "EncodingConfig: a single level needs max_resolution == base_resolution",
        )
        check(
            len(self.bbox_min) == len(self.bbox_max),
            f"EncodingConfig.bbox_min has {len(self.bbox_min)} values but bbox_max has {len(self.bbox_max)}",
        )
        check(
            all(lo < hi for lo, hi in zip(self.bbox_min, self.bbox_max)),
            f"EncodingConfig: bbox_min {tuple(self.bbox_min)} must be below bbox_max {tuple(self.bbox_max)} in every dimension",
        )
        check(self.init_scale >= 0, f"EncodingConfig.init_scale must be >= 0, found {self.init_scale}")

    @property
    def per_level_scale(self) -> float:
        """Growth factor b between consecutive hash-grid levels: N_max = N_min · b^(L-1) (Instant-NGP eq. 3)."""
        if self.num_levels == 1:
            return 1.0
        return (self.max_resolution / self.base_resolution) ** (1.0 / (self.num_levels - 1))


@dataclass
class SDFNetworkConfig:
    """Signed-distance MLP with a feature output (IDR / VolSDF ``ImplicitNet``, as in HOLD)."""

    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    """Encoding of the input points."""
    input_dim: int = 3
    """Dimension of the input points (3; 4 for a NeRF++ inverted-sphere background)."""
    hidden_dim: int = 256
    """Width of every hidden layer (HOLD: 256)."""
    num_layers: int = 8
    """Number of hidden layers (HOLD: 8)."""
    skip_layers: tuple[int, ...] = (4,)
    """Indices l of the linear layers (0 = first, num_layers = output) whose input is concatenated with
    the encoded input, divided by sqrt(2) (IDR); layer l-1 then outputs hidden_dim minus the encoded
    width, so every layer keeps hidden_dim. HOLD: (4,)."""
    feature_dim: int = 256
    """Width of the feature vector output next to the SDF and passed to the colour network (HOLD: 256)."""
    cond_dim: int = 0
    """Width of an optional conditioning code (e.g. a per-frame latent) concatenated to the first layer's
    input; 0 = unconditioned (HOLD's hand and object SDFs). HOLD's background uses 32."""
    geometric_init: bool = True
    """Initialise so that the SDF starts as a sphere, sdf(x) ≈ |x| - init_radius (SAL, Atzmon & Lipman
    2020; IDR, Yariv et al. 2020). Needs ``encoding.include_input``."""
    init_radius: float = 0.6
    """Radius of that initial sphere, in the network's input units (HOLD: 0.6)."""
    weight_norm: bool = True
    """Weight-normalise every linear layer (Salimans & Kingma 2016), as HOLD does."""
    softplus_beta: float = 100.0
    """Sharpness β of the Softplus activations, a smooth ReLU whose second derivative is defined (the
    eikonal loss needs it). HOLD: 100."""

    def __post_init__(self) -> None:
        check(self.input_dim >= 1, f"SDFNetworkConfig.input_dim must be >= 1, found {self.input_dim}")
        check(self.hidden_dim >= 1, f"SDFNetworkConfig.hidden_dim must be >= 1, found {self.hidden_dim}")
        check(self.num_layers >= 1, f"SDFNetworkConfig.num_layers must be >= 1, found {self.num_layers}")
        check(self.feature_dim >= 0, f"SDFNetworkConfig.feature_dim must be >= 0, found {self.feature_dim}")
        check(self.cond_dim >= 0, f"SDFNetworkConfig.cond_dim must be >= 0, found {self.cond_dim}")
        check(
            self.softplus_beta > 0, f"SDFNetworkConfig.softplus_beta must be > 0, found {self.softplus_beta}"
        )
        check(self.init_radius > 0, f"SDFNetworkConfig.init_radius must be > 0, found {self.init_radius}")
        _check_skips(self.skip_layers, self.num_layers, "SDFNetworkConfig")
        check(
            not self.geometric_init or self.encoding.include_input,
            "SDFNetworkConfig.geometric_init needs encoding.include_input=true (the sphere is built from the raw "
            "point); set one of them differently",
        )
        if self.encoding.type == "hashgrid":
            check(
                len(self.encoding.bbox_min) == self.input_dim,
                f"SDFNetworkConfig.encoding.bbox_min/bbox_max have {len(self.encoding.bbox_min)} values but "
                f"SDFNetworkConfig.input_dim is {self.input_dim}",
            )


@dataclass
class ColorNetworkConfig:
    """Radiance MLP: (point, normal, view direction, SDF feature, per-frame code) → RGB in (0, 1)."""

    hidden_dim: int = 256
    """Width of every hidden layer (HOLD: 256)."""
    num_layers: int = 8
    """Number of hidden layers (HOLD paper: 8)."""
    skip_layers: tuple[int, ...] = ()
    """As ``sdf.skip_layers``, with the concatenated network input; none by default."""
    weight_norm: bool = True
    """Weight-normalise every linear layer, as HOLD does."""
    use_points: bool = True
    """Feed the (canonical) point position."""
    use_normals: bool = True
    """Feed the surface normal (the SDF gradient)."""
    normals_create_graph: bool = False
    """Keep the second-order graph of the normals fed to the network, so that the RGB loss also shapes
    the geometry through them (HOLD's released code does, in training). Ours: off, the normals are
    an input only; the double backward through the SDF network is the costliest part of a step."""
    use_view_dirs: bool = True
    """Feed the encoded viewing direction."""
    view_encoding: EncodingConfig = field(default_factory=lambda: EncodingConfig(num_frequencies=4))
    """Encoding of the viewing direction (HOLD: Fourier features with 4 frequencies); must be ``frequency``."""
    latent_dim: int = 0
    """Width of a per-frame latent code fed to the network; 0 = none. HOLD's object: 32."""

    def __post_init__(self) -> None:
        check(self.hidden_dim >= 1, f"ColorNetworkConfig.hidden_dim must be >= 1, found {self.hidden_dim}")
        check(self.num_layers >= 1, f"ColorNetworkConfig.num_layers must be >= 1, found {self.num_layers}")
        check(self.latent_dim >= 0, f"ColorNetworkConfig.latent_dim must be >= 0, found {self.latent_dim}")
        _check_skips(self.skip_layers, self.num_layers, "ColorNetworkConfig")
        check(
            self.view_encoding.type == "frequency",
            f"ColorNetworkConfig.view_encoding.type must be 'frequency', found {self.view_encoding.type!r}",
        )


def _check_skips(skips: tuple[int, ...], num_layers: int, where: str) -> None:
    for s in skips:
        check(
            isinstance(s, int) and 1 <= s <= num_layers,
            f"{where}.skip_layers: {s!r} is not a layer index in [1, {num_layers}] "
            f"(1 = second linear layer, {num_layers} = output layer)",
        )
    check(len(set(skips)) == len(skips), f"{where}.skip_layers: duplicate entries in {tuple(skips)}")


@dataclass
class BackgroundConfig:
    encoding: EncodingConfig = field(default_factory=lambda: EncodingConfig(num_frequencies=10))
    """Fourier features of the 4-D (direction, inverse depth) coordinate (NeRF++: 10 octaves)."""
    hidden_dim: int = 256
    """Width of the MLP (NeRF++ / HOLD: 256)."""
    num_layers: int = 8
    """Hidden layers of the MLP (NeRF++ / HOLD: 8)."""
    skip_layers: tuple[int, ...] = (4,)
    """Layers that receive the encoded input again."""
    latent_dim: int = 32
    """Width of the per-frame code that lets the background change over the video (HOLD: 32)."""
    num_samples: int = 32
    """Samples per ray, uniform in inverse depth between the foreground sphere and infinity."""

    def __post_init__(self) -> None:
        at_least(self, 1, "hidden_dim", "num_layers", "num_samples")
        at_least(self, 0, "latent_dim")
