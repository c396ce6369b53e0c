"""Configuration of HOLD-Net training: loss weights and ramps, optimiser groups, schedule (HOLD §3.2, §4)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from hold.utils.checks import at_least, zero_or_above
from hold.utils.schedule import check_ramp

SegmentationForm = Literal["nll", "squared"]


@dataclass
class LossConfig:
    """Loss weights: a constant or a ramp ``[start_step, start_value, end_value, end_step]``."""

    rgb: float | list[float] = 1.0
    """L1 photometric loss on the mean over the colour channels (HOLD's released code sums them: its
    weight 1 is 3 here)."""
    segmentation: float | list[float] = field(default_factory=lambda: [0, 1.1, 0.1, 30000])
    """Rendered class distribution vs the masks (HOLD: 1.1 → 0.1 over the first ~30k steps)."""
    segmentation_form: SegmentationForm = "nll"
    """``nll`` (ours): negative log-likelihood of each ray's label, which keeps pulling on rays whose
    rendered class is confidently wrong (thin parts, the object behind fingers). ``squared`` (HOLD's
    released code): squared error to the one-hot label, bounded per ray."""
    eikonal: float | list[float] = 0.1
    """Eikonal regulariser on every node's SDF gradients (ours: 0.1; HOLD's released code 1e-5 on the sum
    over the nodes, 2e-5 on our mean). Hash-grid fields trained for a few thousand steps drift far
    from a distance function without a strong one, and meshing and the sparsity bands assume one."""
    eikonal_min: float = 0.0
    """Add the eikonal term only while its value exceeds this (HOLD's released code: 8e-4); 0 (ours):
    always."""
    hand_prior: float | list[float] = 1.0
    """L1 between the hand field's canonical SDF and the sealed hand-model mesh SDF (metres). Ours: 1
    from step 0; HOLD's released code: 5 from step 200, once its first canonical hand mesh exists."""
    sparsity: float | list[float] = field(default_factory=lambda: [0, 0.0, 1.0, 30000])
    """Opacity of each node on rays far from its mesh (HOLD: grows 0 → 1 over the first ~30k steps)."""

    def __post_init__(self) -> None:
        at_least(self, 0, "eikonal_min")
        for f in fields(self):
            if f.name not in ("segmentation_form", "eikonal_min"):
                check_ramp(getattr(self, f.name), f.name)


@dataclass
class OptimConfig:
    lr: float = 1e-4
    """Adam learning rate of the networks and the densities' β (HOLD: 1e-4)."""
    lr_density: float = 4e-6
    """Learning rate of each node's β (metres; HOLD's 1e-4 on β = 0.1 scene units, rescaled to β = 4 mm)."""
    lr_latents: float = 1e-4
    """Learning rate of the per-frame latent codes (object colour, background)."""
    lr_frame_params: float = 1e-5
    """Learning rate of the per-frame hand/object poses, hand shape and object scale (HOLD: 1e-5)."""
    optimize_frame_params: bool = True
    """Optimise poses during training (HOLD does, slowly); false keeps them fixed, which also skips
    backpropagating through the hand skinning (faster)."""
    optimize_object_poses: bool = False
    """Optimise the per-frame object rotations and translations with the rendering losses in stages 1
    and 3 (at ``lr_object_poses``), also when ``optimize_frame_params`` is false: corrects poses that
    preprocessing filled from the hand or interpolated (beyond HOLD, which moves them at 1e-5)."""
    object_rot_frames: Literal["all", "filled"] = "all"
    """Which frames' object rotations ``optimize_object_poses`` moves: ``all``, or ``filled`` (only the
    frames whose pose did not come from SfM, ``object.source``; all when the sequence records no
    source). Translations move in every frame either way: SfM's are only as good as the scale fitted
    to the hand. Adam's steps on the rendering losses' noisy per-frame gradients move even a correct
    rotation by degrees."""
    lr_object_poses: float = 1e-3
    """Learning rate of the object poses when ``optimize_object_poses`` is set (radians of axis-angle and
    metres per step, roughly: Adam)."""
    lr_decay: float = 1.0
    """Factor the learning rates reach at the last step of a stage, decaying exponentially from the
    start (1: constant, as HOLD). Hash grids trained at a high constant rate keep oscillating."""
    grad_clip: float = 0.5
    """Gradient-norm clipping (HOLD: 0.5); 0 disables it."""

    def __post_init__(self) -> None:
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay: expected a factor in (0, 1], found {self.lr_decay}")
        if not self.lr_object_poses > 0.0:
            raise ValueError(
                f"lr_object_poses: expected a positive learning rate, found {self.lr_object_poses}"
            )


@dataclass
class TrainConfig:
    stage1_steps: int = 30000
    """Optimisation steps of stage 1 (pretraining on the initial poses)."""
    stage3_steps: int = 60000
    """Steps of stage 3 (retraining on the refined poses; HOLD: twice stage 1)."""
    stage3_init: Literal["scratch", "stage1"] = "scratch"
    """How stage 3 starts: ``scratch`` re-initialises the networks and codes (HOLD); ``stage1`` starts
    them from stage 1's (ours; the per-frame poses are stage 2's either way), so an object whose
    refined scale or poses moved far from stage 1's keeps a surface to correct instead of growing one
    from the initial sphere. Measured on the suite's quick subset it is worse: it keeps a surface on
    the knife and marker clips but a wrong one (CD 3.1 and 2.8 cm² against 0.8 and 0.1 cm² with
    ``scratch``, whose export falls back to stage 1 there; bench/results/suite_quick_stage3init_stage1.md)."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (a killed run resumes from the last one)."""
    image_every: int = 2000
    """Steps between image panels (GT | render | normals | instance map | node masks); 0 disables."""
    image_stride: int = 2
    """Pixel stride of the panels (rendering every pixel of a frame is slow on a CPU)."""
    render_chunk: int = 1024
    """Rays rendered at once when rendering whole frames."""
    mesh_every: int = 1000
    """Steps between object-mesh extractions, used by the object sparsity term (HOLD's released code:
    1200, every 3 of its epochs; ours 1000)."""
    mesh_resolution: int = 64
    """Marching-cubes grid resolution of those extractions (HOLD's released code: 128; ours 64 for CPU
    time: the mesh only marks which rays are far from the object)."""
    final_mesh_resolution: int = 128
    """Marching-cubes resolution of the object mesh saved at the end of a stage."""
    surface_check_step: int = 40
    """Step of stage 1 at which the object and hand SDFs must have a surface (marching cubes at
    ``mesh_resolution``); without one the stage stops with the likely cause (empty masks, poses far from
    the masks, the object outside its bounding sphere). A run resumed past this step checks at its first
    step. 0 disables the check; a step beyond stage 1's steps never comes. Stage 3 is not checked: its
    object can lose its surface early and find it again (suite v1, marker clip)."""
    loss_explosion_factor: float = 100.0
    """Stages 1 and 3 stop when the total loss exceeds this factor times its lowest value so far in
    the stage (in this process: a resumed run starts a new reference; healthy suite runs stay within
    5×); non-finite losses always stop them. 0 disables."""

    def __post_init__(self) -> None:
        at_least(self, 1, "stage1_steps", "stage3_steps", "checkpoint_every", "image_stride", "render_chunk")
        at_least(self, 0, "image_every", "mesh_every", "surface_check_step")
        at_least(self, 8, "mesh_resolution", "final_mesh_resolution")
        zero_or_above(self, 1.0, "loss_explosion_factor")
