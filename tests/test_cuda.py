"""The training path on CUDA: renders match the CPU's, steps train, the object mesh is extracted.

Marked ``gpu`` and skipped without a CUDA device (``bench/gpu_check.sh`` runs them on a GPU machine).
``HOLD_GPU_TEST_DEVICE=cpu`` runs them on the CPU instead, to rehearse this file where there is no GPU;
the CPU-against-CPU comparisons are then trivial.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from hold.config import load_config
from hold.data.sequence import read_sequence
from hold.geometry.mesh import EmptySurfaceError
from hold.system import HoldSystem

DEVICE = torch.device(os.environ.get("HOLD_GPU_TEST_DEVICE", "cuda"))

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SMALL = ["rays.frames_per_step=2", "rays.rays_per_frame=32", "logging.wandb=disabled"]


@pytest.fixture(scope="module")
def seq(tiny_synthetic):
    return read_sequence(tiny_synthetic.oracle_dir)


def _pair(seq, preset: str) -> tuple[HoldSystem, HoldSystem]:
    """The same system on the CPU and on DEVICE, with equal parameters."""
    cfg = load_config(preset, SMALL)
    cpu = HoldSystem(cfg, seq, None, 10)
    dev = HoldSystem(cfg, seq, None, 10)
    dev.load_state_dict(cpu.state_dict())
    return cpu, dev.to(DEVICE)


@pytest.mark.parametrize("preset", ["fast", "paper"])
def test_render_on_device_matches_cpu(seq, preset):
    cpu, dev = _pair(seq, preset)
    cpu.eval()  # no jitter: the samples are deterministic
    dev.eval()
    batch = cpu.rays.sample(cpu._generator(0))
    ref = cpu.model(batch).render
    out = dev.model(batch.to(DEVICE)).render
    for key in ("rgb", "class_probs"):
        diff = (getattr(out, key).cpu() - getattr(ref, key)).abs()
        assert diff.mean() < 1e-3, f"{key}: mean |Δ| {diff.mean():.2e} between {DEVICE} and cpu"
        assert torch.quantile(diff.flatten(), 0.99) < 1e-2, f"{key}: 99th percentile |Δ| too large"


def test_training_steps_on_device(seq):
    cfg = load_config("fast", SMALL)
    system = HoldSystem(cfg, seq, None, 10).to(DEVICE)
    optimizer = system.configure_optimizers()["optimizer"]
    before = {k: v.detach().clone() for k, v in system.model.named_parameters()}
    for step in range(3):
        system.model.set_step(step)
        generator = system._generator(step)
        batch = system.rays.sample(generator).to(system.device)
        out = system.model(batch, system.model_generator(generator))
        loss = system.compute_losses(batch, out, step, generator)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        assert math.isfinite(loss.total.item()), f"step {step}: {loss.terms}"
    assert out.render.rgb.device.type == DEVICE.type
    moved = [k for k, v in system.model.named_parameters() if not torch.equal(v, before[k])]
    assert any(k.startswith("object.sdf_net") for k in moved)
    assert any(k.startswith("hands.right.sdf_net") for k in moved)


def test_model_generator_is_on_the_model_device(seq):
    system = HoldSystem(load_config("fast", SMALL), seq, None, 10).to(DEVICE)
    generator = system._generator(7)
    model_generator = system.model_generator(generator)
    assert model_generator.device.type == DEVICE.type
    assert model_generator.initial_seed() == generator.initial_seed()
    if DEVICE.type == "cpu":
        assert model_generator is generator  # CPU runs draw exactly the numbers they drew before


def test_object_mesh_extraction_on_device(seq):
    system = HoldSystem(load_config("fast", SMALL), seq, None, 10).to(DEVICE)
    try:
        mesh = system.model.extract_object_mesh(24)
    except EmptySurfaceError:
        return  # no surface at initialisation is a result, not a device error
    assert len(mesh.faces) > 0
    system.update_object_mesh()
    assert system.model.object.mesh_vertices.device.type == DEVICE.type
