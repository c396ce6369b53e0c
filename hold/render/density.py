"""SDF → volume density by the Laplace CDF with a learnable β (VolSDF Eq. 2–3, HOLD §3.2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hold.config.render import DensityConfig


def laplace_density(sdf: Tensor, beta: Tensor | float) -> Tensor:
    """σ = α Ψ_β(−d) with α = 1/β, Ψ_β the CDF of a zero-mean Laplace distribution of scale β.

    Implements VolSDF Eq. 2–3. Outside the surface (d > 0) σ = exp(−d/β) / (2β) decays to 0; inside it
    tends to 1/β; on the surface it is 1/(2β).

    Args:
        sdf: signed distances d, any shape (...), negative inside.
        beta: β > 0, a scalar or a tensor broadcastable against ``sdf`` (e.g. (R, 1) per ray).

    Returns:
        Densities σ, the broadcast shape of ``sdf`` and ``beta``.
    """
    # expm1 keeps precision for |d| << β; the sign() form evaluates both branches of Ψ at once.
    return (0.5 + 0.5 * sdf.sign() * torch.expm1(-sdf.abs() / beta)) / beta


class LaplaceDensity(nn.Module):
    """Laplace-CDF density with its own learnable β (β = |β_param| + β_min), one per node.

    Args:
        cfg: initial β and its floor.
    """

    def __init__(self, cfg: DensityConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DensityConfig()
        if cfg.beta_min < 0:
            raise ValueError(f"density.beta_min must be >= 0, found {cfg.beta_min}")
        self.beta_min = cfg.beta_min
        self.beta = nn.Parameter(torch.tensor(float(cfg.beta_init)))

    def get_beta(self) -> Tensor:
        """The current β, a scalar tensor (differentiable w.r.t. the parameter)."""
        # abs() rather than exp/softplus: VolSDF's parameterisation, so β_init means what it says.
        return self.beta.abs() + self.beta_min

    def forward(self, sdf: Tensor, beta: Tensor | float | None = None) -> Tensor:
        """Densities of the signed distances ``sdf`` (...) with this node's β, or an explicit ``beta``."""
        return laplace_density(sdf, self.get_beta() if beta is None else beta)
