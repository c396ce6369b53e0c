from __future__ import annotations

import pytest
import torch

from hold.config import load_config
from hold.data.rays import RayBatch, SequenceRays
from hold.data.sequence import read_sequence
from hold.model.holdnet import HoldNet, group_by_frame
from hold.model.nodes import ray_point_distance


@pytest.fixture(scope="module")
def net_and_rays(tiny_synthetic):
    cfg = load_config("demo", ["rays.frames_per_step=2", "rays.rays_per_frame=32"])
    seq = read_sequence(tiny_synthetic.oracle_dir)
    return HoldNet(seq, cfg.model, cfg.hand, cfg.render), SequenceRays(seq, cfg.rays)


def test_render_outputs_are_consistent(net_and_rays):
    net, rays = net_and_rays
    batch = rays.sample(torch.Generator().manual_seed(0))
    out = net(batch, torch.Generator().manual_seed(1))
    r = out.render
    assert r.rgb.shape == (64, 3) and torch.all((r.rgb >= 0) & (r.rgb <= 1))
    assert torch.allclose(r.class_probs.sum(-1), torch.ones(64), atol=1e-5)
    assert torch.allclose(r.opacity + r.bg_transmittance, torch.ones(64), atol=1e-5)
    assert out.node_labels == (2, 1)  # right hand, object
    assert set(out.far_rays) == {1, 2}


def test_gradients_reach_networks_and_poses(net_and_rays):
    net, rays = net_and_rays
    net.zero_grad()
    batch = rays.sample(torch.Generator().manual_seed(2))
    out = net(batch)
    canonical = net.canonical_terms(torch.Generator().manual_seed(3))
    assert canonical.hands["right"].target_sdf.shape == canonical.hands["right"].sdf.shape
    eikonal = sum(t.gradients.norm(dim=-1).sum() for t in canonical.all())
    (out.render.rgb.sum() + eikonal).backward()
    assert net.object.sdf_net.mlp.parameters().__next__().grad.abs().sum() > 0
    assert net.params.object.transl.weight.grad.abs().sum() > 0
    assert net.hands["right"].density.beta.grad is not None


def test_ray_batches_must_be_grouped_by_frame(net_and_rays):
    net, rays = net_and_rays
    b = rays.sample(torch.Generator().manual_seed(0))
    mixed = RayBatch(*(getattr(b, f)[torch.randperm(len(b))] for f in b.__dataclass_fields__))
    with pytest.raises(ValueError, match="grouped by frame"):
        group_by_frame(mixed)


def test_ray_point_distance():
    dirs = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]])
    points = torch.tensor([[[0.1, 0.0, 2.0], [0.0, 0.0, -3.0]]])
    d = ray_point_distance(dirs, points)
    # ray 1 passes 0.1 from the first point; ray 2 (along x) is 2.0 from it and 3.0 from the point behind
    assert torch.allclose(d, torch.tensor([[0.1, 2.0]]), atol=1e-6)


def test_load_fields_takes_the_networks_and_keeps_the_poses(tiny_synthetic, tmp_path):
    """Stage 3 started from stage 1 (train.stage3_init=stage1): networks, codes and β from the file,
    per-frame poses from the model's own sequence."""
    cfg = load_config("demo", [])
    seq = read_sequence(tiny_synthetic.oracle_dir)
    torch.manual_seed(0)
    trained = HoldNet(seq, cfg.model, cfg.hand, cfg.render)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)  # "trained": every weight and pose differs from a fresh model's
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    torch.manual_seed(1)
    fresh = HoldNet(seq, cfg.model, cfg.hand, cfg.render)
    poses = {k: v.clone() for k, v in fresh.params.state_dict().items()}
    fresh.load_fields(tmp_path / "model.pt")
    for name, value in fresh.state_dict().items():
        expected = (
            poses[name.removeprefix("params.")] if name.startswith("params.") else trained.state_dict()[name]
        )
        assert torch.equal(value, expected), name
    other = load_config("demo", ["model.object.sdf.hidden_dim=16"])
    with pytest.raises(ValueError, match="model.pt: does not fit"):
        HoldNet(seq, other.model, other.hand, other.render).load_fields(tmp_path / "model.pt")
