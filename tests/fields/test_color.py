"""Colour network: inputs, output range, per-frame latent code."""

from __future__ import annotations

import pytest
import torch

from hold.config.fields import ColorNetworkConfig
from hold.fields.color import ColorNetwork


def inputs(n: int = 6, f: int = 8):
    torch.manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    return torch.randn(n, 3), torch.randn(n, 3), dirs, torch.randn(n, f)


def test_default_is_hold_sized_and_outputs_rgb():
    net = ColorNetwork(ColorNetworkConfig(), feature_dim=256)
    assert len(net.mlp.layers) == 9 and net.mlp.layers[0].out_features == 256
    assert net.in_dim == 3 + 3 + (3 + 2 * 3 * 4) + 256
    p, n, d, _ = inputs()
    rgb = net(p, n, d, torch.randn(6, 256))
    assert rgb.shape == (6, 3) and torch.all((rgb > 0) & (rgb < 1))


def test_latent_code_is_used_and_checked():
    cfg = ColorNetworkConfig(hidden_dim=32, num_layers=2, latent_dim=4)
    net = ColorNetwork(cfg, feature_dim=8)
    p, n, d, f = inputs()
    a = net(p, n, d, f, torch.zeros(1, 4))  # one code broadcast over the points of a frame
    b = net(p, n, d, f, torch.ones(6, 4))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="latent code of width 4"):
        net(p, n, d, f)
    with pytest.raises(ValueError, match="latent_dim is 0"):
        ColorNetwork(ColorNetworkConfig(hidden_dim=32, num_layers=2), 8)(p, n, d, f, torch.zeros(1, 4))


def test_disabled_inputs_are_ignored():
    cfg = ColorNetworkConfig(hidden_dim=32, num_layers=2, use_points=False, use_view_dirs=False)
    net = ColorNetwork(cfg, feature_dim=8)
    assert net.in_dim == 3 + 8 and net.view_encoding is None
    p, n, d, f = inputs()
    torch.testing.assert_close(net(p, n, d, f), net(p * 0, n, d * 0, f))


def test_gradients_reach_features_and_normals():
    net = ColorNetwork(ColorNetworkConfig(hidden_dim=64, num_layers=2, skip_layers=(1,)), feature_dim=8)
    p, n, d, f = inputs()
    n.requires_grad_(), f.requires_grad_()
    net(p, n, d, f).sum().backward()
    assert n.grad.abs().sum() > 0 and f.grad.abs().sum() > 0


def test_wrong_feature_width():
    net = ColorNetwork(ColorNetworkConfig(hidden_dim=32, num_layers=2), feature_dim=8)
    p, n, d, _ = inputs()
    with pytest.raises(ValueError, match="features of width 8"):
        net(p, n, d, torch.zeros(6, 5))
