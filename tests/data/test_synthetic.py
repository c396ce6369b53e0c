"""The synthetic generator: RAW validity, ground-truth consistency, grasp quality, determinism."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from hold.data.sequence import read_ground_truth, read_sequence
from hold.data.synthetic import generate, main, make_config, validate_raw
from hold.data.synthetic.grasp import exact_signed_distance
from hold.data.synthetic.render import RenderMesh, cast
from hold.data.synthetic.texture import VertexColorAlbedo
from hold.geometry.camera import project
from hold.hand.build import build_hand_model

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

TOLERANCE_M = 0.002  # the contact / penetration threshold


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny RAW dir and oracle SEQUENCE, made through the command-line entry point."""
    root = tmp_path_factory.mktemp("synth")
    assert main([str(root / "raw"), "--preset", "tiny", "--seed", "3", "--oracle", str(root / "seq")]) == 0
    return root / "raw", root / "seq"


@pytest.fixture(scope="module")
def hand():
    return build_hand_model(side="right")


def _labels(raw: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted((raw / "synth" / "labels").glob("*.png"))])


def test_tiny_preset_is_a_valid_raw_dir(tiny):
    raw, _ = tiny
    T = validate_raw(raw)
    image = np.asarray(Image.open(raw / "frames" / "00000.png"))
    assert 1 <= T <= 8 and max(image.shape[:2]) <= 64 and image.shape[2] == 3
    meta = json.loads((raw / "synth.json").read_text())
    assert meta["seed"] == 3 and meta["noise"]["kp2d_noise_px"] > 0 and meta["grasp"]["accepted"]
    assert (raw / "contact_sheet.png").is_file()
    masks = np.stack([np.asarray(Image.open(raw / "masks" / f"{t:05d}.png")) for t in range(T)])
    exact = _labels(raw)
    assert set(np.unique(masks)) <= {0, 1, 2} and {1, 2} <= set(np.unique(exact))
    assert (masks != exact).any()  # the emulated segmenter is noisy …
    for label in (1, 2):  # … but close to the truth
        inter = ((masks == label) & (exact == label)).sum()
        assert inter / ((masks == label) | (exact == label)).sum() > 0.5


