"""MANO through the HandModel interface: chumpy-free loading, smplx equivalence, missing files.

The adapter is tested on fake MANO files (built from Anny's mesh, pickled with chumpy objects like
the official files). Tests against the real, licensed MANO files run only when HOLD_MANO_DIR points
to a folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch
import trimesh

from hold.config import load_config
from hold.config.hand import HandConfig
from hold.geometry.camera import project
from hold.hand.build import build_hand_model
from hold.hand.fitting import HandFitter
from hold.hand.mano_io import convert_mano_to_npz, find_mano_file, load_mano_data
from hold.hand.model import FINGER_KEYPOINTS
from hold.hand.spec import HAND_MODEL_SPECS
from hold.refine.geometry import hand_geometry

REAL_MANO_DIR = os.environ.get("HOLD_MANO_DIR", "")
HAS_REAL_MANO = bool(REAL_MANO_DIR) and all(
    (Path(REAL_MANO_DIR) / f"MANO_{s}.pkl").is_file() for s in ("RIGHT", "LEFT")
)
needs_real_mano = pytest.mark.skipif(
    not HAS_REAL_MANO,
    reason="real MANO files absent: set HOLD_MANO_DIR to a folder with MANO_RIGHT.pkl and MANO_LEFT.pkl "
    "(licensed, https://mano.is.tue.mpg.de)",
)


def _params(hand, n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return dict(
        global_orient=torch.randn(n, 3, generator=g) * 0.5,
        pose=torch.randn(n, hand.num_pose_joints, 3, generator=g) * 0.3,
        betas=torch.randn(n, hand.num_betas, generator=g),
        transl=torch.randn(n, 3, generator=g) * 0.1,
    )


def test_missing_files_error_names_them(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_mano_file(tmp_path, "left")
    msg = str(err.value)
    assert "MANO_LEFT.pkl" in msg and "https://mano.is.tue.mpg.de" in msg and "hand.mano_dir" in msg


def test_chumpy_pickle_loads_without_chumpy(fake_mano_dir):
    import sys

    assert "chumpy" not in sys.modules  # the fake module existed only while writing
    data = load_mano_data(fake_mano_dir / "MANO_RIGHT.pkl")
    assert isinstance(data["v_template"], np.ndarray) and data["v_template"].shape == (1609, 3)
    assert isinstance(data["shapedirs"], np.ndarray) and data["shapedirs"].shape == (1609, 3, 10)
    assert isinstance(data["J_regressor"], np.ndarray) and data["J_regressor"].shape == (16, 1609)
    assert np.allclose(data["J_regressor"].sum(1), 1.0)


@pytest.mark.parametrize("side", ["right", "left"])
def test_matches_smplx_mano(side, fake_mano_dir):
    cfg = HandConfig(model="mano", mano_dir=str(fake_mano_dir))
    hand = build_hand_model(cfg, side)
    spec = HAND_MODEL_SPECS["mano"]
    assert (hand.num_pose_joints, hand.num_betas, hand.num_bones) == (
        spec.num_pose_joints,
        spec.num_betas,
        16,
    )
    p = _params(hand, 3, 0)
    out = hand(**p)
    data = load_mano_data(fake_mano_dir / f"MANO_{side.upper()}.pkl")
    from smplx.utils import Struct

    ref = smplx.MANO(
        str(fake_mano_dir), data_struct=Struct(**data), is_rhand=side == "right", use_pca=False, num_betas=10
    )
    if side == "left":  # our loader fixed the known sign error of the left file's first shape component
        ref.shapedirs[:, 0, :] = hand.shapedirs[:, 0, :]
    expected = ref(
        betas=p["betas"],
        global_orient=p["global_orient"],
        hand_pose=p["pose"].reshape(3, 45),
        transl=p["transl"],
    )
    assert (out.vertices - expected.vertices).abs().max() < 1e-5
    # smplx's 16 joints + its 5 MANO tip vertices, reordered into the common keypoint order
    from smplx.vertex_ids import vertex_ids

    tips = [vertex_ids["mano"][k] for k in ("thumb", "index", "middle", "ring", "pinky")]
    joints = torch.cat([expected.joints, expected.vertices[:, tips]], dim=1)
    order = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
    assert (out.keypoints - joints[:, order]).abs().max() < 1e-5
    assert (hand.forward_keypoints(**p) - out.keypoints).abs().max() < 1e-5
    # canonical pose reproduces the canonical (flat, shaped) mesh with identity transforms
    can = hand.canonical_output(p["betas"][0])
    assert (can.vertices[0] - hand.canonical_vertices(p["betas"][0])).abs().max() < 1e-5
    assert (can.bone_transforms - torch.eye(4)).abs().max() < 1e-5
    verts, faces = hand.sealed_canonical_mesh()
    assert trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False).is_watertight


@pytest.mark.parametrize("side", ["right", "left"])
def test_mano_flexion_follows_the_derived_joint_frames(side, fake_mano_dir):
    """Positive anatomical x (from the keypoint-derived frames) bends each finger towards the palm."""
    from hold.hand.anatomy import palm_normal

    hand = build_hand_model(
        HandConfig(model="mano", mano_dir=str(fake_mano_dir), mano_flat_hand_mean=True), side
    )
    zero = hand.zero_params(1)
    kp0 = hand(**zero).keypoints[0]
    palm = palm_normal(kp0, side)
    for f, joints in enumerate(hand.finger_joints[1:], start=1):
        a = torch.zeros(1, 15, 3)
        a[0, joints[0], 0] = 0.5
        tip = FINGER_KEYPOINTS[f][2]  # the DIP joint: a skeleton joint, unlike the fake tip vertex
        moved = hand(**dict(zero, pose=hand.anatomical_to_pose(a))).keypoints[0, tip] - kp0[tip]
        assert moved @ palm > 0.01, (side, f)
        assert torch.allclose(hand.pose_to_anatomical(hand.anatomical_to_pose(a)), a, atol=1e-6)


def test_left_shapedirs_fix_and_npz(fake_mano_dir, tmp_path):
    left = build_hand_model(HandConfig(model="mano", mano_dir=str(fake_mano_dir)), "left")
    raw = load_mano_data(fake_mano_dir / "MANO_LEFT.pkl")["shapedirs"]
    assert np.allclose(left.shapedirs[:, 0].numpy(), -raw[:, 0], atol=1e-6)  # flipped
    for side in ("RIGHT", "LEFT"):
        convert_mano_to_npz(fake_mano_dir / f"MANO_{side}.pkl", tmp_path / f"MANO_{side}.npz")
    cfg = HandConfig(model="mano", mano_dir=str(tmp_path))
    right_npz = build_hand_model(cfg, "right")
    right_pkl = build_hand_model(HandConfig(model="mano", mano_dir=str(fake_mano_dir)), "right")
    p = _params(right_npz, 2, 1)
    assert torch.allclose(right_npz(**p).vertices, right_pkl(**p).vertices, atol=1e-6)


def test_fitting_runs_on_mano(fake_mano_dir, one_thread):
    """The fitting is model-agnostic: a short fit of the (fake) MANO hand to its own keypoints."""
    cfg = HandConfig(model="mano", mano_dir=str(fake_mano_dir))
    cfg.fit.iterations, cfg.fit.hypothesis_iterations, cfg.fit.propagation_rounds = 80, 30, 0
    hand = build_hand_model(cfg, "right")
    g = torch.Generator().manual_seed(0)
    p = dict(
        global_orient=torch.tensor([[2.5, 0.3, 0.2], [2.4, 0.35, 0.2]]),
        pose=hand.sample_pose(cfg.joint_limits, 2, g, scale=0.3),
        betas=torch.zeros(10),
        transl=torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]]),
    )
    with torch.no_grad():
        kp = hand.forward_keypoints(**p)
    K = torch.tensor([[600.0, 0, 256], [0, 600, 256], [0, 0, 1]])
    kp2d = torch.cat([project(kp, K.expand(2, 3, 3)), torch.ones(2, 21, 1)], -1)
    res = HandFitter(hand, cfg.fit, cfg.joint_limits).fit(kp2d, K, kp - kp[:, :1])
    assert res.pose.shape == (2, 15, 3) and res.betas.shape == (10,)
    assert res.reprojection_error.max() < 5.0
    assert res.keypoint3d_error.max() < 0.01


def test_contact_zones_are_hold_s_vertex_ids_with_mano(fake_mano_dir, tmp_path):
    """refine.contact_regions 'zones': one contact region per zone of contact_zones.pkl beside the MANO
    files; a clear error without that file, or with a hand model whose mesh the ids do not index."""
    mano_dir = tmp_path / "body_models"
    shutil.copytree(fake_mano_dir, mano_dir)
    cfg = HandConfig(model="mano", mano_dir=str(mano_dir))
    hand = build_hand_model(cfg, "right")
    refine = load_config(
        "demo", ["refine.contact_regions=[zones]", "refine.hand_sdf_grid_resolution=16"]
    ).refine
    with pytest.raises(FileNotFoundError, match="contact_zones.pkl.*obman_train"):
        hand_geometry(hand, torch.zeros(hand.num_betas), refine, cfg)

    zones = {0: [10, 11, 12], 3: [200, 201], 1: [40]}
    with open(mano_dir / "contact_zones.pkl", "wb") as fh:
        pickle.dump({"verts": np.zeros((5, 3)), "contact_zones": zones}, fh, protocol=2)
    geo = hand_geometry(hand, torch.zeros(hand.num_betas), refine, cfg)
    assert [r.tolist() for r in geo.contact_regions] == [zones[0], zones[1], zones[3]]

    with open(mano_dir / "contact_zones.pkl", "wb") as fh:
        pickle.dump({"contact_zones": {0: [10**6]}}, fh)
    with pytest.raises(ValueError, match="zone 0 holds ids outside"):
        hand_geometry(hand, torch.zeros(hand.num_betas), refine, cfg)

    anny = build_hand_model(HandConfig(), "right")
    with pytest.raises(ValueError, match="MANO mesh"):
        hand_geometry(anny, torch.zeros(anny.num_betas), refine, HandConfig())


@needs_real_mano
@pytest.mark.parametrize("side", ["right", "left"])
def test_real_mano(side):
    hand = build_hand_model(HandConfig(model="mano", mano_dir=REAL_MANO_DIR), side)
    out = hand.canonical_output()
    assert out.vertices.shape == (1, 778, 3) and hand.faces.shape == (1538, 3)
    verts, faces = hand.sealed_canonical_mesh()
    mesh = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.volume > 0
    kp = out.keypoints[0]
    for keys in FINGER_KEYPOINTS:
        dist = (kp[list(keys)] - kp[0]).norm(dim=1)
        assert (dist[1:] > dist[:-1]).all()
    c = hand.contact_vertex_ids()
    assert all(len(t) > 0 for t in c.tips) and len(c.palm) > 0
