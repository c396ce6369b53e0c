"""Geometry derived from the model's own mesh: sealed mesh, contact regions, joint frames."""

from __future__ import annotations

import math

import pytest
import torch
import trimesh

from hold.hand import anatomy
from hold.hand.model import TIP_KEYPOINTS


@pytest.mark.parametrize("side", ["right", "left"])
def test_sealed_canonical_mesh_is_watertight(side, anny_right, anny_left):
    h = anny_right if side == "right" else anny_left
    open_mesh = trimesh.Trimesh(h.canonical_vertices().numpy(), h.faces.numpy(), process=False)
    assert not open_mesh.is_watertight  # the wrist is open …
    verts, faces = h.sealed_canonical_mesh(torch.tensor([0.3, 0.0, -0.2, 0.1, 0.2, 0.0]))
    mesh = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent  # … and capped
    assert mesh.volume > 0  # outward normals
    assert len(faces) == len(h.faces) + 20  # one 20-edge wrist loop, fanned
    # the same faces seal any posed mesh
    out = h(**h.zero_params(1))
    posed = trimesh.Trimesh(h.seal(out.vertices)[0].numpy(), faces.numpy(), process=False)
    assert posed.is_watertight and posed.volume > 0


def test_seal_holes_on_a_cube_with_missing_faces():
    cube = trimesh.creation.box()
    top = cube.face_normals[:, 2] > 0.5
    faces = torch.tensor(cube.faces[~top], dtype=torch.long)  # remove the top side (two triangles)
    sealed, loops = anatomy.seal_holes(faces, len(cube.vertices))
    assert len(loops) == 1 and len(loops[0]) == 4
    verts = torch.cat(
        [torch.tensor(cube.vertices), torch.tensor(cube.vertices)[loops[0]].mean(0, keepdim=True)]
    )
    mesh = trimesh.Trimesh(verts.numpy(), sealed.numpy(), process=False)
    assert mesh.is_watertight and mesh.volume == pytest.approx(1.0)


def test_contact_regions(anny_right):
    h = anny_right
    c = h.contact_vertex_ids()
    verts = h.canonical_vertices()
    kp = h.canonical_output().keypoints[0]
    normals = anatomy.vertex_normals(verts, h.faces)
    dominant = h.skinning_weights.argmax(1)
    palm_normal = anatomy.palm_normal(kp, "right")
    assert palm_normal @ torch.tensor([-1.0, 0.0, 0.0]) > 0.9  # the right palm faces −x
    for f in range(5):
        tips, pads = c.tips[f], c.pads[f]
        assert len(tips) >= 5 and len(pads) >= 5
        assert int(h.tip_vertex_ids[f]) in tips.tolist()
        assert (verts[tips] - kp[TIP_KEYPOINTS[f]]).norm(dim=1).max() < 0.008
        assert (dominant[pads] == h.finger_bones[f][-1]).all()
        # pads face the palm side of their phalanx
        side = h.joint_frames[h.distal_joints[f]][:, 2]
        assert (normals[pads] @ side).min() > 0.5
    assert len(c.palm) >= 20
    assert (normals[c.palm] @ palm_normal).min() > 0.5
    assert len(c.all()) == len(torch.unique(torch.cat([*c.tips, *c.pads, c.palm])))


def test_geometric_joint_frames_match_anny_rig(anny_right, anny_left):
    """The keypoint-derived frames (used for MANO) agree with Anny's authored bone axes."""
    for h in (anny_right, anny_left):
        kp = h.canonical_output().keypoints[0]
        frames = anatomy.frames_from_keypoints(kp, h.side)
        for f, joints in enumerate(h.finger_joints):
            for i, j in enumerate(joints[-3:]):
                cos = (frames[f, i] * h.joint_frames[j]).sum(0)  # per axis
                assert (cos > math.cos(math.radians(25))).all(), (h.side, f, i, cos)
