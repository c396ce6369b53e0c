from __future__ import annotations

import numpy as np
import torch

from hold.config.data import RaySamplingConfig
from hold.data.rays import SequenceRays, pixel_rays
from hold.data.sequence import read_sequence, write_sequence
from tests.conftest import random_frames, random_sequence


def test_pixel_rays_project_back_to_their_pixels():
    K = torch.tensor([[50.0, 0, 20], [0, 60.0, 10], [0, 0, 1]])
    pixels = torch.tensor([[0.5, 0.5], [20.0, 10.0], [33.5, 7.25]])
    origins, dirs = pixel_rays(K, pixels)
    assert torch.allclose(dirs.norm(dim=1), torch.ones(3))
    proj = dirs @ K.T
    assert torch.allclose(proj[:, :2] / proj[:, 2:], pixels, atol=1e-4)
    assert torch.count_nonzero(origins) == 0


def test_sampling_is_biased_to_the_foreground_box(tmp_path):
    seq = random_sequence(T=3, H=40, W=40)
    images, _ = random_frames(seq)
    masks = [np.zeros((40, 40), np.uint8) for _ in range(3)]
    for m in masks:
        m[10:20, 25:35] = 1
    write_sequence(tmp_path / "s", seq, images, masks)
    cfg = RaySamplingConfig(frames_per_step=2, rays_per_frame=200, box_fraction=0.75, box_padding=0.0)
    rays = SequenceRays(read_sequence(tmp_path / "s"), cfg)
    batch = rays.sample(torch.Generator().manual_seed(0))
    assert len(batch) == 400 and len(set(batch.frame.tolist())) == 2
    in_box = (
        (batch.pixels[:, 0] > 25)
        & (batch.pixels[:, 0] < 35)
        & (batch.pixels[:, 1] > 10)
        & (batch.pixels[:, 1] < 20)
    )
    assert in_box.float().mean() > 0.75  # box share plus the uniform rays that land in it
    assert (batch.labels[in_box] == 1).all()
    f, x, y = batch.frame[0].item(), int(batch.pixels[0, 0]), int(batch.pixels[0, 1])
    assert torch.allclose(batch.rgb[0] * 255, torch.as_tensor(images[f][y, x]).float())


def test_frame_rays_cover_the_image(sequence_dir):
    rays = SequenceRays(read_sequence(sequence_dir), RaySamplingConfig())
    batch = rays.frame_rays(1, stride=2)
    assert len(batch) == 6 * 8 and (batch.frame == 1).all()
