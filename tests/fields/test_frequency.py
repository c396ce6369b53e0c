"""Fourier features: HOLD's layout and BARF coarse-to-fine annealing."""

from __future__ import annotations

import torch

from hold.config.fields import EncodingConfig
from hold.fields.encoding import FrequencyEncoding, HashGridEncoding, coarse_to_fine_weights


def test_layout_matches_hold_embedder():
    enc = FrequencyEncoding(EncodingConfig(num_frequencies=3))
    x = torch.randn(5, 3)
    parts = [x]
    for k in range(3):  # HOLD/NeRF: for each band, sin then cos, each over the 3 coordinates
        parts += [torch.sin(x * 2.0**k), torch.cos(x * 2.0**k)]
    expected = torch.cat(parts, dim=-1)
    assert enc.output_dim == 3 + 3 * 2 * 3 == expected.shape[1]
    torch.testing.assert_close(enc(x), expected)


def test_without_input_and_other_dims():
    enc = FrequencyEncoding(EncodingConfig(num_frequencies=2, include_input=False), input_dim=4)
    assert enc.passthrough_dim == 0 and enc.output_dim == 16
    assert enc(torch.randn(7, 4)).shape == (7, 16)


def test_window_shape():
    w = coarse_to_fine_weights(torch.tensor(1.5), 4)
    torch.testing.assert_close(w, torch.tensor([1.0, 0.5, 0.0, 0.0]))
    assert torch.all(coarse_to_fine_weights(torch.tensor(0.0), 4) == 0)
    assert torch.all(coarse_to_fine_weights(torch.tensor(4.0), 4) == 1)


def test_annealing_masks_high_frequencies_until_done():
    cfg = EncodingConfig(num_frequencies=6, anneal_start=100, anneal_steps=1000)
    enc = FrequencyEncoding(cfg)
    full = FrequencyEncoding(EncodingConfig(num_frequencies=6))
    x = torch.randn(16, 3)
    out0 = enc(x)
    torch.testing.assert_close(out0[:, :3], x)  # the raw input always passes
    assert torch.all(out0[:, 3:] == 0)  # every band closed before anneal_start
    enc.set_step(100 + 500)  # α = 3: bands 0-2 open, 3-5 closed
    mid = enc(x).view(16, -1)[:, 3:].view(16, 6, 6)
    torch.testing.assert_close(mid[:, :3], full(x)[:, 3:].view(16, 6, 6)[:, :3])
    assert torch.all(mid[:, 3:] == 0)
    enc.set_step(100 + 1000)
    torch.testing.assert_close(enc(x), full(x))
    enc.set_step(10**6)
    torch.testing.assert_close(enc(x), full(x))


def test_step_is_saved_with_the_model():
    cfg = EncodingConfig(anneal_steps=10)
    enc = FrequencyEncoding(cfg)
    enc.set_step(7)
    other = FrequencyEncoding(cfg)
    other.load_state_dict(enc.state_dict())
    assert int(other.step) == 7 and float(other.alpha()) == float(enc.alpha())


def test_hashgrid_levels_anneal_too():
    cfg = EncodingConfig(
        type="hashgrid",
        num_levels=4,
        log2_hashmap_size=10,
        base_resolution=4,
        max_resolution=32,
        anneal_steps=40,
        backend="torch",
    )
    enc = HashGridEncoding(cfg)
    x = torch.rand(8, 3) * 2 - 1
    assert torch.all(enc(x)[:, 3:] == 0)
    enc.set_step(40)
    assert torch.all(enc(x)[:, 3:] != 0)
