"""Pieces of the export with known answers: rasteriser, frame choice, final stage, glTF scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh

from hold.config.export import ExportConfig
from hold.export.raster import normal_image, rasterize
from hold.export.renders import choose_frames, merge, side_view
from hold.export.scene import SceneMesh, write_scene
from hold.final.meshes import ExportError
from hold.final.model import final_stage
from hold.refine.raster import hard_silhouette
from hold.run import RunDir, RunDirError

K = torch.tensor([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
SIZE = (48, 64)


def _mesh(m: trimesh.Trimesh) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(m.vertices, dtype=torch.float32), torch.as_tensor(m.faces)


def test_raster_coverage_matches_the_reference_rasteriser():
    sphere = trimesh.creation.icosphere(3, radius=0.05).apply_translation((0.01, -0.01, 0.3))
    wall = trimesh.creation.box((0.3, 0.3, 0.01)).apply_translation((0.0, 0.0, 0.6))
    v, f = _mesh(trimesh.util.concatenate([sphere, wall]))
    frags = rasterize(v, f, K, SIZE)
    assert torch.equal(frags.mask, hard_silhouette(v[None], f, K, SIZE)[0])
    # The sphere occludes the wall: its faces win where it covers, at its depth.
    on_sphere = frags.mask & (frags.face < len(sphere.faces))
    assert on_sphere.sum() > 50
    assert frags.depth[on_sphere].max() < 0.31 and frags.depth[frags.mask & ~on_sphere].min() > 0.59


def test_raster_depth_is_perspective_correct_on_a_tilted_plane():
    # Plane z = 0.5 + 0.5 x, seen through every pixel: depth at pixel centre (u, v) is exact.
    quad = np.array([[-0.4, -0.4, 0.3], [0.4, -0.4, 0.7], [0.4, 0.4, 0.7], [-0.4, 0.4, 0.3]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    frags = rasterize(torch.as_tensor(quad, dtype=torch.float32), faces, K, SIZE)
    ys, xs = torch.nonzero(frags.mask, as_tuple=True)
    x_over_z = (xs.double() + 0.5 - 32.0) / 100.0
    expected = 0.5 / (1.0 - 0.5 * x_over_z)  # z = 0.5 + 0.5 (x/z) z
    np.testing.assert_allclose(frags.depth[ys, xs].numpy(), expected.numpy(), rtol=1e-5)


def test_normal_image_faces_the_camera():
    plane = np.array([[-0.1, -0.1, 0.5], [0.1, -0.1, 0.5], [0.1, 0.1, 0.5], [-0.1, 0.1, 0.5]])
    front = torch.tensor([[0, 2, 1], [0, 3, 2]])  # normal −z: towards the camera
    for faces in (front, front.flip(1)):  # a back face is drawn as seen from the front
        rgb, mask = normal_image(torch.as_tensor(plane, dtype=torch.float32), faces, K, SIZE)
        assert mask.any()
        np.testing.assert_allclose(rgb[mask].mean(0).numpy(), [0.5, 0.5, 1.0], atol=1e-5)


def test_choose_frames():
    valid = np.array([False, True, True, True, True, False, True, True])
    assert choose_frames(ExportConfig(num_render_frames=3), valid) == [1, 3, 7]  # first, middle, last
    assert choose_frames(ExportConfig(num_render_frames=0), valid) == []
    assert choose_frames(ExportConfig(render_frames=[5, 0]), valid) == [5, 0]
    with pytest.raises(ExportError, match="do not exist"):
        choose_frames(ExportConfig(render_frames=[8]), valid)


def test_merge_and_side_view():
    box = trimesh.creation.box((0.02, 0.02, 0.02))
    merged = merge([(box.vertices, box.faces), (box.vertices + 0.1, box.faces)])
    assert merged.faces.max() == 2 * len(box.vertices) - 1
    turned = side_view(merged, 90.0)
    centre = (merged.vertices.min(0) + merged.vertices.max(0)) / 2
    np.testing.assert_allclose((turned.vertices.min(0) + turned.vertices.max(0)) / 2, centre, atol=1e-6)
    np.testing.assert_allclose(turned.vertices[:, 1], merged.vertices[:, 1], atol=1e-7)


def test_final_stage_prefers_stage_3(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RunDirError, match="no finished training stage"):
        final_stage(run)
    run.mark_stage_done(1)
    assert final_stage(run) == (1, None)
    run.mark_stage_done(2)
    assert final_stage(run) == (1, None)
    run.mark_stage_done(3)
    assert final_stage(run) == (3, None)  # neither stage saved a mesh: nothing better to fall back on
    run.stage_dir(1).mkdir(parents=True, exist_ok=True)
    (run.stage_dir(1) / "object_canonical.ply").write_text("ply")
    stage, fallback = final_stage(run)  # stage 3 lost its object surface, stage 1 had one
    assert stage == 1 and "stage 3 ended without an object surface" in fallback
    run.stage_dir(3).mkdir(parents=True, exist_ok=True)
    (run.stage_dir(3) / "object_canonical.ply").write_text("ply")
    assert final_stage(run) == (3, None)
    assert json.loads(run.state_path.read_text())["completed_stages"].keys() == {"1", "2", "3"}


def test_scene_glb_round_trip(tmp_path):
    box = trimesh.creation.box((0.02, 0.02, 0.02)).apply_translation((0.0, 0.01, 0.4))
    colors = np.tile(np.array([[10, 200, 30]], np.uint8), (len(box.vertices), 1))
    path = write_scene(
        tmp_path / "scene.glb",
        [
            SceneMesh("object", box.vertices, box.faces, colors),
            SceneMesh("hand_right", box.vertices, box.faces, np.array([1, 2, 3], np.uint8)),
        ],
    )
    scene = trimesh.load(path)
    assert set(scene.geometry) == {"object", "hand_right"}
    obj = scene.geometry["object"]
    # OpenCV → glTF: y and z flip sign.
    np.testing.assert_allclose(obj.bounds.mean(0), [0.0, -0.01, -0.4], atol=1e-6)
    assert tuple(obj.visual.vertex_colors[0, :3]) == (10, 200, 30)
