"""Weighted table gather, out[m] = Σ_c w[m, c] · T[rows[m, c]], with fast first and second derivatives.

This is the inner loop of the hash grid (D-linear interpolation of 2^D corner features). Written with
plain ops, autograd spends most of an eikonal training step in broadcast products and in reductions
over the tiny feature axis. Here the forward is one fused ``embedding_bag`` and the derivatives are
split over two graph nodes, so that autograd runs only the one a pass needs:

- ``_TableGrad``: the value, differentiable w.r.t. the table T (weights taken as constants);
- ``_WeightGrad``: zero-valued, carries ∂out/∂w = T[rows], i.e. the path to the input points.

``torch.autograd.grad(sdf, x, create_graph=True)`` (the eikonal loss) then touches only the second; its
result, ``_GatherDot``, is itself differentiable w.r.t. T and the incoming gradient, which is what the
backward of the eikonal loss needs. Not supported (nor needed): second derivatives that start with
∂/∂T, such as ∂/∂w of the table gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def interpolate(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """Weighted sum of table rows.

    Args:
        table: (R, F) feature table.
        rows: (M, C) int64 row indices.
        weights: (M, C) weights, same dtype as ``table``.

    Returns:
        (M, F) ``Σ_c weights[:, c] · table[rows[:, c]]``; twice differentiable w.r.t. ``weights``,
        once w.r.t. ``table`` (plus the mixed term ∂²/∂w∂T that the eikonal loss needs).
    """
    if not torch.is_grad_enabled() or not (table.requires_grad or weights.requires_grad):
        return _embedding_sum(table, rows, weights)
    out = _TableGrad.apply(table, rows, weights.detach())
    if weights.requires_grad:
        out = out + _WeightGrad.apply(table, rows, weights)
    return out


def _embedding_sum(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")


def _scatter(num_rows: int, rows: Tensor, weights: Tensor, grad: Tensor) -> Tensor:
    """∂/∂T of Σ_m <grad[m], out[m]>: (R, F) with row r = Σ_{(m,c): rows[m,c]=r} weights[m,c] · grad[m]."""
    src = (weights[:, :, None] * grad[:, None, :]).reshape(-1, grad.shape[-1])
    return grad.new_zeros(num_rows, grad.shape[-1]).index_add(0, rows.reshape(-1), src)


class _TableGrad(torch.autograd.Function):
    """Value of the weighted gather; gradient w.r.t. the table only."""

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        ctx.save_for_backward(rows, weights)
        ctx.num_rows = table.shape[0]
        return _embedding_sum(table, rows, weights)

    @staticmethod
    def backward(ctx, grad: Tensor):
        rows, weights = ctx.saved_tensors
        return _scatter(ctx.num_rows, rows, weights, grad), None, None


class _WeightGrad(torch.autograd.Function):
    """Zero; its backward is ∂out/∂w, g[m, c] = <grad[m], T[rows[m, c]]>."""

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        ctx.save_for_backward(table, rows)
        return weights.new_zeros(rows.shape[0], table.shape[1])

    @staticmethod
    def backward(ctx, grad: Tensor):
        table, rows = ctx.saved_tensors
        return None, None, _GatherDot.apply(table, rows, grad)


class _GatherDot(torch.autograd.Function):
    """g[m, c] = Σ_f grad[m, f] · T[rows[m, c], f]; differentiable w.r.t. T and ``grad``."""

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, grad: Tensor) -> Tensor:
        ctx.save_for_backward(table, rows, grad)
        gathered = table.index_select(0, rows.reshape(-1)).view(*rows.shape, table.shape[1])
        # Loop over the few feature channels: elementwise products beat a reduction over a size-2 axis.
        out = gathered[..., 0] * grad[:, 0:1]
        for f in range(1, table.shape[1]):
            out.addcmul_(gathered[..., f], grad[:, f : f + 1])
        return out

    @staticmethod
    def backward(ctx, gg: Tensor):
        table, rows, grad = ctx.saved_tensors
        d_table = d_grad = None
        if ctx.needs_input_grad[0]:
            d_table = _scatter(table.shape[0], rows, gg, grad)
        if ctx.needs_input_grad[2]:
            # Σ_c gg[m, c] · T[rows[m, c]]: the same weighted gather.
            d_grad = interpolate(table, rows, gg)
        return d_table, None, d_grad
