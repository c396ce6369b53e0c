"""tinycudann adapter: same parameters → same features and derivatives as the PyTorch hash grid.

Needs a CUDA GPU and tinycudann; skipped otherwise (the PyTorch path is tested everywhere).
"""

from __future__ import annotations

import pytest
import torch

from hold.config.fields import EncodingConfig, SDFNetworkConfig
from hold.fields.hashgrid import TorchHashGrid
from hold.fields.sdf import SDFNetwork
from hold.utils.external import is_available

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not (torch.cuda.is_available() and is_available("tinycudann")),
        reason="needs a CUDA GPU and tinycudann (pip install git+https://github.com/NVlabs/tiny-cuda-nn/#subdirectory=bindings/torch)",
    ),
]

CFG = EncodingConfig(
    type="hashgrid", num_levels=8, log2_hashmap_size=12, base_resolution=4, max_resolution=128, backend="tcnn"
)


def _pair():
    from hold.fields.tcnn_grid import TcnnHashGrid

    torch.manual_seed(0)
    ref = TorchHashGrid(CFG).cuda()
    with torch.no_grad():
        ref.table.uniform_(-1, 1)
    fast = TcnnHashGrid(CFG).cuda()
    with torch.no_grad():
        fast.encoding.params.copy_(ref.table.reshape(-1))
    return ref, fast


def test_same_features_as_torch():
    ref, fast = _pair()
    x = torch.rand(4096, 3, device="cuda")
    torch.testing.assert_close(fast(x), ref(x), atol=1e-4, rtol=1e-4)


def test_same_input_gradient_and_double_backward():
    ref, fast = _pair()
    x = torch.rand(1024, 3, device="cuda")
    grads = []
    for grid in (ref, fast):
        xr = x.clone().requires_grad_()
        y = grid(xr).pow(2).sum(-1, keepdim=True)
        (g,) = torch.autograd.grad(y, xr, torch.ones_like(y), create_graph=True)
        g.norm(dim=-1).mean().backward()
        table_grad = grid.table.grad if grid is ref else grid.encoding.params.grad.view_as(ref.table)
        grads.append((g.detach(), table_grad.clone()))
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(grads[1][1], grads[0][1], atol=1e-3, rtol=1e-3)


def test_sdf_network_with_tcnn_trains():
    net = SDFNetwork(SDFNetworkConfig(encoding=CFG, hidden_dim=64, num_layers=2, skip_layers=())).cuda()
    assert net.encoding.backend == "tcnn"
    out = net.sdf_and_gradient(torch.rand(512, 3, device="cuda") * 2 - 1, create_graph=True)
    (((out.gradient.norm(dim=-1) - 1) ** 2).mean() + out.sdf.abs().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
