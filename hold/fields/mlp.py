"""MLP with IDR-style skip connections and optional weight normalisation, shared by the SDF and colour nets."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

# Called as init_fn(layer_index, linear) before weight norm is applied.
LayerInit = Callable[[int, nn.Linear], None]


class SkipMLP(nn.Module):
    """``num_layers`` hidden layers of width ``hidden_dim`` and a linear output layer.

    At every linear layer l in ``skip_layers`` the running activation is concatenated with the network
    input and divided by sqrt(2) (IDR, Yariv et al. 2020); layer l-1 outputs ``hidden_dim - in_dim``
    so that the concatenation is ``hidden_dim`` wide.

    Args:
        in_dim: input width.
        out_dim: output width.
        hidden_dim: hidden width.
        num_layers: number of hidden layers (linear layers = num_layers + 1).
        skip_layers: linear-layer indices in [1, num_layers] that receive the input again.
        activation: module applied after every hidden layer.
        weight_norm: weight-normalise every linear layer (after ``init_fn``, so init is preserved).
        init_fn: optional custom initialisation, called for each linear layer.
        skip_dim: width of the part of the input re-injected at skips (a prefix); default all of it.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int,
        num_layers: int,
        skip_layers: Sequence[int],
        activation: nn.Module,
        weight_norm: bool,
        init_fn: LayerInit | None = None,
        skip_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.skip_layers = frozenset(skip_layers)
        self.skip_dim = in_dim if skip_dim is None else skip_dim
        if self.skip_layers and hidden_dim <= self.skip_dim:
            raise ValueError(
                f"skip connections need hidden_dim ({hidden_dim}) larger than the re-injected input width "
                f"({self.skip_dim}); widen the layers or remove the skip layers"
            )
        dims = [in_dim] + [hidden_dim] * num_layers + [out_dim]
        layers = []
        for i in range(num_layers + 1):
            fan_out = dims[i + 1] - self.skip_dim if i + 1 in self.skip_layers else dims[i + 1]
            lin = nn.Linear(dims[i], fan_out)
            if init_fn is not None:
                init_fn(i, lin)
            layers.append(_weight_norm(lin) if weight_norm else lin)
        self.layers = nn.ModuleList(layers)
        self.activation = activation
        self._inv_sqrt2 = 1.0 / math.sqrt(2.0)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_dim) → (N, out_dim)."""
        skip_input = x[:, : self.skip_dim]
        h = x
        last = len(self.layers) - 1
        for i, lin in enumerate(self.layers):
            if i in self.skip_layers:
                h = torch.cat((h, skip_input), dim=-1) * self._inv_sqrt2
            h = lin(h)
            if i < last:
                h = self.activation(h)
        return h
