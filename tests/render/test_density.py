from __future__ import annotations

import torch

from hold.config.render import DensityConfig
from hold.render.compositing import volume_weights
from hold.render.density import LaplaceDensity, laplace_density


def test_laplace_density_matches_the_laplace_cdf():
    beta = 0.05
    sdf = torch.linspace(-0.3, 0.3, 101, dtype=torch.float64)
    cdf = torch.distributions.Laplace(0.0, beta).cdf(-sdf)
    torch.testing.assert_close(laplace_density(sdf, beta), cdf / beta)
    assert laplace_density(torch.tensor(0.0), beta).item() == 1 / (2 * beta)


def test_beta_is_abs_param_plus_min_and_learnable():
    density = LaplaceDensity(DensityConfig(beta_init=0.2, beta_min=0.01))
    with torch.no_grad():
        density.beta.fill_(-0.2)  # an optimiser step may push the raw parameter below 0
    torch.testing.assert_close(density.get_beta(), torch.tensor(0.21))
    density(torch.tensor([0.0, 0.1, -0.1])).sum().backward()
    assert density.beta.grad is not None and density.beta.grad.abs() > 0


def test_flat_plane_is_opaque_at_its_depth():
    """d(x) = z0 − z (free space in front) along a ray hitting the plane orthogonally: opacity → 1, expected depth → z0."""
    z0, beta = 1.0, 0.002
    z = torch.linspace(0.0, 2.0, 4001, dtype=torch.float64)[None]
    weights, residual = volume_weights(
        z, laplace_density(z0 - z, beta), far=torch.tensor([2.0], dtype=z.dtype)
    )
    opacity = weights.sum(-1)
    assert abs(opacity.item() - 1.0) < 1e-6 and residual.item() < 1e-6
    depth = (weights * z).sum(-1) / opacity
    assert abs(depth.item() - z0) < beta  # Laplace density: the mean sits ≈ 0.34 β behind the surface
