"""Opt-in node behaviours of HOLD's released code: the hand prior's clamp and subdivided mesh, and
normals that keep their second-order graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from hold.config.fields import ColorNetworkConfig, EncodingConfig, SDFNetworkConfig
from hold.config.hand import HandConfig
from hold.config.model import HandNodeConfig, ObjectNodeConfig
from hold.config.render import BoundedSamplerConfig, DensityConfig
from hold.geometry.camera import ObjectPose
from hold.geometry.mesh import signed_distance
from hold.hand import skinning
from hold.hand.build import build_hand_model
from hold.hand.skinning import nearest_vertices
from hold.model.nodes import HandNode, NodeRays, ObjectNode, on_rows
from hold.render.samplers import BoundedSampler

SMALL_SDF = SDFNetworkConfig(
    encoding=EncodingConfig(num_frequencies=2), hidden_dim=16, num_layers=2, skip_layers=(), feature_dim=8
)
SMALL_COLOR = ColorNetworkConfig(hidden_dim=16, num_layers=1, weight_norm=False)


@pytest.fixture(scope="module")
def hand_model():
    return build_hand_model(HandConfig(), "right")


def hand_node(hand_model, **options) -> HandNode:
    cfg = HandNodeConfig(
        sdf=SMALL_SDF, color=SMALL_COLOR, prior_bank_size=400, prior_points_per_step=200, **options
    )
    betas = torch.zeros(hand_model.num_betas)
    return HandNode(cfg, HandConfig(), DensityConfig(beta_init=0.004), hand_model, betas)


def test_prior_clamp_bounds_both_sides_and_leaves_the_gradients(hand_model):
    plain = hand_node(hand_model)
    clamped = hand_node(hand_model, prior_clamp=0.01)
    clamped.load_state_dict(plain.state_dict())
    a = plain.canonical_terms(torch.Generator().manual_seed(0))
    b = clamped.canonical_terms(torch.Generator().manual_seed(0))
    assert a.target_sdf.abs().max() > 0.01  # the bank reaches beyond the band
    assert torch.equal(b.target_sdf, a.target_sdf.clamp(-0.01, 0.01))
    assert torch.equal(b.sdf, a.sdf.clamp(-0.01, 0.01))
    assert torch.equal(b.gradients, a.gradients)  # the eikonal term sees the unclamped field


def test_prior_targets_are_distances_to_the_loop_subdivided_mesh(hand_model):
    node = hand_node(hand_model, prior_subdivisions=1)
    verts, faces = hand_model.sealed_canonical_mesh(torch.zeros(hand_model.num_betas))
    v, f = trimesh.remesh.subdivide_loop(verts.numpy(), faces.numpy(), iterations=1)
    assert len(f) == 4 * len(faces)
    points = node.prior_points.numpy()
    expected = signed_distance(points, v, f)
    assert np.allclose(node.prior_sdf.numpy(), expected, atol=1e-6)
    plain = signed_distance(points, verts.numpy(), faces.numpy())
    assert not np.allclose(expected, plain, atol=1e-6)  # the subdivision moved the surface


@pytest.mark.parametrize("create_graph", [False, True])
def test_normals_keep_their_graph_only_when_asked(create_graph):
    color = ColorNetworkConfig(
        hidden_dim=16, num_layers=1, weight_norm=False, latent_dim=4, normals_create_graph=create_graph
    )
    node = ObjectNode(
        ObjectNodeConfig(sdf=SMALL_SDF, color=color), DensityConfig(0.004), 1, torch.randn(20, 3)
    )
    directions = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.01, 0.0, 1.0]]), dim=-1)
    rays = NodeRays(frames=torch.tensor([0]), origins=torch.zeros(2, 3), directions=directions)
    pose = ObjectPose(torch.eye(3)[None], torch.tensor([[0.0, 0.0, 0.5]]), torch.tensor(0.1))
    sampler = BoundedSampler(BoundedSamplerConfig(num_coarse=8, num_fine=4))
    samples = node.render_samples(rays, pose, sampler, False, None).samples
    params = [p for p in node.sdf_net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(samples.normal.sum(), params, allow_unused=True) if create_graph else ()
    # Without the graph the normals are a constant input: the RGB loss cannot move the geometry through them.
    assert samples.normal.requires_grad == create_graph
    assert not create_graph or any(g is not None and g.abs().sum() > 0 for g in grads)


def test_hand_rendering_reuses_the_samplers_neighbours(hand_model, monkeypatch):
    """The rendering pass takes the sampler's nearest vertices at the depths it evaluated: the same
    samples as a pass that searches every depth again (a sampler that does not say what it evaluated)."""

    class Forgetful(BoundedSampler):
        def __call__(self, *args, **kwargs):
            out = super().__call__(*args, **kwargs)
            out.evaluated = None
            return out

    node = hand_node(hand_model)
    posed = hand_model(**hand_model.zero_params(2) | {"transl": torch.tensor([[0.0, 0.0, 0.5]] * 2)})
    centre = posed.vertices.mean(1)
    g = torch.Generator().manual_seed(0)
    targets = centre[:, None] + 0.03 * torch.randn(2, 16, 3, generator=g)
    directions = torch.nn.functional.normalize(targets, dim=-1).reshape(-1, 3)
    rays = NodeRays(frames=torch.tensor([0, 1]), origins=torch.zeros(32, 3), directions=directions)
    cfg = BoundedSamplerConfig(num_coarse=8, num_fine=4)
    searched_points = []

    def counting(points, *args):
        searched_points.append(points.shape[0] * points.shape[1])
        return nearest_vertices(points, *args)

    monkeypatch.setattr(skinning, "nearest_vertices", counting)
    shared = node.render_samples(rays, posed, BoundedSampler(cfg), False, None).samples
    assert sum(searched_points) == 32 * (8 + 4)  # the coarse depths once, the fine ones once
    searched = node.render_samples(rays, posed, Forgetful(cfg), False, None).samples
    assert sum(searched_points) == 32 * (8 + 4) + 32 * (8 + 8 + 4)
    for name in ("z", "sigma", "rgb", "normal"):
        assert torch.equal(getattr(shared, name), getattr(searched, name)), name


def test_on_rows_computes_only_the_chosen_rows_and_keeps_their_gradient():
    x = torch.arange(12.0).reshape(6, 2).requires_grad_()
    rows = torch.tensor([True, False, True, True, False, False])
    seen = []

    def square(v):
        seen.append(v.shape[0])
        return (v**2,)

    (y,) = on_rows(rows, square, x)
    assert seen == [3]
    assert torch.equal(y[rows], x[rows] ** 2) and torch.equal(y[~rows], torch.zeros(3, 2))
    y.sum().backward()
    assert torch.equal(x.grad[rows], 2 * x[rows]) and torch.equal(x.grad[~rows], torch.zeros(3, 2))
    (none,) = on_rows(torch.zeros(6, dtype=torch.bool), square, x)  # no ray hit the node
    assert torch.equal(none, torch.zeros(6, 2))


def test_rays_that_miss_the_object_cost_no_network_evaluation():
    """Rays outside the bounding sphere are not evaluated; the rays that hit render as they would alone."""
    color = ColorNetworkConfig(hidden_dim=16, num_layers=1, weight_norm=False, latent_dim=4)
    node = ObjectNode(
        ObjectNodeConfig(sdf=SMALL_SDF, color=color), DensityConfig(0.004), 1, torch.randn(20, 3)
    )
    pose = ObjectPose(torch.eye(3)[None], torch.tensor([[0.0, 0.0, 0.5]]), torch.tensor(0.1))
    sampler = BoundedSampler(BoundedSamplerConfig(num_coarse=8, num_fine=4))
    hit_dirs = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.02, 0.0, 1.0]]), dim=-1)
    miss_dirs = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.2], [0.0, 1.0, 0.2]]), dim=-1)

    def render(directions):
        rays = NodeRays(
            frames=torch.tensor([0]), origins=torch.zeros(len(directions), 3), directions=directions
        )
        return node.render_samples(rays, pose, sampler, False, None).samples

    rows = []
    original = node.sdf_net.forward
    node.sdf_net.forward = lambda x, *more: rows.append(x.shape[0]) or original(x, *more)
    alone = render(hit_dirs)
    assert rows == [2 * 8, 2 * 12]  # the sampler's coarse depths, then the rendered ones
    rows.clear()
    mixed = render(torch.cat([hit_dirs, miss_dirs]))
    assert rows == [2 * 8, 2 * 12]  # the two missing rays added nothing
    assert mixed.valid.tolist() == [True, True, False, False]
    assert torch.allclose(mixed.sigma[:2], alone.sigma) and torch.allclose(mixed.rgb[:2], alone.rgb)
    assert torch.equal(mixed.rgb[2:], torch.zeros_like(mixed.rgb[2:]))
    missed = render(miss_dirs)  # no ray of the batch hits the object: nothing to evaluate, no error
    assert not missed.valid.any() and torch.isfinite(missed.sigma).all()  # compositing masks them
