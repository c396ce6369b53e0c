from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hold.utils.io import write_png
from preprocess.config import CameraConfig, FramesConfig, MasksConfig, SfmConfig
from preprocess.errors import PreprocessError
from preprocess.frames import run_frames
from preprocess.masks import run_masks
from preprocess.sfm import interpolate_poses, normalise, run_sfm, trim_points
from preprocess.sfm_images import SfmImages, crop_box, scale_intrinsics
from tests.preprocess.conftest import relative_rotation_errors_deg

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not


def _prepare(raw: Path, work: Path) -> None:
    run_frames(raw, work / "frames", FramesConfig())
    run_masks(raw, work, work / "masks", MasksConfig())


def test_sfm_recovers_object_rotations(object_clip, tmp_path: Path):
    raw, gt = object_clip
    work = tmp_path / "work"
    _prepare(raw, work)
    # no hand in this clip: the SfM path alone (fallback=none never reads hands)
    cfg = SfmConfig(fallback="none")
    summary = run_sfm(raw, work / "frames", work / "masks", None, work / "sfm", cfg, CameraConfig(), None)
    T = len(gt["R"])
    assert summary["registered"] >= 0.9 * T and summary["focal_source"] == "camera.json"
    assert summary["cropped"] and summary["mode"] == "sfm" and summary["attempts"][0]["name"] == "default"
    with np.load(work / "sfm" / "sfm.npz") as f:
        out = {k: f[k] for k in f.files}
    err = relative_rotation_errors_deg(Rotation.from_rotvec(out["rot"]).as_matrix(), gt["R"])
    assert np.median(err) < 5.0, err
    radius = np.linalg.norm(out["points"], axis=1)
    assert radius.max() <= SfmConfig().sphere_fill + 1e-6
    # The canonical unit sphere holds the whole object (its mask hull, not just the SfM points): every
    # object pixel's ray passes through the sphere, whose image does not depend on the unknown scale.
    from PIL import Image

    for t in range(T):
        ys, xs = np.nonzero(np.asarray(Image.open(raw / "masks" / f"{t:05d}.png")) == 1)
        rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(out["K"]).T
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        centre = out["u"][t].astype(np.float64)
        miss = np.linalg.norm(centre - (rays @ centre)[:, None] * rays, axis=1)  # ray–centre distance
        assert miss.max() < 1.0, (t, miss.max())
    # the stored (rot, u) reproject the cloud like the SfM model, whatever the scale: check against GT
    # silhouettes: most projected points of frame 0 fall on the object
    R0 = Rotation.from_rotvec(out["rot"][0]).as_matrix()
    uv = (out["points"] @ R0.T + out["u"][0]) @ out["K"].T
    uv = np.round(uv[:, :2] / uv[:, 2:]).astype(int)
    mask = np.asarray(Image.open(raw / "masks" / "00000.png")) == 1
    assert mask[uv[:, 1].clip(0, 159), uv[:, 0].clip(0, 159)].mean() > 0.9


def test_too_few_registered_frames_is_a_clear_error(object_clip, tmp_path: Path):
    raw, _ = object_clip
    broken = tmp_path / "raw"
    (broken / "masks").mkdir(parents=True)
    (broken / "frames").symlink_to(raw / "frames")
    for t in range(12):  # only a thin strip of the object is visible in each frame
        m = np.zeros((160, 160), np.uint8)
        m[70:90, 70:90] = 1
        write_png(broken / "masks" / f"{t:05d}.png", m)
    work = tmp_path / "work"
    _prepare(broken, work)
    with pytest.raises(
        PreprocessError, match=r"SfM registered \d+/12 frames reliably .*Try: sfm.fallback=hand"
    ):
        cfg = SfmConfig(fallback="none")
        run_sfm(broken, work / "frames", work / "masks", None, work / "sfm", cfg, CameraConfig(), None)


def test_trimming_normalising_and_interpolation():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(200, 3))
    xyz[0] = (50, 0, 0)  # far outlier
    error, track = np.full(200, 0.5), np.full(200, 4)
    error[1], track[2] = 5.0, 2
    keep = trim_points(xyz, error, track, SfmConfig())
    assert not keep[:3].any() and keep[3:].mean() > 0.9
    c, r = normalise(xyz[keep], 0.9)
    assert np.linalg.norm((xyz[keep] - c) / r, axis=1).max() == pytest.approx(0.9)
    rot = np.zeros((5, 3))
    rot[0], rot[4] = (0, 0, 0), (0, 0, 1.0)
    u = np.zeros((5, 3))
    u[4] = (4, 0, 0)
    reg = np.array([True, False, False, False, True])
    rot_f, u_f = interpolate_poses(rot, u, reg)
    np.testing.assert_allclose(rot_f[2], (0, 0, 0.5), atol=1e-9)
    np.testing.assert_allclose(u_f[1], (1, 0, 0))
    # ends: constant velocity from the registered frames, or a copy without velocity frames
    reg = np.array([False, True, True, True, False])
    rot = np.stack([np.zeros(3), (0, 0, 0.1), (0, 0, 0.2), (0, 0, 0.3), np.zeros(3)])
    u = rot * 10
    rot_f, u_f = interpolate_poses(rot, u, reg, velocity_frames=2)
    np.testing.assert_allclose(rot_f[[0, 4]], [(0, 0, 0.0), (0, 0, 0.4)], atol=1e-9)
    np.testing.assert_allclose(u_f[[0, 4]], [(0, 0, 0.0), (0, 0, 4.0)], atol=1e-9)
    rot_f, _ = interpolate_poses(rot, u, reg, velocity_frames=0)
    np.testing.assert_allclose(rot_f[0], (0, 0, 0.1), atol=1e-9)


