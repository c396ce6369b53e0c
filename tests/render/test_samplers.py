from __future__ import annotations

import pytest
import torch

from hold.config.render import BoundedSamplerConfig, SamplerConfig
from hold.render.rays import pixel_grid, pixel_rays, sphere_intersection
from hold.render.samplers import BoundedSampler, ErrorBoundedSampler, SampleQuery, build_sampler, sample_pdf

CENTER, RADIUS, BOUND = torch.tensor([0.0, 0.0, 2.0]), 0.5, 1.0


def sphere_sdf(points: torch.Tensor) -> torch.Tensor:
    return (points - CENTER).norm(dim=-1) - RADIUS


def scene(num_side: int = 8):
    """Rays through a grid of pixels that all hit a sphere of radius 0.5 at depth 2, its analytic hit
    depth, and the interval of a bounding sphere of radius 1."""
    pixels = pixel_grid(num_side, num_side) - (num_side - 1) / 2
    origins, dirs = pixel_rays(torch.tensor([[60.0, 0, 0], [0, 60.0, 0], [0, 0, 1]]), pixels)
    half_b = (dirs * (origins - CENTER)).sum(-1)
    disc = half_b**2 - (((origins - CENTER) ** 2).sum(-1) - RADIUS**2)
    assert torch.all(disc > 0)
    return origins, dirs, -half_b - disc.sqrt(), sphere_intersection(origins, dirs, CENTER, BOUND)


@pytest.mark.parametrize("perturb", [False, True])
def test_error_bounded_sampler_concentrates_on_the_surface(perturb: bool):
    origins, dirs, t_hit, iv = scene()
    beta = torch.tensor(0.01)
    out = ErrorBoundedSampler()(
        SampleQuery(sphere_sdf, origins, dirs, iv.near, iv.far, beta), perturb=perturb
    )
    assert out.z.shape == (64, 64 + 32 + 2) and out.z_eikonal.shape == (64, 1)
    assert torch.all(out.z[:, 1:] >= out.z[:, :-1])
    assert torch.all(out.z >= iv.near[:, None] - 1e-6) and torch.all(out.z <= iv.far[:, None] + 1e-6)
    # ε was met with the density's own β on every ray, and most samples are within a few β of the hit.
    torch.testing.assert_close(out.beta, beta.expand(64))
    near_surface = ((out.z - t_hit[:, None]).abs() < 5 * beta).float().mean()
    assert near_surface > 0.6


def test_error_bounded_sampler_handles_empty_intervals_and_is_deterministic():
    origins, dirs, _, iv = scene(4)
    near, far = iv.near.clone(), iv.far.clone()
    far[:3] = near[:3]  # rays that missed their bounding sphere
    sampler = ErrorBoundedSampler()
    a = sampler(SampleQuery(sphere_sdf, origins, dirs, near, far, 0.01))
    b = sampler(SampleQuery(sphere_sdf, origins, dirs, near, far, 0.01))
    assert torch.isfinite(a.z).all() and torch.equal(a.z, b.z)
    assert torch.all(a.z[:3] == near[:3, None])


def test_bounded_sampler_stays_in_the_interval_and_finds_the_surface():
    origins, dirs, t_hit, iv = scene()
    cfg = BoundedSamplerConfig(num_coarse=32, num_fine=64)
    gen = torch.Generator().manual_seed(0)
    out = BoundedSampler(cfg)(
        SampleQuery(sphere_sdf, origins, dirs, iv.near, iv.far, 1e-3), perturb=True, generator=gen
    )
    assert out.z.shape == (64, 96) and out.beta is None
    assert torch.all(out.z[:, 1:] >= out.z[:, :-1])
    assert torch.all(out.z >= iv.near[:, None]) and torch.all(out.z <= iv.far[:, None])
    spacing = (iv.far - iv.near) / (cfg.num_coarse - 1)
    near_surface = ((out.z - t_hit[:, None]).abs() < 3 * spacing[:, None]).float().mean()
    assert near_surface > 0.5  # 64 of the 96 samples are importance samples; uniform would give ~0.15


def test_bounded_sampler_says_which_depths_it_evaluated():
    """``evaluated`` points each returned depth at the coarse depth the SDF was evaluated at, or -1."""
    origins, dirs, _, iv = scene()
    seen = []

    def recording_sdf(points: torch.Tensor) -> torch.Tensor:
        seen.append(points)
        return sphere_sdf(points)

    cfg = BoundedSamplerConfig(num_coarse=16, num_fine=8)
    out = BoundedSampler(cfg)(
        SampleQuery(recording_sdf, origins, dirs, iv.near, iv.far, 1e-3),
        perturb=True,
        generator=torch.Generator().manual_seed(1),
    )
    assert len(seen) == 1 and out.evaluated.shape == out.z.shape
    assert ((out.evaluated >= 0).sum(-1) == cfg.num_coarse).all()  # each coarse depth once per ray
    ev = out.evaluated >= 0
    coarse_points = seen[0].gather(1, out.evaluated.clamp_min(0)[..., None].expand(-1, -1, 3))
    rendered = origins[:, None] + out.z[..., None] * dirs[:, None]
    assert torch.equal(coarse_points[ev], rendered[ev])


def test_build_sampler_and_sdf_shape_errors():
    assert isinstance(build_sampler(SamplerConfig(type="bounded")), BoundedSampler)
    assert isinstance(build_sampler(SamplerConfig()), ErrorBoundedSampler)
    origins, dirs, _, iv = scene(2)
    with pytest.raises(ValueError, match="sdf_fn returned shape"):
        BoundedSampler()(SampleQuery(lambda p: p, origins, dirs, iv.near, iv.far, 0.01))
    out = BoundedSampler()(
        SampleQuery(lambda p: sphere_sdf(p)[..., None], origins, dirs, iv.near, iv.far, 0.01)
    )
    assert out.z.shape == (4, 96)


def test_sample_pdf_follows_the_pdf():
    bins = torch.linspace(0.0, 1.0, 11).expand(3, 11)
    pdf = torch.zeros(3, 10)
    pdf[:, 7] = 1.0
    z = sample_pdf(bins, pdf, 50, perturb=True, generator=torch.Generator().manual_seed(1))
    assert torch.all((z >= 0.7 - 1e-6) & (z <= 0.8 + 1e-6)) and torch.all(z[:, 1:] >= z[:, :-1])
