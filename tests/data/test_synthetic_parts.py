"""Parts of the synthetic generator in isolation: shapes, textures, renderer, estimators, RAW validator."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import trimesh
from PIL import Image
from skimage.feature import blob_dog, corner_harris, corner_peaks

from hold.data.synthetic import RawError, make_config, validate_raw
from hold.data.synthetic.config import NoiseConfig
from hold.data.synthetic.estimators import emulate_hand_estimates, noisy_masks
from hold.data.synthetic.objects import load_object
from hold.data.synthetic.render import Lighting, RenderMesh, render
from hold.data.synthetic.scene import intrinsics
from hold.data.synthetic.texture import UVImageAlbedo, VertexColorAlbedo
from hold.utils.io import write_json, write_npz, write_png

LIGHT = Lighting(np.array([0.0, 0.0, -1.0]), 0.5)


def test_mug_has_a_hole_through_its_handle():
    obj = load_object("mug", make_config("tiny"), np.random.default_rng(0))
    assert trimesh.Trimesh(obj.vertices, obj.faces, process=False).euler_number < 2  # genus ≥ 1


def _render_object(obj, size=128, distance=0.35):
    cfg = make_config("tiny", image_size=(size, size))
    verts = obj.vertices + [0.0, 0.0, distance]
    return render(
        [RenderMesh(verts, obj.faces, 1, obj.albedo, obj.vertices)], intrinsics(cfg), (size, size), LIGHT
    )


def test_object_texture_is_rich_in_blobs_and_corners():
    """SfM (SIFT, a difference-of-Gaussians detector) needs many distinct features on the object."""
    out = _render_object(
        load_object("can", make_config("demo"), np.random.default_rng(0)), size=256, distance=0.3
    )
    gray = out.rgb.mean(-1) / 255.0
    on_object = lambda rc: (out.labels[rc[:, 0].astype(int), rc[:, 1].astype(int)] == 1).sum()  # noqa: E731
    # ~9k object pixels; an untextured-looking coarse mosaic gives ~20 of each, this texture ~150.
    assert on_object(blob_dog(gray, max_sigma=8, threshold=0.05)) > 80
    assert on_object(corner_peaks(corner_harris(gray), min_distance=2, threshold_rel=0.01)) > 80


def test_render_depth_and_labels_are_exact_for_a_plane():
    cfg = make_config("tiny", image_size=(20, 30))
    K = intrinsics(cfg)
    z = 0.5
    verts = np.array([[-1.0, -1.0, z], [1.0, -1.0, z], [1.0, 1.0, z], [-1.0, 1.0, z]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    albedo = VertexColorAlbedo(faces, np.full((4, 3), 0.5))
    out = render([RenderMesh(verts, faces, 1, albedo, verts)], K, (20, 30), LIGHT, supersample=2)
    assert out.rgb.shape == (20, 30, 3) and (out.labels == 1).all()
    assert np.allclose(out.depth, z, atol=1e-6)
    assert np.allclose(out.rgb, round(0.5 * 255), atol=1)  # facing the light: albedo × 1


def test_user_meshes_keep_their_colours(tmp_path):
    box = trimesh.creation.box((0.05, 0.1, 0.04))
    box.visual.vertex_colors = np.tile([200, 30, 30, 255], (len(box.vertices), 1)).astype(np.uint8)
    box.export(tmp_path / "red.ply")
    obj = load_object(str(tmp_path / "red.ply"), make_config("tiny"), np.random.default_rng(0))
    assert isinstance(obj.albedo, VertexColorAlbedo) and np.allclose(obj.vertex_colors()[0], [200, 30, 30])

    textured = trimesh.creation.box((0.05, 0.1, 0.04))
    uv = np.random.default_rng(0).random((len(textured.vertices), 2))
    image = Image.fromarray(np.full((8, 8, 3), [10, 200, 10], np.uint8))
    textured.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    textured.export(tmp_path / "green.obj")
    obj = load_object(
        str(tmp_path / "green.obj"), make_config("tiny", object_size_m=0.2), np.random.default_rng(0)
    )
    assert isinstance(obj.albedo, UVImageAlbedo)
    assert np.isclose(np.ptp(obj.vertices, axis=0).max(), 0.2)
    out = _render_object(obj, size=32, distance=0.5)
    assert np.all(out.rgb[out.labels == 1][:, 1] > out.rgb[out.labels == 1][:, 0])

    with pytest.raises(ValueError, match="neither a procedural shape"):
        load_object("teapot", make_config("tiny"), np.random.default_rng(0))


def test_noisy_masks_keep_labels_and_add_boundary_noise():
    labels = np.zeros((4, 48, 48), np.uint8)
    labels[:, 10:30, 10:30] = 1
    labels[:, 20:40, 25:45] = 2
    cfg = NoiseConfig(mask_blob_prob=1.0)
    noisy = noisy_masks(labels, cfg, np.random.default_rng(0))
    assert noisy.shape == labels.shape and set(np.unique(noisy)) <= {0, 1, 2}
    changed = noisy != labels
    assert changed.any() and changed.mean() < 0.2
    clean = noisy_masks(
        labels, NoiseConfig(mask_boundary_px=0.0, mask_blob_prob=0.0), np.random.default_rng(0)
    )
    assert np.array_equal(clean, labels)


def test_hand_estimates_follow_the_configured_noise():
    T, H, W = 200, 64, 64
    rng = np.random.default_rng(0)
    joints = np.concatenate([rng.uniform(-0.03, 0.03, (T, 21, 2)), np.full((T, 21, 1), 0.5)], -1)
    K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    labels = np.full((T, H, W), 2, np.uint8)
    depth = np.full((T, H, W), 0.49, np.float32)
    cfg = NoiseConfig(kp2d_noise_px=2.0, kp2d_dropout_prob=0.1, hand_dropout_prob=0.1, kp3d_noise_m=0.005)
    est = emulate_hand_estimates(joints, K, labels, depth, cfg, np.random.default_rng(1))
    exact = joints[..., :2] / joints[..., 2:] * 100.0 + 32
    kept = est.kp2d[..., 2] > 0
    assert abs(np.std(est.kp2d[..., :2][kept] - exact[kept]) - 2.0) < 0.2
    assert 0.1 < 1 - kept.mean() < 0.3  # keypoint and whole-hand dropouts
    assert not est.occluded.any() and np.all(est.kp2d[..., 2][kept] > 0.7)
    assert (
        np.all(est.kp3d[:, 0] == 0)
        and abs(np.std(est.kp3d[:, 1:] - (joints - joints[:, :1])[:, 1:]) - 0.005) < 5e-4
    )
    assert est.valid.dtype == bool and 0.02 < 1 - est.valid.mean() < 0.2
    labels[:] = 1  # now an object surface in front of every keypoint
    hidden = emulate_hand_estimates(joints, K, labels, depth, cfg, np.random.default_rng(1))
    assert hidden.occluded.all() and np.all(hidden.kp2d[..., 2] < 0.7)


def _minimal_raw(root, T=2, H=8, W=10):
    for t in range(T):
        write_png(root / "frames" / f"{t:05d}.png", np.zeros((H, W, 3), np.uint8))
        write_png(root / "masks" / f"{t:05d}.png", np.zeros((H, W), np.uint8))
    write_json(root / "camera.json", {"fx": 10.0, "fy": 10.0, "cx": 5.0, "cy": 4.0})
    kp2d = np.zeros((T, 21, 3), np.float32)
    write_npz(
        root / "hands.npz", {"right.kp2d": kp2d, "right.kp3d": kp2d.copy(), "right.valid": np.ones(T, bool)}
    )
    return root


def test_validate_raw_names_the_file_and_key(tmp_path):
    good = _minimal_raw(tmp_path / "good")
    assert validate_raw(good) == 2

    def broken(name):
        root = tmp_path / name
        shutil.copytree(good, root)
        return root

    root = broken("camera")
    write_json(root / "camera.json", {"fx": 10.0, "fy": 10.0, "cx": 5.0})
    with pytest.raises(RawError, match=r"camera\.json.*'cy'"):
        validate_raw(root)
    root = broken("label")
    write_png(root / "masks" / "00001.png", np.full((8, 10), 7, np.uint8))
    with pytest.raises(RawError, match=r"00001\.png.*label"):
        validate_raw(root)
    root = broken("shape")
    write_npz(root / "hands.npz", {"right.kp2d": np.zeros((2, 20, 3)), "right.valid": np.ones(2, bool)})
    with pytest.raises(RawError, match=r"hands\.npz.*'right\.kp2d'.*\(2, 21, 3\).*\(2, 20, 3\)"):
        validate_raw(root)
    root = broken("size")
    write_png(root / "frames" / "00001.png", np.zeros((9, 10, 3), np.uint8))
    with pytest.raises(RawError, match=r"00001\.png.*size"):
        validate_raw(root)
    root = broken("gap")
    (root / "frames" / "00001.png").rename(root / "frames" / "00002.png")
    with pytest.raises(RawError, match="without gaps"):
        validate_raw(root)
    root = broken("gt")
    (root / "gt").mkdir()
    with pytest.raises(RawError, match=r"gt\.npz"):
        validate_raw(root)
    with pytest.raises(RawError, match="neither frames"):
        validate_raw(tmp_path / "good" / "masks")
    assert json.loads((good / "camera.json").read_text())["fx"] == 10.0
