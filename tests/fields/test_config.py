"""Field configs: HOLD defaults, strict loading, and clear errors for mistakes."""

from __future__ import annotations

import pytest

from hold.config import ConfigError, from_dict
from hold.config.fields import ColorNetworkConfig, EncodingConfig, SDFNetworkConfig


def test_defaults_are_holds():
    sdf, color = SDFNetworkConfig(), ColorNetworkConfig()
    assert (sdf.num_layers, sdf.hidden_dim, sdf.skip_layers, sdf.feature_dim) == (8, 256, (4,), 256)
    assert sdf.encoding.type == "frequency" and sdf.encoding.num_frequencies == 6
    assert sdf.geometric_init and sdf.weight_norm and sdf.init_radius == 0.6 and sdf.softplus_beta == 100
    assert (color.num_layers, color.hidden_dim, color.view_encoding.num_frequencies) == (8, 256, 4)


def test_loads_with_the_strict_loader():
    cfg = from_dict(
        SDFNetworkConfig,
        {
            "encoding": {"type": "hashgrid", "bbox_min": [-1, -1, -1], "num_levels": 8},
            "skip_layers": [],
            "num_layers": 2,
        },
    )
    assert (
        cfg.encoding.num_levels == 8 and cfg.skip_layers == () and cfg.encoding.bbox_min == (-1.0, -1.0, -1.0)
    )
    with pytest.raises(ConfigError, match="encoding.backend"):
        from_dict(SDFNetworkConfig, {"encoding": {"backend": "cuda"}})
    with pytest.raises(ConfigError, match="num_frequences"):
        from_dict(SDFNetworkConfig, {"encoding": {"num_frequences": 3}})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EncodingConfig(type="grid"), "EncodingConfig.type"),
        (
            lambda: EncodingConfig(type="hashgrid", max_resolution=8),
            r"max_resolution \(8\) must be >= base_resolution",
        ),
        (
            lambda: EncodingConfig(type="hashgrid", features_per_level=3),
            "features_per_level must be 1, 2, 4 or 8",
        ),
        (lambda: EncodingConfig(type="hashgrid", log2_hashmap_size=40), "log2_hashmap_size"),
        (
            lambda: EncodingConfig(type="hashgrid", bbox_min=(1.0, -1.0, -1.0)),
            "bbox_min .* must be below bbox_max",
        ),
        (
            lambda: EncodingConfig(type="hashgrid", bbox_min=(0.0, 0.0)),
            "bbox_min has 2 values but bbox_max has 3",
        ),
        (lambda: EncodingConfig(anneal_steps=-1), "anneal_steps"),
        (lambda: EncodingConfig(num_frequencies=0, include_input=False), "encodes nothing"),
        (lambda: SDFNetworkConfig(encoding=EncodingConfig(include_input=False)), "geometric_init needs"),
        (
            lambda: SDFNetworkConfig(skip_layers=(9,)),
            r"SDFNetworkConfig.skip_layers: 9 is not a layer index in \[1, 8\]",
        ),
        (lambda: SDFNetworkConfig(skip_layers=(0,)), "skip_layers: 0"),
        (lambda: SDFNetworkConfig(skip_layers=(4, 4)), "duplicate"),
        (lambda: SDFNetworkConfig(init_radius=0.0), "init_radius"),
        (
            lambda: SDFNetworkConfig(input_dim=4, encoding=EncodingConfig(type="hashgrid")),
            "bbox_min/bbox_max have 3 values but SDFNetworkConfig.input_dim is 4",
        ),
        (
            lambda: ColorNetworkConfig(view_encoding=EncodingConfig(type="hashgrid")),
            "ColorNetworkConfig.view_encoding.type",
        ),
        (lambda: ColorNetworkConfig(latent_dim=-1), "latent_dim"),
    ],
)
def test_mistakes_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
