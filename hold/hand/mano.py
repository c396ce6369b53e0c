"""MANO (user-supplied, licensed) behind the ``HandModel`` interface, through ``smplx``.

The model arrays are read without chumpy (``mano_io``) and handed to ``smplx.MANOLayer``; the forward
pass uses smplx's own LBS functions, so results equal ``smplx.MANO`` (tested), and additionally
returns the per-bone transforms. Conventions are smplx's, so MANO parameters from other tools carry
over: ``pose`` (B, 15, 3) is added to MANO's mean pose unless ``mano_flat_hand_mean``; the canonical
mesh is the flat template with betas (no pose correctives); ``global_orient`` rotates about the wrist
joint J_0(betas), which is *not* at the origin, and ``transl`` is added after, so the wrist keypoint
is ``J_0(betas) + transl``. The bone transforms map the template plus pose-corrective offsets to the
posed vertices. Fingertips are smplx's MANO tip vertices.

The left MANO file ships with a known sign error in its first shape component; when the right file
sits beside it we correct it as smplx's users do (flip ``shapedirs[:, 0]`` where it equals the right's).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, vertices2joints
from torch import Tensor

from hold.config.hand import HandConfig
from hold.hand import anatomy
from hold.hand.mano_io import find_mano_file, load_mano_data
from hold.hand.model import HandModel, HandOutput

# smplx's MANO tip vertices (thumb, index, middle, ring, little), smplx.vertex_ids.VERTEX_IDS["mano"]
_TIP_KEYS = ("thumb", "index", "middle", "ring", "pinky")
# MANO joints: 0 wrist, index 1-3, middle 4-6, little 7-9, ring 10-12, thumb 13-15; 16-20 = tips
_TO_COMMON = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
_FINGER_JOINTS = ((13, 14, 15), (1, 2, 3), (4, 5, 6), (10, 11, 12), (7, 8, 9))


class ManoHand(HandModel):
    """MANO hand model; see the module docstring.

    Args:
        cfg: hand config (``mano_dir``, ``mano_flat_hand_mean``, contact thresholds).
        side: ``"right"`` or ``"left"``.

    Raises:
        FileNotFoundError: when the MANO file is missing (names it and where to get it).
    """

    name = "mano"
    num_pose_joints = 15
    num_betas = 10
    num_bones = 16
    joint_types = ("mcp", "pip", "dip") * 4 + ("thumb_cmc", "thumb_mcp", "thumb_ip")
    finger_bones = _FINGER_JOINTS
    palm_bones = (0,)
    distal_joints = (14, 2, 5, 11, 8)
    finger_joints = tuple(tuple(j - 1 for j in f) for f in _FINGER_JOINTS)

    def __init__(self, cfg: HandConfig | None = None, side: str = "right") -> None:
        super().__init__(side)
        cfg = cfg or HandConfig()
        path = find_mano_file(cfg.mano_dir, side)
        data = load_mano_data(path)
        if side == "left":
            _fix_left_shapedirs(data, path.parent, path.suffix)
        import smplx
        from smplx.utils import Struct
        from smplx.vertex_ids import vertex_ids

        dt = torch.get_default_dtype()
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
            layer = smplx.MANOLayer(
                model_path=str(path),
                data_struct=Struct(**data),
                is_rhand=side == "right",
                use_pca=False,
                flat_hand_mean=cfg.mano_flat_hand_mean,
                num_betas=self.num_betas,
                dtype=dt,
            )
        n = self.num_pose_joints
        self.register_buffer("faces", layer.faces_tensor.long(), persistent=False)
        self.register_buffer("skinning_weights", layer.lbs_weights.to(dt), persistent=False)
        self.register_buffer("v_template", layer.v_template.to(dt), persistent=False)
        self.register_buffer("shapedirs", layer.shapedirs.to(dt), persistent=False)
        self.register_buffer("posedirs", layer.posedirs.to(dt), persistent=False)
        self.register_buffer("J_regressor", layer.J_regressor.to(dt), persistent=False)
        self.register_buffer("parents", layer.parents.long(), persistent=False)
        self.register_buffer("hand_mean", layer.hand_mean.to(dt).reshape(n, 3), persistent=False)
        tips = [vertex_ids["mano"][k] for k in _TIP_KEYS]
        self.register_buffer("tip_vertex_ids", torch.tensor(tips), persistent=False)
        self.register_buffer("_to_common", torch.tensor(_TO_COMMON), persistent=False)

        with torch.no_grad():
            keypoints = self.canonical_output().keypoints[0]
            per_finger = anatomy.frames_from_keypoints(keypoints, side)  # (5, 3, 3, 3)
        frames = torch.empty(n, 3, 3, dtype=dt)
        for f, joints in enumerate(_FINGER_JOINTS):
            for i, j in enumerate(joints):
                frames[j - 1] = per_finger[f, i]
        # MANO's axis-angles live in the canonical axes: pose_frames = identity
        self._setup_derived(cfg, frames, torch.eye(3, dtype=dt).expand(n, 3, 3))

    def canonical_vertices(self, betas: Tensor | None = None) -> Tensor:
        b = self._betas_or_zero(betas)
        return (self.v_template + blend_shapes(b, self.shapedirs))[0]

    def canonical_pose(self, betas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.v_template.new_zeros(3), -self.hand_mean

    def _betas_or_zero(self, betas: Tensor | None) -> Tensor:
        if betas is None:
            return self.v_template.new_zeros(1, self.num_betas)
        return betas.reshape(1, self.num_betas).to(self.v_template)

    def _pose(self, global_orient: Tensor, pose: Tensor, betas: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Shaped template (Bs, V, 3), pose features (B, 135) and (joints, transforms) of the chain."""
        b = global_orient.shape[0]
        full = torch.cat([global_orient[:, None], pose + self.hand_mean], dim=1)
        rot = batch_rodrigues(full.reshape(-1, 3)).view(b, -1, 3, 3)
        v_shaped = self.v_template + blend_shapes(betas, self.shapedirs)
        joints = vertices2joints(self.J_regressor, v_shaped).expand(b, -1, -1)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        feature = (rot[:, 1:] - eye).reshape(b, -1)
        posed_joints, rel = batch_rigid_transform(rot, joints, self.parents, dtype=rot.dtype)
        return v_shaped, feature, (posed_joints, rel)

    def forward(self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> HandOutput:
        global_orient, pose, betas, transl = self.check_inputs(global_orient, pose, betas, transl)
        b = global_orient.shape[0]
        v_shaped, feature, (joints, rel) = self._pose(global_orient, pose, betas)
        v_posed = v_shaped + (feature @ self.posedirs).view(b, -1, 3)
        transforms = rel.clone()
        transforms[..., :3, 3] += transl[:, None]
        blend = (self.skinning_weights @ transforms[..., :3, :].reshape(b, -1, 12)).view(b, -1, 3, 4)
        vertices = (blend[..., :3] @ v_posed[..., None])[..., 0] + blend[..., 3]
        keypoints = torch.cat([joints + transl[:, None], vertices[:, self.tip_vertex_ids]], dim=1)
        return HandOutput(
            vertices=vertices, keypoints=keypoints[:, self._to_common], bone_transforms=transforms
        )

    def forward_keypoints(self, global_orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> Tensor:
        global_orient, pose, betas, transl = self.check_inputs(global_orient, pose, betas, transl)
        b = global_orient.shape[0]
        tips = self.tip_vertex_ids
        v_shaped, feature, (joints, rel) = self._pose(global_orient, pose, betas)
        dirs = self.posedirs.view(self.posedirs.shape[0], -1, 3)[:, tips].reshape(self.posedirs.shape[0], -1)
        v_tips = v_shaped[:, tips] + (feature @ dirs).view(b, -1, 3)
        blend = (self.skinning_weights[tips] @ rel[..., :3, :].reshape(b, -1, 12)).view(b, -1, 3, 4)
        v_tips = (blend[..., :3] @ v_tips[..., None])[..., 0] + blend[..., 3]
        keypoints = torch.cat([joints, v_tips], dim=1) + transl[:, None]
        return keypoints[:, self._to_common]


def _fix_left_shapedirs(data: dict, folder, suffix: str) -> None:
    """Flip the left model's first shape component where it equals the right's (MANO file bug)."""
    right = folder / f"MANO_RIGHT{suffix}"
    if not right.is_file():
        return
    r = np.asarray(load_mano_data(right)["shapedirs"])
    left = np.array(data["shapedirs"], dtype=np.float64)
    if left.shape == r.shape and np.abs(left[:, 0, :] - r[:, 0, :]).sum() < 1.0:
        left[:, 0, :] *= -1.0
        data["shapedirs"] = left