def test_scale_intrinsics_round_trip():
    K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
    up = scale_intrinsics(K, 2.5, 2.5)
    np.testing.assert_allclose(up[:2, 2], [79.5, 59.5])
    np.testing.assert_allclose(scale_intrinsics(up, 1 / 2.5, 1 / 2.5), K)


def test_crop_box_follows_the_largest_component_with_a_margin():
    mask = np.zeros((100, 100), bool)
    mask[40:60, 30:50] = True  # the object, 20 px
    mask[2:4, 90:92] = True  # a stray blob far away
    x0, y0, x1, y1 = crop_box(mask, 0.25, min_part=0.25)
    assert (x1 - x0, y1 - y0) == (30, 30) and (x0, y0) == (25, 35)


def test_crop_box_keeps_both_parts_of_an_object_cut_by_the_fingers():
    mask = np.zeros((100, 100), bool)
    mask[20:40, 30:50] = True  # above the fingers
    mask[46:60, 30:50] = True  # below them, a little smaller
    mask[90:92, 2:4] = True  # a stray blob
    assert crop_box(mask, 0.0, min_part=0.25) == (20, 20, 60, 60)  # both parts, not the blob
    assert crop_box(mask, 0.0, min_part=1.0) == (30, 20, 50, 40)  # the largest part alone


def test_hloc_backend_is_chosen_and_called(monkeypatch, tmp_path: Path):
    """hloc is not installable here: a stand-in package checks what the adapter asks of it."""
    import sys
    import types

    from hold.utils import external
    from preprocess.colmap import CameraPrior, choose_backend, run_hloc

    external._reset_for_tests()
    with pytest.raises(PreprocessError, match="sfm.backend=hloc needs the optional package 'hloc'"):
        choose_backend(SfmConfig(backend="hloc"))
    assert choose_backend(SfmConfig(backend="auto")) == "pycolmap"

    calls = {}
    pkg = types.ModuleType("hloc")
    ef, mf, rc = (
        types.ModuleType(f"hloc.{n}") for n in ("extract_features", "match_features", "reconstruction")
    )
    ef.confs = {"superpoint_aachen": {"output": "feats-superpoint"}}
    mf.confs = {"superpoint+lightglue": {"output": "matches-lightglue"}}
    ef.main = lambda conf, image_dir, export_dir, image_list: calls.setdefault(
        "features", export_dir / "f.h5"
    )
    mf.main = lambda conf, pairs, features, export_dir: calls.setdefault("matches", export_dir / "m.h5")
    fake_model = types.SimpleNamespace(num_reg_images=lambda: 5)
    rc.main = lambda *args, **kwargs: calls.setdefault("mapping", (args, kwargs)) and fake_model
    pkg.extract_features, pkg.match_features, pkg.reconstruction = ef, mf, rc
    for name, mod in (
        ("hloc", pkg),
        ("hloc.extract_features", ef),
        ("hloc.match_features", mf),
        ("hloc.reconstruction", rc),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    external._reset_for_tests()
    assert choose_backend(SfmConfig(backend="auto")) == "hloc"
    names = [f"{t:05d}.png" for t in range(6)]
    K = np.array([[100.0, 0, 49.5], [0, 100.0, 49.5], [0, 0, 1]])
    images = SfmImages(tmp_path, tmp_path, names, np.arange(6), np.repeat(K[None], 6, 0), cropped=False)
    models, attempts = run_hloc(images, tmp_path, CameraPrior(K, known=True), SfmConfig(sequential_overlap=2))
    assert models == [fake_model] and attempts == [{"name": "hloc", "registered": 5, "models": [5]}]
    pairs = (tmp_path / "pairs.txt").read_text().splitlines()
    assert len(pairs) == 15  # short clip: every pair
    args, kwargs = calls["mapping"]
    assert args[3:] == (calls["features"], calls["matches"])
    assert kwargs["image_options"] == {"camera_model": "PINHOLE", "camera_params": "100.0,100.0,50.0,50.0"}
    assert kwargs["mapper_options"]["ba_refine_focal_length"] is False
    external._reset_for_tests()
