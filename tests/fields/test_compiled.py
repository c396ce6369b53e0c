"""The hash grid's compiled corner arithmetic: the eager results, the eikonal double backward kept eager,
small batches eager, and one warning with the eager results where compiling fails."""

from __future__ import annotations

import warnings

import pytest
import torch

import hold.fields.compiled as compiled
from hold.config.fields import EncodingConfig, SDFNetworkConfig
from hold.fields.compiled import CompileFallbackWarning, MaybeCompiled, eager_only
from hold.fields.hashgrid import TorchHashGrid, corner_rows_and_weights
from hold.fields.sdf import SDFNetwork

# The fast preset's grid (8 levels, 2^15 rows, dense and hashed levels).
FAST = dict(type="hashgrid", num_levels=8, log2_hashmap_size=15, base_resolution=8, max_resolution=256)


def _grids() -> tuple[TorchHashGrid, TorchHashGrid]:
    eager = TorchHashGrid(EncodingConfig(**FAST, compile="never"))
    fused = TorchHashGrid(EncodingConfig(**FAST, compile="cpu"))
    fused.load_state_dict(eager.state_dict())
    return eager, fused


def _compiled_or_skip(fn):
    """Run ``fn``; skip where this machine cannot compile (the fallback is tested separately)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompileFallbackWarning)
        out = fn()
    if any(issubclass(w.category, CompileFallbackWarning) for w in caught):
        pytest.skip(f"torch.compile does not work here: {caught[0].message}")
    return out


@pytest.mark.slow
def test_compiled_grid_gives_the_eager_features_and_gradients():
    eager, fused = _grids()
    x = torch.rand(3000, 3, generator=torch.Generator().manual_seed(0))
    results = []
    for grid in (eager, fused):
        xg = x.clone().requires_grad_(True)
        feats = _compiled_or_skip(lambda g=grid, xg=xg: g(xg))
        (feats * torch.linspace(-1, 1, feats.shape[1])).sum().backward()
        results.append((feats.detach(), xg.grad, grid.table.grad))
    (f0, gx0, gt0), (f1, gx1, gt1) = results
    assert torch.equal(f0, f1)  # same rows, same weights: the same features
    assert torch.allclose(gx0, gx1, rtol=1e-5, atol=1e-6) and gx0.abs().max() > 0
    assert torch.equal(gt0, gt1)
    with torch.no_grad():
        assert torch.equal(eager(x), fused(x))
    rows, _ = corner_rows_and_weights(
        x, eager.scales, eager.dense_strides, eager.sizes, eager.primes, eager.offsets, eager.num_dense,
        eager.hash_mask,
    )  # fmt: skip
    assert torch.equal(rows, fused._corners(x)[0])


@pytest.mark.slow
def test_eikonal_double_backward_runs_eager_under_a_compiled_grid():
    """sdf_and_gradient in training runs the eager code (compiled code cannot be differentiated twice):
    the eikonal loss backpropagates, with the same gradients as an all-eager network."""
    grads = []
    for mode in ("never", "cpu"):
        torch.manual_seed(0)
        cfg = SDFNetworkConfig(
            encoding=EncodingConfig(**FAST, backend="torch", compile=mode), hidden_dim=64, num_layers=2,
            skip_layers=(), geometric_init=False,
        )  # fmt: skip
        net = SDFNetwork(cfg)
        x = torch.rand(2048, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
        out = _compiled_or_skip(lambda net=net, x=x: net.sdf_and_gradient(x, create_graph=True))
        loss = ((out.gradient.norm(dim=-1) - 1) ** 2).mean() + out.sdf.abs().mean()
        loss.backward()
        grads.append(net.encoding.grid.table.grad.clone())
    assert torch.equal(grads[0], grads[1]) and grads[0].abs().sum() > 0


def test_eager_where_the_mode_batch_or_context_says_so():
    fn = MaybeCompiled(lambda x: x, "test function")
    big, small = torch.zeros(compiled._MIN_POINTS, 3), torch.zeros(compiled._MIN_POINTS - 1, 3)
    assert fn.use_compiled("cpu", big) and fn.use_compiled("always", big)
    assert not fn.use_compiled("never", big)
    assert not fn.use_compiled("cpu", small)
    with eager_only():
        with eager_only():
            assert not fn.use_compiled("cpu", big)
        assert not fn.use_compiled("cpu", big)  # still inside the outer block
    assert fn.use_compiled("cpu", big)


def test_a_failed_compile_warns_once_and_gives_the_eager_result(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("InductorError: no working C++ compiler\nmore detail")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(MaybeCompiled, "_failed", set())
    fn = MaybeCompiled(lambda x: x * 2, "doubling")
    x = torch.ones(compiled._MIN_POINTS, 3)
    with pytest.warns(CompileFallbackWarning, match=r"doubling: torch.compile failed \(InductorError: no "):
        assert torch.equal(fn("cpu", x), x * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, no second attempt
        assert torch.equal(fn("cpu", x), x * 2)
    assert not fn.use_compiled("cpu", x)


def test_compile_setting_is_checked():
    with pytest.raises(ValueError, match="compile: 'yes' is not one of 'never', 'cpu', 'always'"):
        EncodingConfig(**FAST, compile="yes")
