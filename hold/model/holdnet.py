"""HOLD-Net (HOLD §3.2, docs/architecture.md): renders rays of a sequence from its nodes and per-frame parameters.

The module returns render outputs only; losses, schedules and logging live in ``hold.system``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from torch import Tensor, nn

from hold.config.hand import HandConfig
from hold.config.model import ModelConfig
from hold.config.render import RenderConfig
from hold.data.rays import RayBatch, SequenceRays
from hold.data.sequence import Sequence
from hold.fields.background import BackgroundField
from hold.geometry.mesh import largest_component, marching_cubes, sdf_grid
from hold.hand.build import build_hand_model
from hold.hand.model import HandOutput
from hold.model.nodes import HandNode, NodeEval, NodeRays, ObjectNode, SceneTerms
from hold.params import FrameParams
from hold.render.compositing import CompositeRender, background_colour, composite
from hold.render.samplers import build_sampler


@dataclass
class HoldOutput:
    """Everything one rendering step produces.

    Attributes:
        render: the composited render (colour, class distribution, per-node amodal masks …).
        far_rays: per node label, (R,) bool rays far from that node's mesh (sparsity).
        node_labels: labels of the nodes, in ``render.nodes`` order.
    """

    render: CompositeRender
    far_rays: dict[int, Tensor]
    node_labels: tuple[int, ...]


def group_by_frame(batch: RayBatch) -> NodeRays:
    """Check that ``batch`` is n frames × r rays, frame-major, and return that layout."""
    frames, counts = torch.unique_consecutive(batch.frame, return_counts=True)
    if not bool((counts == counts[0]).all()) or len(torch.unique(frames)) != len(frames):
        raise ValueError(
            "ray batch must hold the same number of rays for each frame, grouped by frame "
            f"(found counts {counts.tolist()} for frames {frames.tolist()})"
        )
    return NodeRays(frames=frames, origins=batch.origins, directions=batch.directions)


class HoldNet(nn.Module):
    """Hand node(s), object node, background field and the per-frame parameters of one sequence.

    Args:
        seq: the training sequence (initial poses, object points, number of frames).
        model_cfg, hand_cfg, render_cfg: component configs.
        seed: seed for the hand SDF-prior points.
    """

    def __init__(
        self,
        seq: Sequence,
        model_cfg: ModelConfig,
        hand_cfg: HandConfig,
        render_cfg: RenderConfig,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = model_cfg
        self.params = FrameParams(seq)
        self.hands = nn.ModuleDict(
            {
                side: HandNode(
                    model_cfg.hand,
                    hand_cfg,
                    render_cfg.density,
                    build_hand_model(hand_cfg, side),
                    torch.as_tensor(track.betas, dtype=torch.float32),
                    seed,
                )
                for side, track in seq.hands.items()
            }
        )
        self.object = ObjectNode(
            model_cfg.object, render_cfg.density, seq.num_frames, torch.as_tensor(seq.object.points)
        )
        self.background = BackgroundField(model_cfg.background, seq.num_frames)
        self.sampler = build_sampler(render_cfg.sampler)

    def set_step(self, step: int) -> None:
        """Forward the training step to the fields (coarse-to-fine annealing)."""
        for node in (*self.hands.values(), self.object):
            node.sdf_net.set_step(step)
            node.color_net.set_step(step)

    def posed_hand(self, side: str, frames: Tensor) -> HandOutput:
        p = self.params.hands[side](frames)
        return self.hands[side].hand_model(p.global_orient, p.pose, p.betas, p.transl)

    def canonical_terms(self, generator: torch.Generator) -> SceneTerms:
        """Regulariser samples of every node in its canonical space (eikonal, hand SDF prior)."""
        hands = {side: node.canonical_terms(generator) for side, node in self.hands.items()}
        return SceneTerms(hands, self.object.canonical_terms(generator))

    def forward(self, batch: RayBatch, generator: torch.Generator | None = None) -> HoldOutput:
        rays = group_by_frame(batch)
        perturb = self.training
        evals: list[NodeEval] = []
        for side, node in self.hands.items():
            evals.append(
                node.render_samples(
                    rays, self.posed_hand(side, rays.frames), self.sampler, perturb, generator
                )
            )
        evals.append(
            self.object.render_samples(
                rays, self.params.object(rays.frames), self.sampler, perturb, generator
            )
        )
        fars = torch.stack([e.samples.far for e in evals], -1).max(-1).values
        bg = background_colour(
            self.background(
                batch.directions, fars.detach() + self.cfg.background_margin, batch.frame, perturb, generator
            )
        )
        return HoldOutput(
            render=composite([e.samples for e in evals], bg),
            far_rays={e.samples.label: e.far_rays for e in evals},
            node_labels=tuple(e.samples.label for e in evals),
        )

    def load_weights(self, path: Path) -> HoldNet:
        """Load the weights a training stage saved (``RUN/stage<k>/model.pt``); returns the model.

        Raises:
            ValueError: they do not fit this model (another config or sequence), naming the file.
        """
        try:
            self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except RuntimeError as e:
            raise ValueError(f"{path}: does not fit the run's config ({str(e).splitlines()[0]})") from None
        return self

    def load_fields(self, path: Path) -> HoldNet:
        """Load the networks, codes and densities of a stage's weights (``RUN/stage<k>/model.pt``) but
        keep this model's per-frame parameters (the poses it was built with); returns the model.

        Raises:
            ValueError: they do not fit this model (another config or sequence), naming the file.
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            for name, module in self.named_children():
                if name != "params":
                    prefix = name + "."
                    module.load_state_dict(
                        {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                    )
        except RuntimeError as e:
            raise ValueError(f"{path}: does not fit the run's config ({str(e).splitlines()[0]})") from None
        return self

    # ----------------------------------------------------------------------------- inference
    @torch.no_grad()
    def extract_object_mesh(self, resolution: int, level: float = 0.0) -> trimesh.Trimesh:
        """Canonical object mesh (canonical units) by marching cubes on the object SDF (HOLD §3.3), at
        its zero set or at ``level`` (canonical units, > 0 outside).

        Raises:
            EmptySurfaceError: the SDF has no zero level set inside the object's bounding box.
        """
        grid, bounds = self.object_sdf_grid(resolution)
        return largest_component(marching_cubes(grid, bounds, level))

    @torch.no_grad()
    def object_sdf_grid(self, resolution: int) -> tuple[np.ndarray, tuple[float, float]]:
        """The object SDF on a ``resolution``³ grid over its bounding cube (canonical units), and the
        cube's bounds: marching cubes at several levels without evaluating the SDF again."""
        bound = self.cfg.object.sphere_radius + self.cfg.object.sphere_margin
        sdf, device = self.object.canonical_sdf, self.params.object.scale.device
        return sdf_grid(lambda x: sdf(x.to(device)), (-bound, bound), resolution), (-bound, bound)

    @torch.no_grad()
    def render_frame(self, rays: SequenceRays, index: int, stride: int, chunk: int) -> dict[str, np.ndarray]:
        """Render every ``stride``-th pixel of the ``index``-th frame of ``rays`` in chunks of ``chunk``
        rays; arrays shaped (h, w, …): rgb, normal, class_probs, amodal and the image (gt)."""
        was_training = self.training
        self.eval()
        device = self.params.object.scale.device
        frame = rays.frame_rays(index, stride)
        parts: dict[str, list[Tensor]] = {"rgb": [], "normal": [], "class_probs": [], "amodal": []}
        for start in range(0, len(frame), chunk):
            sub = RayBatch(*(getattr(frame, f)[start : start + chunk] for f in frame.__dataclass_fields__))
            render = self(sub.to(device)).render
            for key in parts:
                parts[key].append(getattr(render, key).cpu())
        self.train(was_training)
        h, w = math.ceil(rays.height / stride), math.ceil(rays.width / stride)
        out = {k: torch.cat(v).reshape(h, w, -1).numpy() for k, v in parts.items()}
        out["gt"] = frame.rgb.reshape(h, w, 3).numpy()
        return out
