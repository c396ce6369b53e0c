"""Compositional volume rendering of several SDF nodes (hand(s) + object) over a background.

HOLD §3.2 (Eq. 9–10): the samples of all nodes along a ray are merged by depth and alpha-composited
together, so that whichever surface is in front occludes the others; the background is added with the
residual transmittance. Each node is also rendered alone (its amodal mask, used by HOLD's sparsity and
segmentation terms), and the merged weights summed per class give the rendered class distribution
over (background, object, right hand, left hand), the labels of the SEQUENCE masks (docs/formats.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hold.data.sequence import LABEL_BACKGROUND, LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT
from hold.fields.background import BackgroundSamples

CLASS_NAMES = ("background", "object", "right", "left")
"""The rendered class distribution's classes, indexed by their mask labels (``LABEL_*``, docs/formats.md)."""
NUM_CLASSES = len(CLASS_NAMES)


@dataclass
class NodeSamples:
    """The samples of one node along every ray, as evaluated by the node's fields.

    Attributes:
        label: class of the node: ``LABEL_OBJECT``, ``LABEL_RIGHT`` or ``LABEL_LEFT``.
        z: (R, S) sorted depths.
        sigma: (R, S) densities at ``z`` (e.g. :class:`~hold.render.density.LaplaceDensity` of the SDF).
        rgb: (R, S, 3) colours.
        normal: (R, S, 3) normals (observation space).
        far: (R,) end of the node's last interval (the far bound of its ray interval).
        valid: (R,) bool, rays on which the node exists (e.g. that hit its bounding sphere); its
            density is zeroed elsewhere. ``None``: every ray.
    """

    label: int
    z: Tensor
    sigma: Tensor
    rgb: Tensor
    normal: Tensor
    far: Tensor
    valid: Tensor | None = None


@dataclass
class NodeRender:
    """One node volume-rendered alone (amodal: as if the other nodes were absent).

    Attributes:
        label: the node's class.
        opacity: (R,) accumulated opacity, the amodal mask.
        rgb: (R, 3) Σ w c over the node's samples (no background).
        normal: (R, 3) Σ w n.
        depth: (R,) Σ w z (not divided by the opacity).
        weights: (R, S) the node's own weights, in its sample order.
    """

    label: int
    opacity: Tensor
    rgb: Tensor
    normal: Tensor
    depth: Tensor
    weights: Tensor


@dataclass
class CompositeRender:
    """All nodes rendered together over the background (HOLD Eq. 9–10).

    Attributes:
        rgb: (R, 3) final colour: foreground + residual transmittance × background colour.
        fg_rgb: (R, 3) foreground colour Σ w c (black background).
        normal: (R, 3) Σ w n.
        depth: (R,) Σ w z (not divided by the opacity).
        opacity: (R,) Σ w, the foreground mask.
        bg_transmittance: (R,) residual transmittance exp(−Σ σ δ); ``opacity + bg_transmittance = 1``.
        class_probs: (R, 4) rendered class distribution (background, object, right, left); each row
            sums to 1. Classes without a node have 0.
        visible: (R, N) per node (input order), the sum of the merged weights of its samples: its
            visible contribution, after occlusion by the other nodes.
        z: (R, ΣS) merged, sorted depths. weights: (R, ΣS) merged weights.
        sample_node: (R, ΣS) index (into the input node list) of the node each merged sample came from.
        nodes: per node (input order), the node rendered alone.
    """

    rgb: Tensor
    fg_rgb: Tensor
    normal: Tensor
    depth: Tensor
    opacity: Tensor
    bg_transmittance: Tensor
    class_probs: Tensor
    visible: Tensor
    z: Tensor
    weights: Tensor
    sample_node: Tensor
    nodes: tuple[NodeRender, ...]

    @property
    def amodal(self) -> Tensor:
        """(R, N) per node (input order), its opacity rendered alone (amodal mask)."""
        return torch.stack([n.opacity for n in self.nodes], dim=-1)

    def node(self, label: int) -> NodeRender:
        """The alone-rendering of the node of class ``label`` (the first such node)."""
        for n in self.nodes:
            if n.label == label:
                return n
        raise KeyError(f"no node of class {label} ({CLASS_NAMES[label]}) was rendered")


