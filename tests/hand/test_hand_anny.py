"""The Anny hand behind the HandModel interface: reference match, keypoints, mirror, inputs."""

from __future__ import annotations

import anny
import pytest
import roma
import torch

from hold.config.hand import HandConfig
from hold.hand.build import build_hand_model
from hold.hand.model import FINGER_KEYPOINTS, FINGER_NAMES, KEYPOINT_NAMES, TIP_KEYPOINTS
from hold.hand.spec import HAND_MODEL_SPECS


def _random_params(hand, n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return dict(
        global_orient=torch.randn(n, 3, generator=g),
        pose=hand.sample_pose(HandConfig().joint_limits, n, g),
        betas=(torch.rand(n, hand.num_betas, generator=g) - 0.5) * 0.8,
        transl=torch.randn(n, 3, generator=g) * 0.1,
    )


def test_sizes_agree_with_spec(anny_right):
    spec = HAND_MODEL_SPECS["anny"]
    h = anny_right
    assert (h.num_pose_joints, h.num_betas, h.num_bones) == (spec.num_pose_joints, spec.num_betas, 21)
    out = h(**_random_params(h, 3, 0))
    assert out.vertices.shape == (3, 1609, 3)
    assert out.keypoints.shape == (3, 21, 3)
    assert out.bone_transforms.shape == (3, 21, 4, 4)
    assert h.faces.shape == (3196, 3) and h.faces.dtype == torch.long
    assert torch.allclose(h.skinning_weights.sum(1), torch.ones(1609), atol=1e-5)
    assert len(KEYPOINT_NAMES) == 21 and KEYPOINT_NAMES[4] == "thumb4" and KEYPOINT_NAMES[20] == "little4"


@pytest.mark.parametrize("side", ["right", "left"])
def test_matches_anny_reference(side, anny_right, anny_left):
    """Our float32 re-implementation equals anny.Anny's own forward (float64) to < 1e-5 m."""
    h = anny_right if side == "right" else anny_left
    p = _random_params(h, 4, 1)
    out = h(**p)
    ref = anny.Anny(
        rig=f"anny-hand.{side[0].upper()}",
        topology=f"hand.{side[0].upper()}",
        pose_parameterization="local-bone",
        skinning_method="lbs",
    )
    deltas = torch.eye(4, dtype=torch.float64).repeat(4, 21, 1, 1)
    deltas[:, 0, :3, :3] = roma.rotvec_to_rotmat(p["global_orient"].double())
    deltas[:, 0, :3, 3] = p["transl"].double()
    deltas[:, 1:, :3, :3] = roma.rotvec_to_rotmat(p["pose"].double())
    expected = ref(pose_parameters=deltas, phenotype_kwargs=p["betas"].double() + 0.5)
    assert (expected["vertices"].float() - out.vertices).abs().max() < 1e-5
    heads = expected["bone_poses"][..., :3, 3].float()
    assert (heads[:, [0, 2, 6, 10, 14, 18]] - out.keypoints[:, [0, 1, 5, 9, 13, 17]]).abs().max() < 1e-5
    # the bone transforms move the canonical mesh onto the posed one (exact LBS)
    can = torch.stack([h.canonical_vertices(b) for b in p["betas"]])
    skinned = torch.einsum("vb,nbij,nvj->nvi", h.skinning_weights, out.bone_transforms[..., :3, :3], can)
    skinned = skinned + h.skinning_weights @ out.bone_transforms[..., :3, 3]
    assert (skinned - out.vertices).abs().max() < 1e-5


def test_keypoint_order_and_tips(anny_right):
    h = anny_right
    out = h.canonical_output()
    kp, verts = out.keypoints[0], out.vertices[0]
    assert kp[0].abs().max() < 1e-6  # the wrist is the root, at transl (canonical origin)
    dominant = h.skinning_weights.argmax(1)
    for f, keys in enumerate(FINGER_KEYPOINTS):
        dist = (kp[list(keys)] - kp[0]).norm(dim=1)
        assert (dist[1:] > dist[:-1]).all(), f"{FINGER_NAMES[f]}: keypoints not base → tip"
        # every keypoint of the finger lies next to the finger's own skin, not another finger's
        for k in keys:
            nearest = (verts - kp[k]).norm(dim=1).argmin()
            assert int(dominant[nearest]) in h.finger_bones[f] + (0, 1) or k == keys[0]
    # each tip is the extreme vertex of its finger along the distal segment: of the whole finger
    # at rest, of the distal phalanx in any pose (a curled finger's knuckle may reach further)
    for params in [None, _random_params(h, 2, 2)]:
        posed = out if params is None else h(**params)
        for b in range(posed.vertices.shape[0]):
            v, k = posed.vertices[b], posed.keypoints[b]
            for f, keys in enumerate(FINGER_KEYPOINTS):
                axis = torch.nn.functional.normalize(k[keys[3]] - k[keys[2]], dim=0)
                bones = h.finger_bones[f] if params is None else h.finger_bones[f][-1:]
                proj = (v[torch.isin(dominant, torch.tensor(bones))] - k[keys[2]]) @ axis
                assert proj.max() - (k[keys[3]] - k[keys[2]]) @ axis < 1e-3
    # thumb-to-little order across the hand: the knuckles run from the thumb side (+z) outward
    z = kp[[5, 9, 13, 17], 2]
    assert (z[1:] < z[:-1]).all() and kp[TIP_KEYPOINTS[0], 2] > z[0]


def test_left_is_mirror_of_right(anny_right, anny_left):
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(anny_left.canonical_vertices(), anny_right.canonical_vertices() * mirror, atol=1e-5)
    # mirrored parameters: anatomical angles equal up to the mirrored senses of twist and spread
    p = _random_params(anny_right, 2, 3)
    anat = anny_right.pose_to_anatomical(p["pose"]) * torch.tensor([1.0, -1.0, -1.0])
    left = anny_left(
        global_orient=p["global_orient"] * torch.tensor([1.0, -1.0, -1.0]),
        pose=anny_left.anatomical_to_pose(anat),
        betas=p["betas"],
        transl=p["transl"] * mirror,
    )
    assert (left.vertices - anny_right(**p).vertices * mirror).abs().max() < 1e-5
    lo_r, hi_r = anny_right.pose_limits(HandConfig().joint_limits)
    lo_l, hi_l = anny_left.pose_limits(HandConfig().joint_limits)
    assert torch.equal(lo_l[:, 0], lo_r[:, 0]) and torch.equal(lo_l[:, 1:], -hi_r[:, 1:])


def test_canonical_and_zero_pose(anny_right):
    h = anny_right
    betas = torch.tensor([0.2, -0.1, 0.3, 0.0, 0.4, -0.2])
    out = h.canonical_output(betas)
    assert (out.vertices[0] - h.canonical_vertices(betas)).abs().max() < 1e-5
    assert (out.bone_transforms - torch.eye(4)).abs().max() < 1e-5
    zero = h(**h.zero_params(1))
    # zero pose is Anny's reference pose: a natural hand within a few mm of the rest mesh
    assert (zero.vertices[0] - h.canonical_vertices()).norm(dim=1).max() < 0.005
    # fingers along +y, metric size of an adult hand (wrist to middle tip 15–22 cm)
    assert 0.15 < zero.keypoints[0, 12, 1] < 0.22


def test_betas_change_the_shape(anny_right):
    h = anny_right
    length = []
    for height in (-0.5, 0.5):
        kp = h.canonical_output(torch.tensor([0.0, 0.0, 0.0, 0.0, height, 0.0])).keypoints[0]
        length.append((kp[12] - kp[0]).norm())
    assert length[1] > length[0] * 1.03


def test_flexion_bends_towards_palm(anny_right):
    h = anny_right
    kp0 = h.canonical_output().keypoints[0]
    palm = -torch.tensor([1.0, 0.0, 0.0])  # the right palm faces −x in canonical space
    for joint, tip in [(5, 8), (9, 12), (17, 20)]:  # index, middle, little knuckles
        a = torch.zeros(1, 20, 3)
        a[0, joint, 0] = 0.5
        p = dict(h.zero_params(1), pose=h.anatomical_to_pose(a))
        moved = h(**p).keypoints[0, tip] - h(**h.zero_params(1)).keypoints[0, tip]
        assert moved @ palm > 0.01
    del kp0


def test_bad_inputs_name_argument_and_shapes(anny_right):
    p = anny_right.zero_params(2)
    with pytest.raises(ValueError, match=r"pose: expected shape \(2, 20, 3\), found \(2, 15, 3\)"):
        anny_right(**dict(p, pose=torch.zeros(2, 15, 3)))
    with pytest.raises(ValueError, match=r"betas: expected shape"):
        anny_right(**dict(p, betas=torch.zeros(2, 10)))
    with pytest.raises(ValueError, match=r"global_orient: expected shape \(B, 3\)"):
        anny_right(**dict(p, global_orient=torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"transl"):
        anny_right(**dict(p, transl=torch.zeros(3, 3)))


def test_double_precision_and_shared_betas(anny_right):
    h = build_hand_model(HandConfig(), "right").double()
    p = {k: v.double() for k, v in _random_params(h, 3, 4).items()}
    p["betas"] = p["betas"][:1]
    out64 = h(**p)
    out32 = anny_right(**{k: v.float() for k, v in p.items()})
    assert out64.vertices.dtype == torch.float64
    assert (out64.vertices.float() - out32.vertices).abs().max() < 1e-5
    # betas given per frame but equal give the same as shared betas
    per = h(**dict(p, betas=p["betas"].expand(3, -1)))
    assert (per.vertices - out64.vertices).abs().max() < 1e-9


def test_build_hand_model_from_config(tmp_path):
    assert build_hand_model(HandConfig(model="anny"), "left").side == "left"
    with pytest.raises(FileNotFoundError, match=r"MANO_RIGHT\.pkl.*mano\.is\.tue\.mpg\.de"):
        build_hand_model(HandConfig(model="mano", mano_dir=str(tmp_path)), "right")
    with pytest.raises(FileNotFoundError, match=r"hand\.mano_dir"):
        build_hand_model(HandConfig(model="mano"), "right")
    with pytest.raises(ValueError, match="side"):
        build_hand_model(HandConfig(), "both")
