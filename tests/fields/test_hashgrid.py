"""The PyTorch hash grid against a deliberately naive reference, plus its derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hold.config.fields import EncodingConfig
from hold.fields.encoding import HashGridEncoding
from hold.fields.hashgrid import TorchHashGrid, grid_levels
from hold.fields.tcnn_grid import tcnn_encoding_config

PRIMES = (1, 2654435761, 805459861, 3674653429)


def small_cfg(**kw) -> EncodingConfig:
    # 2^9-row tables: in 3-D, levels with resolution <= 8 are dense (8^3 = 512), finer ones hashed.
    args = dict(
        type="hashgrid",
        num_levels=4,
        features_per_level=2,
        log2_hashmap_size=9,
        base_resolution=4,
        max_resolution=32,
        backend="torch",
    )
    args.update(kw)
    return EncodingConfig(**args)


def reference_encode(table: np.ndarray, cfg: EncodingConfig, x: np.ndarray) -> np.ndarray:
    """Instant-NGP / tinycudann grid encoding, one point, one level, one corner at a time."""
    D = x.shape[1]
    T = 2**cfg.log2_hashmap_size
    pls = (cfg.max_resolution / cfg.base_resolution) ** (1 / (cfg.num_levels - 1))
    # Level sizes and offsets (tcnn: dense size padded to a multiple of 8, capped at T).
    sizes, offsets, scales, res = [], [], [], []
    offset = 0
    for lvl in range(cfg.num_levels):
        s = float(
            np.float32(np.exp2(np.float32(lvl) * np.float32(np.log2(np.float32(pls)))))
            * np.float32(cfg.base_resolution)
            - np.float32(1)
        )
        r = math.ceil(s) + 1
        size = min(int(math.ceil(r**D / 8) * 8), T)
        scales.append(s), res.append(r), sizes.append(size), offsets.append(offset)
        offset += size
    out = np.zeros((len(x), cfg.num_levels * cfg.features_per_level))
    for i, p in enumerate(x):
        for lvl in range(cfg.num_levels):
            pos = [p[d] * scales[lvl] + 0.5 for d in range(D)]
            base = [math.floor(v) for v in pos]
            frac = [pos[d] - base[d] for d in range(D)]
            acc = np.zeros(cfg.features_per_level)
            for corner in range(2**D):
                c = [base[d] + ((corner >> d) & 1) for d in range(D)]
                w = 1.0
                for d in range(D):
                    w *= frac[d] if (corner >> d) & 1 else 1 - frac[d]
                if res[lvl] ** D <= sizes[lvl]:  # dense
                    idx = sum(c[d] * res[lvl] ** d for d in range(D)) % sizes[lvl]
                else:  # spatial hash in uint32 arithmetic
                    h = 0
                    for d in range(D):
                        h ^= (c[d] * PRIMES[d]) & 0xFFFFFFFF
                    idx = h % sizes[lvl]
                acc += w * table[offsets[lvl] + idx]
            out[i, lvl * cfg.features_per_level : (lvl + 1) * cfg.features_per_level] = acc
    return out


def test_levels_mix_dense_and_hashed():
    levels = grid_levels(small_cfg(), 3)
    assert [lv.hashed for lv in levels] == [False, False, True, True]
    assert [lv.resolution for lv in levels] == [4, 8, 16, 32]
    assert levels[-1].resolution == 32 and levels[0].offset == 0
    assert all(b.offset == a.offset + a.size for a, b in zip(levels, levels[1:]))


def test_default_grid_resolutions_grow_geometrically():
    levels = grid_levels(EncodingConfig(type="hashgrid"), 3)
    assert len(levels) == 16 and levels[0].resolution == 16 and levels[-1].resolution == 2048
    # tcnn counts vertices: scale_l + 1 = N_min · b^l.
    ratios = [(b.scale + 1) / (a.scale + 1) for a, b in zip(levels, levels[1:])]
    assert np.allclose(ratios, (2048 / 16) ** (1 / 15), rtol=1e-5)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
def test_matches_bruteforce_reference(grad):
    torch.manual_seed(0)
    cfg = small_cfg()
    grid = TorchHashGrid(cfg)
    with torch.no_grad():
        grid.table.uniform_(-1, 1)  # large values, so a wrong row or weight shows
    x = torch.rand(40, 3)
    # Corners and faces of the box: the dense index wraps at the upper face, as in tcnn.
    x[:4] = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.5], [0.999, 0.97, 0.01]])
    expected = reference_encode(grid.table.detach().double().numpy(), cfg, x.double().numpy())
    with torch.set_grad_enabled(grad):
        got = grid(x.requires_grad_(grad))
    assert got.shape == (40, cfg.num_levels * cfg.features_per_level)
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("dim", [2, 4])
def test_other_input_dimensions_match_reference(dim):
    torch.manual_seed(0)
    cfg = small_cfg(bbox_min=(-1.0,) * dim, bbox_max=(1.0,) * dim)
    grid = TorchHashGrid(cfg, input_dim=dim)
    assert 0 < grid.num_dense < cfg.num_levels  # both kinds of level are exercised
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.rand(16, dim)
    expected = reference_encode(grid.table.detach().double().numpy(), cfg, x.double().numpy())
    np.testing.assert_allclose(grid(x).detach().numpy(), expected, atol=1e-5)


def test_wrapper_maps_bbox_and_clamps():
    torch.manual_seed(0)
    cfg = small_cfg(bbox_min=(-2.0, 0.0, 1.0), bbox_max=(2.0, 1.0, 3.0), include_input=True)
    enc = HashGridEncoding(cfg)
    x = torch.tensor([[-2.0, 0.0, 1.0], [0.0, 0.5, 2.0], [5.0, 9.0, 9.0]])
    out = enc(x)
    assert out.shape == (3, 3 + 8) and enc.output_dim == 11
    torch.testing.assert_close(out[:, :3], x)
    unit = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    torch.testing.assert_close(out[:, 3:], enc.grid(unit))


def test_first_and_second_derivatives_wrt_points():
    torch.manual_seed(0)
    grid = TorchHashGrid(small_cfg(num_levels=3, max_resolution=16)).double()
    with torch.no_grad():
        grid.table.normal_()
    x = (torch.rand(6, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(grid, (x,))
    assert torch.autograd.gradgradcheck(grid, (x,))


def test_eikonal_double_backward_reaches_table():
    torch.manual_seed(0)
    grid = TorchHashGrid(small_cfg())
    x = torch.rand(64, 3, requires_grad=True)
    y = (grid(x) ** 2).sum(-1, keepdim=True)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)
    ((g.norm(dim=-1) - 1) ** 2).mean().backward()
    assert grid.table.grad is not None and torch.isfinite(grid.table.grad).all()
    assert grid.table.grad.abs().sum() > 0


def test_table_gradient_matches_finite_difference():
    torch.manual_seed(0)
    grid = TorchHashGrid(small_cfg())
    x = torch.rand(32, 3)
    grid(x).pow(2).sum().backward()
    # d/dtable of Σ out² = scatter of 2·out·w; compare with finite differences on one touched row.
    row = int(grid.table.grad.abs().sum(-1).argmax())
    eps = 1e-3
    with torch.no_grad():
        base = grid(x).pow(2).sum()
        grid.table[row, 0] += eps
        bumped = grid(x).pow(2).sum()
    assert abs((bumped - base).item() / eps - grid.table.grad[row, 0].item()) < 1e-2


def test_tcnn_config_has_the_same_hyper_parameters():
    cfg = small_cfg(num_levels=8, log2_hashmap_size=12, max_resolution=128)
    tc = tcnn_encoding_config(cfg)
    assert tc["otype"] == "HashGrid" and tc["n_levels"] == 8 and tc["log2_hashmap_size"] == 12
    assert tc["n_features_per_level"] == 2 and tc["interpolation"] == "Linear"
    assert abs(tc["base_resolution"] * tc["per_level_scale"] ** 7 - 128) < 1e-3


def test_chunked_inference_matches_one_batch():
    torch.manual_seed(0)
    grid = TorchHashGrid(small_cfg())
    x = torch.rand(50, 3)
    with torch.no_grad():
        whole = grid(x)
        grid.inference_chunk = 7
        torch.testing.assert_close(grid(x), whole)


def test_eikonal_gradients_match_plain_autograd():
    # The custom gather (hold.fields.interp) against the same interpolation written with plain ops.
    torch.manual_seed(0)
    grid = TorchHashGrid(small_cfg()).double()
    with torch.no_grad():
        grid.table.normal_()
    head = torch.randn(grid.output_dim, 1, dtype=torch.float64)

    def plain(x):
        rows, w = grid._corners(x)
        feats = grid.table.index_select(0, rows.reshape(-1)).view(*rows.shape, -1)
        return (w[..., None] * feats).sum(2).permute(1, 0, 2).reshape(len(x), -1)

    points = torch.rand(64, 3, dtype=torch.float64)
    results = []
    for encode in (grid, plain):
        grid.table.grad = None
        x = points.clone().requires_grad_()
        y = torch.tanh(encode(x)) @ head
        (g,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)
        (((g.norm(dim=-1) - 1) ** 2).mean() + y.square().mean()).backward()
        results.append((g.detach(), grid.table.grad.clone(), x.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