def volume_weights(z: Tensor, sigma: Tensor, far: Tensor) -> tuple[Tensor, Tensor]:
    """Alpha-compositing weights of sorted samples (VolSDF §3.3 rectangle rule, HOLD Eq. 9).

    δ_i = z_{i+1} − z_i, the last interval ends at ``far``; α_i = 1 − exp(−σ_i δ_i);
    T_i = exp(−Σ_{j<i} σ_j δ_j); w_i = α_i T_i; residual transmittance T = exp(−Σ_j σ_j δ_j).

    Args:
        z: (R, S) sorted depths. sigma: (R, S) densities. far: (R,) end of the last interval.

    Returns:
        weights (R, S) and residual transmittance (R,); ``weights.sum(-1) + residual = 1``.
    """
    deltas = torch.cat([z[:, 1:] - z[:, :-1], far[:, None] - z[:, -1:]], -1).clamp_min(0)
    free = sigma * deltas
    # Cumulative free energy with a leading 0: column i is the optical depth before sample i.
    optical = torch.cumsum(torch.cat([torch.zeros_like(free[:, :1]), free], -1), -1)
    transmittance = torch.exp(-optical)
    weights = (1.0 - torch.exp(-free)) * transmittance[:, :-1]
    return weights, transmittance[:, -1]


def background_colour(samples: BackgroundSamples) -> Tensor:
    """(R, 3) colour of the background field along each ray (NeRF++ §4). The last interval reaches
    "infinity": far beyond the last sample, so it absorbs the rest of the ray."""
    weights, residual = volume_weights(samples.depth, samples.sigma, samples.depth[:, -1] * 1e3)
    return (weights[..., None] * samples.rgb).sum(-2) + residual[:, None] * samples.rgb[:, -1]


def render_node(node: NodeSamples) -> NodeRender:
    """Volume-render one node alone (its amodal mask, colour, normal and depth)."""
    sigma = _masked_sigma(node)
    weights, _ = volume_weights(node.z, sigma, node.far)
    return NodeRender(
        label=node.label,
        opacity=weights.sum(-1),
        rgb=(weights[..., None] * node.rgb).sum(-2),
        normal=(weights[..., None] * node.normal).sum(-2),
        depth=(weights * node.z).sum(-1),
        weights=weights,
    )


