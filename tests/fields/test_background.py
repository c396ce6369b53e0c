"""The background field's sample jitter comes from the caller's generator, never the global RNG: a run
resumed from a checkpoint draws the same numbers as one that was never interrupted."""

from __future__ import annotations

import torch

from hold.config.fields import BackgroundConfig
from hold.fields.background import BackgroundField


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    directions = torch.nn.functional.normalize(
        torch.randn(6, 3, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    return directions, torch.full((6,), 1.5), torch.zeros(6, dtype=torch.long)


def test_jitter_follows_the_generator_not_the_global_rng():
    field = BackgroundField(BackgroundConfig(hidden_dim=8, num_layers=2, skip_layers=(), num_samples=4), 1)
    args = _inputs()
    torch.manual_seed(0)
    a = field(*args, perturb=True, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # another global state: must not matter
    b = field(*args, perturb=True, generator=torch.Generator().manual_seed(7))
    c = field(*args, perturb=True, generator=torch.Generator().manual_seed(8))
    still = field(*args)
    assert torch.equal(a.depth, b.depth) and torch.equal(a.rgb, b.rgb)
    assert not torch.equal(a.depth, c.depth)  # the jitter is there
    assert not torch.equal(a.depth, still.depth)
    assert torch.all(a.depth[:, 1:] > a.depth[:, :-1])  # still increasing after the jitter
