"""Depth samplers along rays for SDF volume rendering, vectorised over rays.

* :class:`ErrorBoundedSampler` — VolSDF's Algorithm 1 (§3.4): uniform samples, per-ray bisection for
  the smallest β whose opacity error bound (Theorem 1) is ≤ ε, upsampling proportional to the bound,
  final inverse-CDF sampling of the opacity. HOLD (and Vid2Avatar) use it for every node.
* :class:`BoundedSampler` — coarse stratified samples in the bounding-sphere interval, one SDF
  evaluation, importance resampling of the coarse opacity with the current β.

Both evaluate the SDF without gradients (sampling only places depths; the renderer re-evaluates the
field with gradients at the returned depths) and return sorted depths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from hold.config.render import BoundedSamplerConfig, ErrorBoundedSamplerConfig, SamplerConfig
from hold.render.density import laplace_density
from hold.render.rays import ray_points

SdfFn = Callable[[Tensor], Tensor]
"""Signed distance of points (R, S, 3) → (R, S) (or (R, S, 1)), in the space the rays live in."""

_CDF_EPS = 1e-5  # numerical: a CDF step below this is treated as flat (avoids 0/0 in the inversion)
_BOUND_CLAMP = 1e6  # numerical: exp(error integral) is clamped to this to avoid inf (VolSDF)


@dataclass
class RaySamples:
    """Output of a sampler.

    Attributes:
        z: (R, S) sorted depths for volume rendering.
        z_eikonal: (R, E) depths picked among ``z`` for the eikonal term.
        beta: (R,) the β the error-bounded sampler ended with per ray (≥ the density's β; equal where
            ε was met), or ``None`` for samplers without a β search. For logging.
        evaluated: (R, S) for each depth of ``z``, its column in the depths of the sampler's first
            ``sdf_fn`` call (−1 where that call did not evaluate it), so a node can reuse what it computed
            there; ``None`` when the sampler does not say.
    """

    z: Tensor
    z_eikonal: Tensor
    beta: Tensor | None = None
    evaluated: Tensor | None = None


@dataclass
class SampleQuery:
    """Where to place samples: a node's SDF along rays, within an interval.

    Attributes:
        sdf_fn: signed distance of points (R, S, 3) → (R, S); called without grad.
        origins: (R, 3). directions: (R, 3). near: (R,). far: (R,).
        beta: the density's current β (scalar).
    """

    sdf_fn: SdfFn
    origins: Tensor
    directions: Tensor
    near: Tensor
    far: Tensor
    beta: Tensor | float


class Sampler(Protocol):
    def __call__(
        self, query: SampleQuery, perturb: bool = False, generator: torch.Generator | None = None
    ) -> RaySamples: ...


def build_sampler(cfg: SamplerConfig) -> ErrorBoundedSampler | BoundedSampler:
    """The sampler selected by ``cfg.type``."""
    if cfg.type == "error_bounded":
        return ErrorBoundedSampler(cfg.error_bounded)
    if cfg.type == "bounded":
        return BoundedSampler(cfg.bounded)
    raise ValueError(f"sampler.type: {cfg.type!r} is not one of 'error_bounded', 'bounded'")


def uniform_depths(
    near: Tensor, far: Tensor, num: int, perturb: bool, generator: torch.Generator | None = None
) -> Tensor:
    """``num`` depths from near to far (both included), each jittered within its stratum if ``perturb``.

    Args:
        near: (R,). far: (R,).

    Returns:
        (R, num) sorted depths in [near, far].
    """
    t = torch.linspace(0.0, 1.0, num, device=near.device, dtype=near.dtype)
    z = near[:, None] + (far - near)[:, None] * t
    if perturb and num > 1:
        mids = 0.5 * (z[:, 1:] + z[:, :-1])
        lower = torch.cat([z[:, :1], mids], -1)
        upper = torch.cat([mids, z[:, -1:]], -1)
        z = lower + (upper - lower) * _rand(z.shape, z, generator)
    return z


def sample_pdf(
    bins: Tensor, pdf: Tensor, num: int, perturb: bool, generator: torch.Generator | None = None
) -> Tensor:
    """Inverse-CDF sampling of a piecewise-constant pdf over intervals.

    Args:
        bins: (R, B) sorted interval edges.
        pdf: (R, B-1) non-negative mass per interval (normalised here; each row needs a positive sum).
        num: samples per ray.
        perturb: random quantiles; otherwise evenly spaced ones in [0, 1].

    Returns:
        (R, num) depths, sorted (the quantiles are sorted and the inverse CDF is monotone).
    """
    pdf = pdf / pdf.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)  # (R, B)
    if perturb:
        u = torch.sort(_rand((cdf.shape[0], num), cdf, generator), -1).values
    else:
        u = torch.linspace(0.0, 1.0, num, device=cdf.device, dtype=cdf.dtype).expand(cdf.shape[0], num)
    u = u.contiguous()
    idx = torch.searchsorted(cdf, u, right=True)
    below = (idx - 1).clamp_min(0)
    above = idx.clamp_max(cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(1, below), cdf.gather(1, above)
    bin_lo, bin_hi = bins.gather(1, below), bins.gather(1, above)
    denom = cdf_hi - cdf_lo
    denom = torch.where(denom < _CDF_EPS, torch.ones_like(denom), denom)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)


def opacity_weights(z: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """Rectangle-rule weights with the last interval open-ended (used only to place samples).

    Args:
        z: (R, S) sorted depths. sigma: (R, S) densities at ``z``.

    Returns:
        weights (R, S) and transmittance (R, S) at each sample (VolSDF §3.3 rectangle rule).
    """
    free = torch.cat([(z[:, 1:] - z[:, :-1]) * sigma[:, :-1], torch.full_like(z[:, :1], math.inf)], -1)
    free = free.clamp_min(0)
    transmittance = torch.exp(-torch.cumsum(torch.cat([torch.zeros_like(free[:, :1]), free[:, :-1]], -1), -1))
    return (1.0 - torch.exp(-free)) * transmittance, transmittance


class ErrorBoundedSampler:
    """VolSDF's error-bounded sampler (VolSDF §3.4, Algorithm 1; also HOLD's and Vid2Avatar's).

    Args:
        cfg: sample counts, ε, iteration and bisection budgets.
    """

    def __init__(self, cfg: ErrorBoundedSamplerConfig | None = None) -> None:
        self.cfg = cfg or ErrorBoundedSamplerConfig()

    @torch.no_grad()
    def __call__(
        self, query: SampleQuery, perturb: bool = False, generator: torch.Generator | None = None
    ) -> RaySamples:
        """Sample depths on each ray.

        Args:
            query: the SDF, the rays and their interval, and the density's current β (the search
                never goes below it).
            perturb: stratified initial samples, random final quantiles and random extra/eikonal
                picks (training); otherwise deterministic (evaluation).
            generator: optional random generator (on the rays' device) for reproducibility.

        Returns:
            :class:`RaySamples` with ``num_final + num_extra (+ 2 with include_bounds)`` sorted depths.
        """
        cfg = self.cfg
        q, near, far = query, query.near, query.far
        beta0 = torch.as_tensor(q.beta, dtype=near.dtype, device=near.device).detach().reshape(())
        z = uniform_depths(near, far, cfg.num_init, perturb, generator)
        sdf = _eval_sdf(q.sdf_fn, q.origins, q.directions, z)

        # Lemma 2: with this β the bound holds for any SDF, so it is the upper end of the search.
        dists = z[:, 1:] - z[:, :-1]
        beta_hi = torch.sqrt((dists**2).sum(-1) / (4.0 * math.log1p(cfg.eps))).clamp_min(beta0)

        for it in range(cfg.max_iters):
            dists = z[:, 1:] - z[:, :-1]
            d_star = _d_star(dists, sdf)
            beta_hi = torch.where(self._error_bound(beta0, sdf, dists, d_star) <= cfg.eps, beta0, beta_hi)
            beta_lo = beta0.expand_as(beta_hi)
            for _ in range(cfg.bisection_steps):
                mid = 0.5 * (beta_lo + beta_hi)
                ok = self._error_bound(mid[:, None], sdf, dists, d_star) <= cfg.eps
                beta_hi = torch.where(ok, mid, beta_hi)
                beta_lo = torch.where(ok, beta_lo, mid)
            converged = bool((beta_hi <= beta0).all())
            if converged or it == cfg.max_iters - 1:
                break
            # Upsample where the error bound is large (VolSDF Algorithm 1, with the current β).
            b = beta_hi[:, None]
            _, transmittance = opacity_weights(z, laplace_density(sdf, b))
            error = torch.cumsum(torch.exp(-d_star / b) * dists**2 / (4 * b**2), -1)
            bound = (torch.exp(error).clamp(max=_BOUND_CLAMP) - 1.0) * transmittance[:, :-1]
            z_new = sample_pdf(z, bound + cfg.pdf_tiny, cfg.num_init, perturb=False)
            sdf_new = _eval_sdf(q.sdf_fn, q.origins, q.directions, z_new)
            z, order = torch.sort(torch.cat([z, z_new], -1), -1)
            sdf = torch.cat([sdf, sdf_new], -1).gather(1, order)

        # Final samples from the opacity with the β found (VolSDF: pdf = weights of the intervals).
        weights, _ = opacity_weights(z, laplace_density(sdf, beta_hi[:, None]))
        z_final = sample_pdf(z, weights[:, :-1] + cfg.pdf_floor, cfg.num_final, perturb, generator)
        parts = [z_final]
        if cfg.include_bounds:
            parts += [near[:, None], far[:, None]]
        if cfg.num_extra > 0:
            parts.append(z[:, _pick_columns(z.shape[1], cfg.num_extra, perturb, z.device, generator)])
        z_out = torch.sort(torch.cat(parts, -1), -1).values
        return RaySamples(
            z=z_out,
            z_eikonal=_pick_per_ray(z_out, cfg.num_eikonal, perturb, generator),
            beta=beta_hi,
        )

    @staticmethod
    def _error_bound(beta: Tensor, sdf: Tensor, dists: Tensor, d_star: Tensor) -> Tensor:
        """Max over the ray of VolSDF's opacity error bound (Theorem 1), per ray (R,).

        Args:
            beta: scalar or (R, 1). sdf: (R, S). dists: (R, S-1). d_star: (R, S-1).
        """
        sigma = laplace_density(sdf, beta)
        integral = torch.cumsum(torch.cat([torch.zeros_like(dists[:, :1]), dists * sigma[:, :-1]], -1), -1)
        error = torch.cumsum(torch.exp(-d_star / beta) * dists**2 / (4 * beta**2), -1)
        bound = (torch.exp(error).clamp(max=_BOUND_CLAMP) - 1.0) * torch.exp(-integral[:, :-1])
        return bound.max(-1).values


class BoundedSampler:
    """Coarse stratified samples in [near, far], one SDF evaluation, importance resampling.

    The fine samples follow the coarse opacity with β' = max(β, ``beta_floor_spacing`` × spacing),
    and are merged with the coarse ones, so the interval stays covered.

    Args:
        cfg: sample counts and the β floor.
    """

    def __init__(self, cfg: BoundedSamplerConfig | None = None) -> None:
        self.cfg = cfg or BoundedSamplerConfig()

    @torch.no_grad()
    def __call__(
        self, query: SampleQuery, perturb: bool = False, generator: torch.Generator | None = None
    ) -> RaySamples:
        """Sample depths on each ray; the arguments are those of :meth:`ErrorBoundedSampler.__call__`.

        Returns:
            :class:`RaySamples` with ``num_coarse + num_fine`` sorted depths, all in [near, far].
        """
        cfg, q = self.cfg, query
        z = uniform_depths(q.near, q.far, cfg.num_coarse, perturb, generator)
        sdf = _eval_sdf(q.sdf_fn, q.origins, q.directions, z)
        spacing = (q.far - q.near) / max(cfg.num_coarse - 1, 1)
        beta0 = torch.as_tensor(q.beta, dtype=z.dtype, device=z.device).detach()
        beta_s = torch.maximum(beta0, cfg.beta_floor_spacing * spacing).clamp_min(torch.finfo(z.dtype).tiny)
        weights, _ = opacity_weights(z, laplace_density(sdf, beta_s[:, None]))
        z_fine = sample_pdf(z, weights[:, :-1] + cfg.pdf_floor, cfg.num_fine, perturb, generator)
        z_out, order = torch.sort(torch.cat([z, z_fine], -1), -1)
        evaluated = torch.where(order < z.shape[1], order, -1)
        return RaySamples(
            z=z_out, z_eikonal=_pick_per_ray(z_out, cfg.num_eikonal, perturb, generator), evaluated=evaluated
        )


def _eval_sdf(sdf_fn: SdfFn, origins: Tensor, directions: Tensor, z: Tensor) -> Tensor:
    """SDF at depths ``z`` (R, S) → (R, S), with a clear error on a wrong output shape."""
    sdf = sdf_fn(ray_points(origins, directions, z))
    if sdf.shape == (*z.shape, 1):
        sdf = sdf.squeeze(-1)
    if sdf.shape != z.shape:
        raise ValueError(
            f"sdf_fn returned shape {tuple(sdf.shape)} for points {(*z.shape, 3)}; expected {tuple(z.shape)}"
        )
    return sdf.to(z.dtype)


def _d_star(dists: Tensor, sdf: Tensor) -> Tensor:
    """Lower bound d* on |d| inside each interval from the SDF at its ends (VolSDF §3.4, Theorem 1).

    A 1-Lipschitz SDF with values b, c at the ends of an interval of length a cannot be smaller than
    the height of the triangle (a, b, c); d* = 0 where the sign changes (a surface may be crossed).
    """
    a, b, c = dists, sdf[:, :-1].abs(), sdf[:, 1:].abs()
    first = a**2 + b**2 <= c**2  # closest point of the interval is its start
    second = a**2 + c**2 <= b**2  # ... its end
    s = 0.5 * (a + b + c)
    area = (s * (s - a) * (s - b) * (s - c)).clamp_min(0)
    height = 2.0 * torch.sqrt(area) / a.clamp_min(torch.finfo(a.dtype).tiny)
    d_star = torch.where(first, b, torch.where(second, c, torch.where(b + c - a > 0, height, 0.0)))
    same_sign = sdf[:, 1:].sign() * sdf[:, :-1].sign() == 1
    return torch.where(same_sign, d_star, torch.zeros_like(d_star))


def _rand(shape: tuple[int, ...] | torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def _pick_columns(
    n: int, k: int, perturb: bool, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """``k`` column indices out of ``n``: random distinct ones, or evenly spaced (shared by all rays)."""
    if perturb:
        return torch.randperm(n, generator=generator, device=device)[:k]
    return torch.linspace(0, n - 1, k, device=device).long()


def _pick_per_ray(z: Tensor, k: int, perturb: bool, generator: torch.Generator | None) -> Tensor:
    """``k`` depths per ray out of ``z`` (R, S): random per ray, or evenly spaced."""
    if k <= 0:
        return z[:, :0]
    if perturb:
        idx = torch.randint(z.shape[1], (z.shape[0], k), generator=generator, device=z.device)
    else:
        idx = torch.linspace(0, z.shape[1] - 1, k, device=z.device).round().long().expand(z.shape[0], k)
    return z.gather(1, idx)
