from __future__ import annotations

import torch

from hold.render.rays import pixel_grid, pixel_rays, ray_points, sphere_intersection

K = torch.tensor([[200.0, 0.0, 31.5], [0.0, 180.0, 23.5], [0.0, 0.0, 1.0]])


def test_pixel_rays_project_back_to_their_pixels():
    pixels = pixel_grid(48, 64)
    assert pixels.shape == (48 * 64, 2) and pixels[1].tolist() == [1.0, 0.0]
    origins, dirs = pixel_rays(K, pixels)
    assert torch.all(origins == 0)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(len(pixels)))
    projected = dirs @ K.T
    torch.testing.assert_close(projected[:, :2] / projected[:, 2:], pixels)
    _, centre = pixel_rays(K, torch.tensor([[31.5, 23.5]]))
    torch.testing.assert_close(centre, torch.tensor([[0.0, 0.0, 1.0]]))


def test_pixel_rays_batched_and_z_depth():
    Ks = torch.stack([K, K * torch.tensor([[2.0], [2.0], [1.0]])])  # (2, 3, 3)
    pixels = pixel_grid(4, 5).expand(2, -1, -1)
    _, dirs = pixel_rays(Ks, pixels, normalize=False)
    assert dirs.shape == (2, 20, 3) and torch.all(dirs[..., 2] == 1)
    _, single = pixel_rays(Ks[1], pixels[1], normalize=False)
    torch.testing.assert_close(dirs[1], single)


def test_sphere_intersection_known_values():
    origins = torch.zeros(4, 3)
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    iv = sphere_intersection(origins, dirs, torch.tensor([0.0, 0.0, 5.0]), 1.0)
    assert iv.hit.tolist() == [True, True, False, False]
    torch.testing.assert_close(iv.near[:2], torch.tensor([4.0, 2.0]))
    torch.testing.assert_close(iv.far[:2], torch.tensor([6.0, 3.0]))
    assert torch.all(iv.near[2:] == iv.far[2:]) and torch.all(iv.near >= 0)
    inside = sphere_intersection(origins[:1], dirs[:1], torch.tensor([0.0, 0.0, 0.5]), 1.0)
    assert inside.hit.item() and inside.near.item() == 0.0 and abs(inside.far.item() - 1.5) < 1e-6


def test_ray_points():
    points = ray_points(
        torch.ones(2, 3),
        torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
        torch.tensor([[0.0, 2.0], [1.0, 3.0]]),
    )
    torch.testing.assert_close(points[0, 1], torch.tensor([1.0, 1.0, 3.0]))
    torch.testing.assert_close(points[1, 1], torch.tensor([4.0, 1.0, 1.0]))
