"""Configuration of the hand model layer: model choice, skinning, contact regions, joint limits, fitting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hold.utils.checks import at_least, fraction, positive

Range6 = tuple[float, float, float, float, float, float]


@dataclass
class JointLimitsConfig:
    """Per joint type, ``(x_lo, x_hi, y_lo, y_hi, z_lo, z_hi)`` in radians.

    The bounds apply to the axis-angle of each articulated joint expressed in its anatomical frame:
    x is the flexion axis (a positive angle bends the finger towards the palm), y runs along the bone
    (twist) and z points out of the palm side (spread; for a right hand a positive angle moves the
    finger away from the thumb). Left hands use the mirror image: the y and z bounds are negated and
    swapped. Angles are relative to the model's zero pose (Anny: its reference pose, slightly curled;
    MANO: its mean pose unless ``mano_flat_hand_mean``).
    """

    wrist: Range6 = (-0.5, 0.5, -0.5, 0.5, -0.5, 0.5)
    """Anny's wrist bone relative to its root (largely redundant with ``global_orient``)."""
    metacarpal: Range6 = (-0.1, 0.25, -0.1, 0.1, -0.1, 0.1)
    """Anny's metacarpal bones (index to little); they barely move in a real hand."""
    thumb_cmc: Range6 = (-0.6, 1.0, -0.6, 0.6, -0.7, 0.7)
    """Thumb carpometacarpal joint (the thumb's first articulated bone)."""
    thumb_mcp: Range6 = (-0.3, 1.0, -0.2, 0.2, -0.3, 0.3)
    """Thumb metacarpophalangeal joint."""
    thumb_ip: Range6 = (-0.4, 1.4, -0.05, 0.05, -0.05, 0.05)
    """Thumb interphalangeal joint."""
    mcp: Range6 = (-0.4, 1.6, -0.1, 0.1, -0.4, 0.4)
    """Finger metacarpophalangeal joints (knuckles): flexion and spread."""
    pip: Range6 = (-0.1, 1.9, -0.05, 0.05, -0.05, 0.05)
    """Finger proximal interphalangeal joints: hinge."""
    dip: Range6 = (-0.2, 1.4, -0.05, 0.05, -0.05, 0.05)
    """Finger distal interphalangeal joints: hinge."""


