"""SDF network: sphere initialisation, gradients (eikonal double backward), conditioning, skips."""

from __future__ import annotations

import pytest
import torch

from hold.config.fields import EncodingConfig, SDFNetworkConfig
from hold.fields.sdf import SDFNetwork

SMALL_HASH = EncodingConfig(
    type="hashgrid", num_levels=8, log2_hashmap_size=14, max_resolution=256, backend="torch"
)


def hash_cfg(**kw) -> SDFNetworkConfig:
    args = dict(encoding=SMALL_HASH, hidden_dim=64, num_layers=2, skip_layers=())
    args.update(kw)
    return SDFNetworkConfig(**args)


def shell_points(n: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    d = torch.randn(n, 3, generator=g)
    d = d / d.norm(dim=-1, keepdim=True)
    r = 0.2 + 0.8 * torch.rand(n, 1, generator=g)
    return d * r, d


@pytest.mark.parametrize(
    "cfg",
    [SDFNetworkConfig(), SDFNetworkConfig(weight_norm=False, init_radius=0.5), hash_cfg()],
    ids=["frequency-8x256", "frequency-no-weight-norm", "hashgrid-2x64"],
)
def test_geometric_init_is_a_sphere(cfg):
    torch.manual_seed(0)
    net = SDFNetwork(cfg)
    x, d = shell_points()
    out = net.sdf_and_gradient(x)
    target = x.norm(dim=-1, keepdim=True) - cfg.init_radius
    # SAL/IDR init is exact only in expectation over the weights; a finite-width draw deviates a little.
    assert (out.sdf - target).abs().mean() < 0.15
    assert torch.nn.functional.cosine_similarity(out.gradient, d, dim=-1).mean() > 0.9
    assert net.sdf(torch.zeros(1, 3)).item() < 0 < net.sdf(torch.full((1, 3), 1.5)).item()


def test_encoding_features_do_not_change_the_init():
    # Zero weights on every encoded column: the hash table's contents cannot move the initial SDF.
    torch.manual_seed(0)
    net = SDFNetwork(hash_cfg())
    x, _ = shell_points(64)
    before = net.sdf(x)
    with torch.no_grad():
        net.encoding.grid.table.uniform_(-1, 1)
    torch.testing.assert_close(net.sdf(x), before)


@pytest.mark.parametrize(
    "cfg",
    [SDFNetworkConfig(hidden_dim=64, num_layers=4, skip_layers=(2,)), hash_cfg()],
    ids=["frequency", "hashgrid"],
)
def test_gradient_is_the_autograd_derivative(cfg):
    torch.manual_seed(0)
    net = SDFNetwork(cfg).double()
    x = torch.rand(8, 3, dtype=torch.float64) - 0.5
    out = net.sdf_and_gradient(x)
    assert (
        out.sdf.shape == (8, 1) and out.feature.shape == (8, cfg.feature_dim) and out.gradient.shape == (8, 3)
    )
    eps = 1e-6
    for k in range(3):
        step = torch.zeros(3, dtype=torch.float64)
        step[k] = eps
        fd = (net.sdf(x + step) - net.sdf(x - step))[:, 0] / (2 * eps)
        torch.testing.assert_close(out.gradient[:, k], fd, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("geometric_init", [True, False])
def test_eikonal_loss_backpropagates_through_hashgrid(geometric_init):
    torch.manual_seed(0)
    net = SDFNetwork(hash_cfg(geometric_init=geometric_init))
    x = torch.rand(256, 3) * 2 - 1
    out = net.sdf_and_gradient(x, create_graph=True)
    loss = ((out.gradient.norm(dim=-1) - 1) ** 2).mean() + out.sdf.abs().mean() + out.feature.mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    first = net.mlp.layers[0].parametrizations.weight.original1.grad
    assert first[:, 3:].abs().sum() > 0  # the encoded columns learn, even from zero init
    if not geometric_init:
        assert net.encoding.grid.table.grad.abs().sum() > 0


def test_eikonal_loss_backpropagates_through_frequency_mlp():
    torch.manual_seed(0)
    net = SDFNetwork(SDFNetworkConfig(hidden_dim=64, num_layers=4, skip_layers=(2,)))
    x = torch.rand(64, 3) * 2 - 1
    out = net.sdf_and_gradient(x, create_graph=True)
    (((out.gradient.norm(dim=-1) - 1) ** 2).mean() + out.sdf.abs().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_gradient_without_create_graph_and_under_no_grad():
    net = SDFNetwork(hash_cfg())
    x = torch.rand(16, 3)
    out = net.sdf_and_gradient(x)  # default: no graph for the gradient, but sdf keeps its graph
    assert not out.gradient.requires_grad and out.sdf.requires_grad
    with torch.no_grad():
        out = net.sdf_and_gradient(x, create_graph=True)
    assert not (out.sdf.requires_grad or out.feature.requires_grad or out.gradient.requires_grad)


def test_gradient_keeps_the_graph_of_upstream_points():
    # Points that come out of a deformer: d sdf / d(deformer parameters) must still flow.
    net = SDFNetwork(hash_cfg())
    shift = torch.zeros(3, requires_grad=True)
    x = torch.rand(16, 3) + shift
    out = net.sdf_and_gradient(x, create_graph=True)
    (out.sdf.sum() + out.gradient.norm(dim=-1).sum()).backward()
    assert shift.grad is not None and shift.grad.abs().sum() > 0


def test_conditioning_code():
    torch.manual_seed(0)
    net = SDFNetwork(SDFNetworkConfig(hidden_dim=64, num_layers=3, skip_layers=(2,), cond_dim=5))
    x = torch.rand(10, 3)
    a = net(x, torch.zeros(1, 5))
    b = net(x, torch.randn(10, 5))
    torch.testing.assert_close(a.sdf, b.sdf)  # geometric init gives the code zero weight
    with pytest.raises(ValueError, match="conditioning code of width 5"):
        net(x)
    with pytest.raises(ValueError, match="cond_dim is 0"):
        SDFNetwork(SDFNetworkConfig(hidden_dim=32, num_layers=2, skip_layers=()))(x, torch.zeros(1, 5))


def test_skip_layer_widths_and_state_dict_roundtrip():
    cfg = SDFNetworkConfig(hidden_dim=64, num_layers=4, skip_layers=(2, 4), feature_dim=7)
    net = SDFNetwork(cfg)
    enc = net.encoding.output_dim
    assert [lin.out_features for lin in net.mlp.layers] == [64, 64 - enc, 64, 64 - enc, 8]
    other = SDFNetwork(cfg)
    other.load_state_dict(net.state_dict())
    x = torch.rand(4, 3)
    torch.testing.assert_close(other(x).feature, net(x).feature)


def test_skip_needs_room_for_the_input():
    with pytest.raises(ValueError, match="hidden_dim"):
        SDFNetwork(
            SDFNetworkConfig(
                hidden_dim=32, num_layers=4, skip_layers=(2,), encoding=EncodingConfig(num_frequencies=10)
            )
        )