def composite(nodes: Sequence[NodeSamples], bg_rgb: Tensor | None = None) -> CompositeRender:
    """Merge the nodes' samples by depth and render them together over the background (HOLD Eq. 9–10).

    The merged intervals run from each sample to the next merged sample, the last one to the farthest
    far bound of the nodes valid on the ray, so a node's sample is occluded by any sample of another
    node in front.

    Args:
        nodes: one :class:`NodeSamples` per node, all with the same rays (R); sample counts may differ.
        bg_rgb: (R, 3) background colour per ray (e.g. from the background field), composited with the
            residual transmittance; ``None``: black.

    Returns:
        A :class:`CompositeRender`.
    """
    if not nodes:
        raise ValueError("composite() needs at least one node")
    for n in nodes:
        if n.label not in (LABEL_OBJECT, LABEL_RIGHT, LABEL_LEFT):
            raise ValueError(
                f"node label {n.label} is not LABEL_OBJECT (1), LABEL_RIGHT (2) or LABEL_LEFT (3)"
            )

    _check_shapes(nodes)
    far = _merged_far(nodes)
    # Samples of a node on rays where it is absent move to the far bound with zero density, so they
    # neither split the other nodes' intervals nor add opacity.
    z_all = torch.cat([_parked_z(n, far) for n in nodes], -1)
    order = torch.argsort(z_all, -1)
    z = z_all.gather(1, order)
    sigma = torch.cat([_masked_sigma(n) for n in nodes], -1).gather(1, order)
    order3 = order[..., None].expand(-1, -1, 3)
    rgb = torch.cat([n.rgb for n in nodes], -2).gather(1, order3)
    normal = torch.cat([n.normal for n in nodes], -2).gather(1, order3)
    node_of_sample = torch.cat(
        [torch.full((n.z.shape[-1],), i, dtype=torch.long, device=z.device) for i, n in enumerate(nodes)]
    )
    sample_node = node_of_sample[order]

    weights, bg_transmittance = volume_weights(z, sigma, far)
    fg_rgb = (weights[..., None] * rgb).sum(-2)
    out_rgb = fg_rgb if bg_rgb is None else fg_rgb + bg_transmittance[:, None] * bg_rgb

    # Per-node visible contribution, then per class (several nodes may share a class).
    visible = torch.zeros(z.shape[0], len(nodes), dtype=weights.dtype, device=z.device)
    visible = visible.scatter_add(1, sample_node, weights)
    labels = torch.tensor([n.label for n in nodes], device=z.device)
    class_probs = torch.zeros(z.shape[0], NUM_CLASSES, dtype=weights.dtype, device=z.device)
    class_probs = class_probs.index_add(1, labels, visible)
    class_probs = class_probs.index_add(1, labels.new_tensor([LABEL_BACKGROUND]), bg_transmittance[:, None])

    return CompositeRender(
        rgb=out_rgb,
        fg_rgb=fg_rgb,
        normal=(weights[..., None] * normal).sum(-2),
        depth=(weights * z).sum(-1),
        opacity=weights.sum(-1),
        bg_transmittance=bg_transmittance,
        class_probs=class_probs,
        visible=visible,
        z=z,
        weights=weights,
        sample_node=sample_node,
        nodes=tuple(render_node(n) for n in nodes),
    )


def _masked_sigma(node: NodeSamples) -> Tensor:
    """The node's densities, zero on rays where it is not valid."""
    if node.valid is None:
        return node.sigma
    return node.sigma * node.valid[:, None].to(node.sigma.dtype)


def _parked_z(node: NodeSamples, far: Tensor) -> Tensor:
    """The node's depths, moved to the merged far bound (R,) on rays where the node is not valid."""
    if node.valid is None:
        return node.z
    return torch.where(node.valid[:, None], node.z, far[:, None].expand_as(node.z))


def _merged_far(nodes: Sequence[NodeSamples]) -> Tensor:
    """(R,) the farthest far bound among the nodes valid on each ray (of all nodes where none is)."""
    fars = torch.stack([n.far for n in nodes], -1)
    valid = torch.stack(
        [torch.ones_like(n.far, dtype=torch.bool) if n.valid is None else n.valid for n in nodes], -1
    )
    far_valid = torch.where(valid, fars, torch.full_like(fars, -torch.inf)).amax(-1)
    return torch.where(valid.any(-1), far_valid, fars.amax(-1))


def _check_shapes(nodes: Sequence[NodeSamples]) -> None:
    num_rays = nodes[0].z.shape[0]
    for i, n in enumerate(nodes):
        rays, samples = n.z.shape
        expected = {"sigma": (rays, samples), "rgb": (rays, samples, 3), "normal": (rays, samples, 3)}
        expected["far"] = (rays,)
        if n.valid is not None:
            expected["valid"] = (rays,)
        for name, shape in expected.items():
            found = tuple(getattr(n, name).shape)
            if found != shape:
                raise ValueError(
                    f"node {i} ({CLASS_NAMES[n.label]}): {name} has shape {found}, expected {shape}"
                )
        if rays != num_rays:
            raise ValueError(f"node {i} ({CLASS_NAMES[n.label]}) has {rays} rays, node 0 has {num_rays}")