@dataclass
class HandFitConfig:
    """Keypoint fitting (preprocessing): weights, schedules and robust-loss scales.

    Every term is a mean over frames (and keypoints), so the weights do not depend on the sequence
    length. 2D residuals are in pixels, 3D residuals in metres, angles in radians.
    """

    chunk_size: int = 128
    """Frames optimised jointly in one batch. Each chunk is warm-started from the last frame of the
    previous one; the hand shape is estimated on the first chunk and then kept fixed."""
    num_orientation_hypotheses: int = 32
    """Random global orientations tried per frame in the rigid initialisation (2D-only frames)."""
    rigid_iterations: int = 60
    """Adam steps of the rigid initialisation (global orientation and translation, fixed pose)."""
    rigid_lr: float = 0.05
    """Learning rate of the rigid initialisation (radians and metres)."""
    num_fit_hypotheses: int = 4
    """Best distinct rigid solutions per frame that are each fitted in full (with every pose start)
    before one candidate per frame is chosen: a nearly planar palm seen in 2D has a mirror solution."""
    hypothesis_min_angle: float = 0.5
    """Radians between two rigid solutions for them to count as distinct hypotheses."""
    init_flexions: tuple[float, ...] = (0.0, 0.6)
    """Start poses of the hypothesis fit: every finger joint flexed by each of these angles (radians).
    A flexed start keeps the optimiser on the palm side of the 2D flexion ambiguity."""
    hypothesis_iterations: int = 60
    """Adam steps of the per-hypothesis full fit (frames independent, shape fixed)."""
    shape_init_iterations: int = 100
    """Adam steps fitting the betas to the median 3D bone lengths before anything else (needs 3D
    keypoints; 0 disables). Starts the pose search at the right hand size, hence the right depth."""
    propagation_rounds: int = 1
    """Rounds that offer each frame its neighbours' solutions as new starts (refit, the best kept,
    smoothed fit again): frames stuck in a wrong local minimum follow their neighbours."""
    iterations: int = 200
    """Adam steps of the full fit (orientation, pose, shape, translation)."""
    lr_orient: float = 0.02
    """Learning rate of ``global_orient`` (radians)."""
    lr_pose: float = 0.03
    """Learning rate of ``pose`` (radians)."""
    lr_betas: float = 0.02
    """Learning rate of ``betas``."""
    lr_transl: float = 0.005
    """Learning rate of ``transl`` (metres)."""
    lr_final_factor: float = 0.02
    """The learning rates decay (cosine) to this fraction of their start value by the last step."""
    fit_betas: bool = True
    """Estimate the hand shape; ``False`` keeps the given (or zero) betas."""
    robust_loss: Literal["gmof", "cauchy", "l2"] = "cauchy"
    """Robust penalty of the keypoint residuals: Geman-McClure, Cauchy (log) or plain squares."""
    robust_scale_px: float = 10.0
    """Scale of the robust 2D penalty in pixels: residuals much larger count less than quadratically."""
    robust_scale_3d: float = 0.02
    """Scale of the robust 3D penalty in metres."""
    min_confidence: float = 0.05
    """2D keypoints with a lower confidence are ignored."""
    weight_2d: float = 1.0
    """Weight of the 2D reprojection term."""
    weight_3d: float = 1.0
    """Weight of the 3D keypoint term (when 3D keypoints are given). The root-relative input and the
    model are compared about their centroids, which averages out the noise of the input's root."""
    weight_pose_prior: float = 0.01
    """Weight of the squared pose angles (pulls towards the natural zero pose)."""
    pose_prior_axes: tuple[float, float, float] = (1.0, 100.0, 10.0)
    """Relative prior weights of flexion, twist and spread (anatomical x, y, z): 2D keypoints barely
    observe twist, so a stronger pull keeps it near zero."""
    weight_wrist_prior: float = 1.0
    """Extra weight of the squared wrist-bone angles (Anny; the wrist duplicates ``global_orient``)."""
    weight_shape_prior: float = 0.1
    """Weight of the squared betas (pulls towards the average hand)."""
    weight_joint_limits: float = 100.0
    """Weight of the squared excess of each joint angle beyond ``hand.joint_limits``."""
    weight_smooth: float = 0.1
    """Weight of the temporal smoothness: the acceleration of the camera-frame keypoints."""
    smooth_scale: float = 0.005
    """Keypoint acceleration (metres per frame², i.e. the change of the per-frame displacement) at
    which the smoothness term reaches 1."""
    default_depth: float = 0.5
    """Initial wrist depth (metres) of frames with too few confident palm keypoints to measure it."""
    min_palm_keypoints: int = 3
    """Confident palm keypoints (wrist, thumb base, knuckles) needed to estimate the initial depth."""
    seed: int = 0
    """Seed of the random orientation hypotheses."""

    def __post_init__(self) -> None:
        at_least(self, 1, "chunk_size", "num_orientation_hypotheses", "num_fit_hypotheses")
        at_least(
            self,
            0,
            "rigid_iterations",
            "hypothesis_iterations",
            "shape_init_iterations",
            "propagation_rounds",
            "iterations",
            "hypothesis_min_angle",
            "min_palm_keypoints",
        )
        at_least(
            self,
            0,
            "weight_2d",
            "weight_3d",
            "weight_pose_prior",
            "weight_wrist_prior",
            "weight_shape_prior",
            "weight_joint_limits",
            "weight_smooth",
        )
        positive(
            self,
            "rigid_lr",
            "lr_orient",
            "lr_pose",
            "lr_betas",
            "lr_transl",
            "robust_scale_px",
            "robust_scale_3d",
            "smooth_scale",
            "default_depth",
        )
        fraction(self, "lr_final_factor", "min_confidence")


@dataclass
class HandConfig:
    """The hand model (``hand.*``): which model, inverse-LBS and contact settings, limits, fitting."""

    model: Literal["anny", "mano"] = "anny"
    """Hand model: the open Anny hand (default, ships with `pip install anny`) or MANO (user files)."""
    mano_dir: str = ""
    """Folder holding MANO_RIGHT.pkl / MANO_LEFT.pkl (or converted .npz); needed only for model=mano."""
    mano_flat_hand_mean: bool = False
    """MANO: ``False`` makes the zero pose MANO's mean (relaxed) pose, ``True`` the flat hand."""
    skinning_k: int = 6
    """Inverse LBS: number of nearest posed hand vertices whose skinning weights are blended."""
    skinning_sigma: float = 0.005
    """Inverse LBS: Gaussian kernel width (metres) on the distances to those vertices."""
    skinning_max_dist: float = 0.05
    """Inverse LBS: points farther than this (metres) from every hand vertex are flagged invalid."""
    skinning_chunk: int = 65536
    """Inverse LBS: points per nearest-neighbour chunk (bounds the memory of the distance matrix)."""
    contact_tip_radius: float = 0.008
    """Contact regions: fingertip vertices lie within this distance (metres) of the tip keypoint."""
    contact_normal_cos: float = 0.5
    """Contact regions: pad and palm vertices have a normal within acos(this) of the palm side."""
    contact_palm_start: float = 0.3
    """Contact regions: palm vertices start this fraction of the way from the wrist to the knuckles
    (excludes the wrist crease)."""
    joint_limits: JointLimitsConfig = field(default_factory=JointLimitsConfig)
    """Anatomical joint limits, used by the fitting and the pose refinement."""
    fit: HandFitConfig = field(default_factory=HandFitConfig)
    """Keypoint fitting (preprocessing)."""

    def __post_init__(self) -> None:
        at_least(self, 1, "skinning_k", "skinning_chunk")
        positive(self, "skinning_sigma", "skinning_max_dist", "contact_tip_radius")
        fraction(self, "contact_palm_start")
