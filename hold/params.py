"""Per-frame hand and object parameters as embedding tables (HOLD §3.2; STYLE.md 5).

Stage 1 and 3 optimise them with their own learning rate beside the networks; stage 2 refines the
same modules. ``to_sequence`` writes them back into a ``Sequence`` so refined poses are stored in
format v1 like the initial ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hold.data.sequence import HandTrack, ObjectTrack, Sequence
from hold.geometry.camera import ObjectPose
from hold.geometry.rotations import axis_angle_to_matrix


def _table(values: np.ndarray) -> nn.Embedding:
    t = torch.as_tensor(np.asarray(values, np.float32).reshape(values.shape[0], -1))
    table = nn.Embedding(t.shape[0], t.shape[1])
    table.weight.data.copy_(t)
    return table


@dataclass
class HandPose:
    """One hand's parameters in n frames, as the hand model takes them."""

    global_orient: Tensor  # (n, 3)
    pose: Tensor  # (n, J, 3)
    betas: Tensor  # (n, B), the shared shape repeated
    transl: Tensor  # (n, 3)


class HandParams(nn.Module):
    """One hand's per-frame global_orient, pose, transl tables and shared betas."""

    def __init__(self, track: HandTrack):
        super().__init__()
        self.num_joints = track.pose.shape[1]
        self.global_orient = _table(track.global_orient)
        self.pose = _table(track.pose)
        self.transl = _table(track.transl)
        self.betas = nn.Parameter(torch.as_tensor(track.betas, dtype=torch.float32).clone())

    def forward(self, frames: Tensor) -> HandPose:
        """(n,) frame indices → the hand's parameters in those frames."""
        pose = self.pose(frames).reshape(-1, self.num_joints, 3)
        return HandPose(
            self.global_orient(frames), pose, self.betas.expand(len(frames), -1), self.transl(frames)
        )

    def to_track(self) -> HandTrack:
        w = lambda m: m.weight.detach().cpu().numpy()  # noqa: E731
        return HandTrack(
            global_orient=w(self.global_orient),
            pose=w(self.pose).reshape(-1, self.num_joints, 3),
            betas=self.betas.detach().cpu().numpy(),
            transl=w(self.transl),
        )


class ObjectParams(nn.Module):
    """Per-frame object rotation and translation tables and the shared scale (log-parametrised)."""

    def __init__(self, track: ObjectTrack):
        super().__init__()
        self.rot = _table(track.rot)
        self.transl = _table(track.transl)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(track.scale))))

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp()

    def forward(self, frames: Tensor) -> ObjectPose:
        """(n,) frame indices → the object's pose in those frames."""
        return ObjectPose(axis_angle_to_matrix(self.rot(frames)), self.transl(frames), self.scale)


class FrameParams(nn.Module):
    """All per-frame parameters of a sequence: ``hands[side]`` and ``object``."""

    def __init__(self, seq: Sequence):
        super().__init__()
        self.hands = nn.ModuleDict({side: HandParams(track) for side, track in seq.hands.items()})
        self.object = ObjectParams(seq.object)

    def to_sequence(self, seq: Sequence) -> Sequence:
        """A copy of ``seq`` whose hand and object parameters are the current values."""
        out = copy.copy(seq)
        out.hands = {side: params.to_track() for side, params in self.hands.items()}
        obj = self.object
        out.object = ObjectTrack(
            rot=obj.rot.weight.detach().cpu().numpy(),
            transl=obj.transl.weight.detach().cpu().numpy(),
            scale=float(obj.scale.detach()),
            points=seq.object.points,
            colors=seq.object.colors,
            source=seq.object.source,
        )
        return out