def _scene_layers(raw: Path, hand) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per frame, the z-depth of the object alone and of the (sealed) hand alone at each pixel centre."""
    gt = read_ground_truth(raw / "gt")
    mesh = trimesh.load(raw / "gt" / "object.ply", process=False)
    cam = json.loads((raw / "camera.json").read_text())
    H, W = np.asarray(Image.open(raw / "frames" / "00000.png")).shape[:2]
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    d = np.stack([(u - cam["cx"]) / cam["fx"], (v - cam["cy"]) / cam["fy"], np.ones_like(u)], -1).reshape(
        -1, 3
    )
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    faces = hand.sealed_faces.numpy()
    obj_depth, hand_depth = [], []
    for t in range(gt.num_frames):
        ov = np.asarray(mesh.vertices) @ gt.object_R[t].T + gt.object_t[t]
        hv = hand.seal(torch.as_tensor(gt.verts["right"][t])).numpy()
        for verts, f, out in ((ov, np.asarray(mesh.faces), obj_depth), (hv, faces, hand_depth)):
            dummy = VertexColorAlbedo(f, np.zeros((len(verts), 3)))
            hits = cast([RenderMesh(verts, f, 0, dummy, verts)], d)
            out.append((hits.t * d[:, 2]).reshape(H, W))
    return obj_depth, hand_depth


def test_masks_agree_with_depth_ordering(tiny, hand):
    raw, _ = tiny
    labels = _labels(raw)
    depth = np.load(raw / "synth" / "depth.npz")["depth"]
    obj_depth, hand_depth = _scene_layers(raw, hand)
    for t in range(len(labels)):
        o, h, lab = obj_depth[t], hand_depth[t], labels[t]
        assert np.all(o[lab == 1] <= h[lab == 1]) and np.all(h[lab == 2] <= o[lab == 2])
        assert np.allclose(depth[t][lab == 1], o[lab == 1], atol=1e-4)
        assert np.allclose(depth[t][lab == 2], h[lab == 2], atol=1e-4)
        background = lab == 0
        assert np.all(np.minimum(o, h)[background] >= depth[t][background] - 1e-4)  # nothing of ours in front


def test_projected_keypoints_land_in_the_hand_mask(tiny):
    raw, _ = tiny
    gt = read_ground_truth(raw / "gt")
    labels = _labels(raw)
    depth = np.load(raw / "synth" / "depth.npz")["depth"]
    K = np.load(raw / "synth" / "params.npz")["K"]
    uv = np.floor(project(gt.joints["right"], K)).astype(int)
    T, H, W = labels.shape
    assert ((uv >= 0) & (uv < [W, H])).all()
    in_hand = 0
    for t in range(T):
        for (x, y), z in zip(uv[t], gt.joints["right"][t, :, 2]):
            window = labels[t, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]  # ±1 px at 64 px
            on_hand = bool((window == 2).any())
            behind_object = labels[t, y, x] == 1 and depth[t, y, x] < z
            assert on_hand or behind_object, f"frame {t}: keypoint at pixel ({x}, {y}) is off the hand"
            in_hand += on_hand
    assert in_hand >= 0.7 * uv.shape[0] * uv.shape[1]


def test_grasp_touches_with_three_fingertips_and_does_not_penetrate(tiny, hand):
    raw, _ = tiny
    gt = read_ground_truth(raw / "gt")
    mesh = trimesh.load(raw / "gt" / "object.ply", process=False)
    verts, faces = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces)
    tips = hand.contact_vertex_ids().tips
    sealed_faces = hand.sealed_faces.numpy()
    for t in range(gt.num_frames):
        obj = verts @ gt.object_R[t].T.astype(np.float64) + gt.object_t[t]
        hv = gt.verts["right"][t].astype(np.float64)
        sd = exact_signed_distance(hv, obj, faces)
        touching = [np.abs(sd[ids.numpy()]).min() <= TOLERANCE_M for ids in tips]
        assert sum(touching) >= 3, f"frame {t}: fingertip distances {[sd[i.numpy()].min() for i in tips]}"
        assert sd.min() >= -TOLERANCE_M
        sealed = hand.seal(torch.as_tensor(hv)).numpy()
        assert exact_signed_distance(obj, sealed, sealed_faces).min() >= -TOLERANCE_M


def test_oracle_sequence_holds_the_exact_parameters(tiny, hand):
    raw, seq_dir = tiny
    seq = read_sequence(seq_dir)
    gt = read_ground_truth(raw / "gt")
    track = seq.hands["right"]
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    out = hand(as_t(track.global_orient), as_t(track.pose), as_t(track.betas), as_t(track.transl))
    assert np.abs(out.keypoints.numpy() - gt.joints["right"]).max() < 1e-4
    assert np.abs(out.vertices.numpy() - gt.verts["right"]).max() < 1e-4
    from scipy.spatial.transform import Rotation

    R = Rotation.from_rotvec(seq.object.rot).as_matrix()
    assert np.allclose(R, gt.object_R, atol=1e-5) and np.allclose(seq.object.transl, gt.object_t, atol=1e-6)
    assert np.linalg.norm(seq.object.points, axis=1).max() <= 1.0 + 1e-5
    mesh = trimesh.load(raw / "gt" / "object.ply", process=False)
    metres = seq.object.points * seq.object.scale  # canonical → GT-mesh frame
    assert (
        np.abs(exact_signed_distance(metres, np.asarray(mesh.vertices), np.asarray(mesh.faces))).max() < 1e-4
    )
    for t in range(seq.num_frames):
        assert np.array_equal(seq.load_mask(t), _labels(raw)[t])


def test_same_seed_gives_identical_files(tiny, tmp_path):
    raw, seq_dir = tiny
    again = generate(tmp_path / "raw", preset="tiny", seed=3, oracle=tmp_path / "seq")
    for a, b in ((raw, again.raw_dir), (seq_dir, again.oracle_dir)):
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        mismatch = [f for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
        assert not mismatch, f"differ between runs with the same seed: {mismatch}"


def test_user_mesh_orbiting_camera_and_distractor(tmp_path):
    """A coloured .ply user mesh, the moving-camera option and a distractor, in one small run."""
    box = trimesh.creation.box((0.06, 0.12, 0.05))
    box = box.subdivide().subdivide()
    rng = np.random.default_rng(0)
    box.visual.vertex_colors = rng.integers(0, 256, (len(box.vertices), 4), dtype=np.uint8)
    box.export(tmp_path / "mybox.ply")
    cfg = make_config("tiny", camera_motion="orbit", camera_orbit_deg=30.0, distractor=True, num_frames=3)
    result = generate(tmp_path / "raw", seed=1, object=str(tmp_path / "mybox.ply"), cfg=cfg)
    assert validate_raw(result.raw_dir) == 3
    params = np.load(result.raw_dir / "synth" / "params.npz")
    assert not np.allclose(params["object.R"][0], params["object.R"][-1])
    meta = json.loads((result.raw_dir / "synth.json").read_text())
    assert meta["object"].endswith("mybox.ply") and meta["config"]["camera_motion"] == "orbit"


def test_demo_preset_is_a_valid_raw_dir_when_shortened(tmp_path):
    cfg = make_config("demo", num_frames=2)
    cfg.grasp.steps = 50  # the grasp's quality is tested on the tiny preset; here only the format
    result = generate(tmp_path / "raw", cfg=cfg)
    assert validate_raw(result.raw_dir) == 2
    image = np.asarray(Image.open(result.raw_dir / "frames" / "00000.png"))
    assert image.shape[:2] == make_config("demo").image_size
