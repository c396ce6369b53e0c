"""Signed-distance network with a feature output (IDR / VolSDF ``ImplicitNet``, as in HOLD §3.2)."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch import Tensor, nn

from hold.config.fields import SDFNetworkConfig
from hold.fields.compiled import eager_only
from hold.fields.encoding import build_encoding
from hold.fields.mlp import SkipMLP

# Std of the output layer's weights around their mean in the geometric init (IDR / SAL).
_GEOMETRIC_INIT_OUT_STD = 1e-4


class SDFOutput(NamedTuple):
    sdf: Tensor
    """(N, 1) signed distance."""
    feature: Tensor
    """(N, F) feature vector for the colour network."""


class SDFGradientOutput(NamedTuple):
    sdf: Tensor
    """(N, 1) signed distance."""
    feature: Tensor
    """(N, F) feature vector."""
    gradient: Tensor
    """(N, 3) ∂sdf/∂x: unnormalised normals and the input of the eikonal loss."""


class SDFNetwork(nn.Module):
    """x (N, D) [+ optional code (N, C)] → SDF (N, 1) and feature (N, F).

    Softplus(β) activations keep the SDF twice differentiable, so the eikonal loss on ∂sdf/∂x can be
    backpropagated. With ``geometric_init`` the network starts as sdf(x) ≈ |x| - r.
    """

    def __init__(self, cfg: SDFNetworkConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoding = build_encoding(cfg.encoding, cfg.input_dim)
        self.feature_dim = cfg.feature_dim
        self.cond_dim = cfg.cond_dim
        enc_dim = self.encoding.output_dim
        self.mlp = SkipMLP(
            in_dim=enc_dim + cfg.cond_dim,
            out_dim=1 + cfg.feature_dim,
            hidden_dim=cfg.hidden_dim,
            num_layers=cfg.num_layers,
            skip_layers=cfg.skip_layers,
            activation=nn.Softplus(beta=cfg.softplus_beta),
            weight_norm=cfg.weight_norm,
            init_fn=self._geometric_init if cfg.geometric_init else None,
            skip_dim=enc_dim,
        )

    def _geometric_init(self, i: int, lin: nn.Linear) -> None:
        """Sphere initialisation (SAL, Atzmon & Lipman, CVPR 2020, §4; IDR, Yariv et al. 2020).

        Hidden layers ~ N(0, 2/fan_out) (a ReLU-like network whose output is ≈ c|x|); the output layer
        has weights ≈ sqrt(π/fan_in), which makes c = 1, and bias -r. Only the raw-point columns of the
        input get weights: encoded features and conditioning codes start at zero weight, so the encoding
        (any frequency band, any hash level) leaves the initial sphere intact.
        """
        cfg = self.cfg
        last = cfg.num_layers
        passthrough = self.encoding.passthrough_dim
        fan_in, fan_out = lin.in_features, lin.out_features
        with torch.no_grad():
            lin.bias.zero_()
            if i == last:
                lin.weight.normal_(math.sqrt(math.pi) / math.sqrt(fan_in), _GEOMETRIC_INIT_OUT_STD)
                lin.bias.fill_(-cfg.init_radius)
                return
            lin.weight.normal_(0.0, math.sqrt(2.0) / math.sqrt(fan_out))
            if i == 0:
                lin.weight[:, passthrough:] = 0.0
            elif i in cfg.skip_layers:
                # Concatenation is [hidden activations, encoded input]: keep only the raw point.
                enc_start = fan_in - self.encoding.output_dim
                lin.weight[:, enc_start + passthrough :] = 0.0

    def set_step(self, step: int) -> None:
        """Forward the training step to the encoding (coarse-to-fine annealing)."""
        self.encoding.set_step(step)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> SDFOutput:
        """Evaluate the field.

        Args:
            x: (N, D) points.
            cond: (N, cond_dim) or (1, cond_dim) conditioning code; required iff ``cond_dim > 0``.

        Returns:
            ``SDFOutput(sdf (N, 1), feature (N, F))``.
        """
        h = self.encoding(x)
        if self.cond_dim > 0:
            if cond is None or cond.shape[-1] != self.cond_dim:
                found = "none" if cond is None else f"shape {tuple(cond.shape)}"
                raise ValueError(
                    f"SDFNetwork expects a conditioning code of width {self.cond_dim}, found {found}"
                )
            h = torch.cat((h, cond.expand(x.shape[0], -1)), dim=-1)
        elif cond is not None:
            raise ValueError("SDFNetwork got a conditioning code but sdf.cond_dim is 0")
        out = self.mlp(h)
        return SDFOutput(out[:, :1], out[:, 1:])

    def sdf(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """(N, D) → (N, 1) signed distance only (ray sampling, meshing)."""
        return self.forward(x, cond).sdf

    def sdf_and_gradient(
        self, x: Tensor, cond: Tensor | None = None, create_graph: bool = False
    ) -> SDFGradientOutput:
        """SDF, feature and ∂sdf/∂x in one pass.

        Args:
            x: (N, D) points. If ``x`` already requires grad (e.g. it comes out of a deformer), the
                gradient is taken w.r.t. it and the graph back to its inputs is kept.
            cond: as in :meth:`forward`.
            create_graph: record the gradient's graph so that a loss on it (eikonal) can be
                backpropagated into the network; use it in training.

        Returns:
            ``SDFGradientOutput(sdf (N, 1), feature (N, F), gradient (N, D))``. Outside a grad-enabled
            context (evaluation) all three are detached.
        """
        outer_grad = torch.is_grad_enabled()
        # In training this graph is differentiated again (retained, maybe twice): compiled code cannot be.
        with torch.enable_grad(), eager_only() if outer_grad else nullcontext():
            x_in = x if x.requires_grad else x.detach().requires_grad_(True)
            out = self.forward(x_in, cond)
            (gradient,) = torch.autograd.grad(
                out.sdf,
                x_in,
                grad_outputs=torch.ones_like(out.sdf),
                create_graph=create_graph and outer_grad,
                retain_graph=outer_grad,
            )
        if not outer_grad:
            return SDFGradientOutput(out.sdf.detach(), out.feature.detach(), gradient.detach())
        return SDFGradientOutput(out.sdf, out.feature, gradient)
