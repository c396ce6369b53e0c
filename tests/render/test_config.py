from __future__ import annotations

import pytest

from hold.config import ConfigError, from_dict
from hold.config.render import RenderConfig
from hold.render.samplers import BoundedSampler, build_sampler


def test_render_config_loads_strictly():
    cfg = from_dict(
        RenderConfig,
        {"density": {"beta_init": 0.01}, "sampler": {"type": "bounded", "bounded": {"num_fine": 16}}},
    )
    assert cfg.density.beta_init == 0.01 and cfg.sampler.bounded.num_fine == 16
    assert isinstance(build_sampler(cfg.sampler), BoundedSampler)
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(RenderConfig, {"sampler": {"type": "uniform"}})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(RenderConfig, {"sampler": {"error_bounded": {"n_samples": 3}}})
