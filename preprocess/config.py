"""Typed configuration of preprocessing: one dataclass per step, loaded strictly (``hold.config``).

Defaults live here; ``hold-preprocess … key=value`` and ``--config FILE.yaml`` override them with the
same strict rules as training configs (an unknown key or a wrong type is a ``ConfigError``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hold.config import ConfigError, apply_overrides, from_dict, read_yaml_mapping
from hold.config.hand import HandConfig
from hold.utils.checks import at_least, fraction, positive


@dataclass
class CameraConfig:
    """Intrinsics used when RAW/camera.json is absent."""

    default_fov_deg: float = 50.0
    """Horizontal field of view assumed before SfM estimates the focal length (hand fitting, SfM prior)."""

    def __post_init__(self) -> None:
        if not 0 < self.default_fov_deg < 180:
            raise ValueError(f"default_fov_deg must lie in (0, 180), found {self.default_fov_deg}")


@dataclass
class FramesConfig:
    """Step ``frames``: a video or an image folder → numbered PNGs."""

    stride: int = 1
    """Keep every n-th input frame. Masks, hand estimates and gt are subsampled the same way."""
    max_frames: int = 0
    """Keep at most this many frames (after the stride); 0 keeps all."""
    max_size: int = 0
    """Downscale so that the longer image side is at most this many pixels; 0 keeps the input size.
    Imported masks, 2D keypoints and camera.json are rescaled to match."""

    def __post_init__(self) -> None:
        at_least(self, 1, "stride")
        at_least(self, 0, "max_frames", "max_size")


@dataclass
class SamConfig:
    """Segment-anything backend of step ``masks`` (optional extra ``sam``)."""

    checkpoint: str = ""
    """Path of a segment-anything checkpoint (e.g. sam_vit_h_4b8939.pth); nothing is downloaded."""
    model_type: Literal["auto", "vit_h", "vit_l", "vit_b"] = "auto"
    """Backbone of the checkpoint; ``auto`` reads it from the file name (vit_h / vit_l / vit_b)."""
    prompts: str = ""
    """JSON file of first-frame prompts (see ``preprocess.sam``); empty: RAW/prompts.json."""
    device: str = "auto"
    """Torch device of the SAM model; ``auto``: CUDA when available, else CPU."""
    box_margin: float = 0.1
    """Propagation: the previous mask's box is enlarged by this fraction of its size on each side."""
    num_points: int = 1
    """Propagation: positive points placed at the interior maxima of the previous mask."""
    use_mask_input: bool = True
    """Propagation: also feed the previous frame's low-resolution mask logits to SAM."""
    lost_area_ratio: float = 0.25
    """A propagated mask whose area changes by more than this factor (or its inverse) from the previous
    frame is recomputed from the box alone; if that fails too, the previous mask is kept."""

    def __post_init__(self) -> None:
        at_least(self, 0, "box_margin")
        at_least(self, 1, "num_points")
        positive(self, "lost_area_ratio")


@dataclass
class Sam2Config:
    """SAM 2 backend of step ``masks``: the video predictor, prompted from the hand and a prompt file."""

    checkpoint: str = ""
    """Path of a SAM 2 / 2.1 checkpoint (e.g. sam2.1_hiera_tiny.pt); nothing is downloaded."""
    model_cfg: str = "auto"
    """SAM 2 model config (e.g. configs/sam2.1/sam2.1_hiera_t.yaml); ``auto`` reads it from the
    checkpoint's name (sam2 or sam2.1; tiny, small, base_plus or large)."""
    prompts: str = ""
    """Prompt file (docs/formats.md); empty: RAW/prompts.json when it exists. Without an object prompt
    the object is prompted next to the fingertips (see ``auto_object``)."""
    device: str = "auto"
    """Torch device of the model; ``auto``: CUDA when available, else CPU."""
    image_size: int = 0
    """Input resolution of the model; 0 keeps the checkpoint's (1024). Smaller runs faster and worse."""
    hand_min_confidence: float = 0.5
    """Keypoints with at least this confidence (step ``hands``) prompt the hand."""
    hand_prompt_every: int = 8
    """The hand is prompted on its first well-fitted frame and then every this many frames (0: once)."""
    box_margin: float = 0.15
    """The hand's prompt box is its keypoints' box enlarged by this fraction of its size on each side."""
    auto_object: bool = True
    """Without an object prompt, place positive points where the fingertips hold something that is not
    hand (on the frame where the hand is fitted best); off: an object prompt is required."""

    def __post_init__(self) -> None:
        fraction(self, "hand_min_confidence")
        at_least(self, 0, "image_size", "hand_prompt_every", "box_margin")


@dataclass
class StaticMasksConfig:
    """Backend ``static`` of step ``masks``: background subtraction for a fixed camera, the hand from the
    fitted hand model refined by colour, the object as the rest of the foreground near the hand."""

    background: str = ""
    """Clean plate: an image of the scene without hand or object. Empty: RAW/background.png when it
    exists, else the clip itself (per pixel, the colour that recurs most out of the hand's reach)."""
    iterations: int = 2
    """Rounds of background, lighting gains and foreground, each excluding the previous foreground."""
    mode_tolerance: float = 0.06
    """Background without a clean plate: per pixel, the colour that recurs (within this RGB distance) in
    the most frames; the fitted hand and, from the second round, the foreground do not vote."""
    mode_min_frames: float = 0.15
    """A pixel whose commonest colour out of the hand's reach (``object_reach``) recurs in fewer than
    this fraction of the frames has no known background: each frame's colours decide it (GrabCut)."""
    threshold: float = 0.1
    """Least RGB distance (0..1 per channel) from the background that makes a pixel foreground; the
    clip's noise can raise it (``noise_factor``)."""
    noise_factor: float = 4.0
    """The threshold is at least this many standard deviations of the clip's background noise."""
    shadow_min_ratio: float = 0.3
    """A pixel darker than the background by a brightness ratio in [this, ``shadow_max_ratio``], with
    its chromaticity and texture, is shadow (background)."""
    shadow_max_ratio: float = 0.97
    """See ``shadow_min_ratio``."""
    shadow_chroma: float = 0.05
    """Largest chromaticity difference (mean absolute, of rgb / brightness) of a shadow."""
    shadow_texture_ncc: float = 0.5
    """Least local normalised cross-correlation with the background's texture of a shadow pixel. The
    window straddling a hard shadow edge (a point light) fails it, leaving a band about half a window
    wide as foreground; soft shadows (penumbrae of a few pixels) pass."""
    texture_window: int = 7
    """Side (pixels) of the window of that correlation."""
    shadow_noise_sigmas: float = 2.5
    """Sensor noise moves a dark pixel's chromaticity by about noise / brightness: the shadow's chromaticity
    tolerance grows by this × that (≈ 3σ of its mean absolute difference)."""
    texture_noise_sigmas: float = 2.0
    """Background whose local brightness varies by less than this × the clip's brightness noise has no
    texture to compare (a noisy clean plate of a plain wall)."""
    texture_min_std: float = 0.03
    """Background whose local brightness varies less than this (relative) is flat: no texture test."""
    min_region_fraction: float = 0.0005
    """Foreground regions smaller than this fraction of the image are noise."""
    hand_core: float = 0.08
    """GrabCut seeds: the silhouette eroded by this × the hand's size (keypoint-box diagonal) is hand.
    A larger core (a smaller value) lands on the object wherever the fitted fingers are off: at 0.04 the
    object's edge lay 0.6 px inside the true one against the hand, at 0.08 0.2 px (static suite)."""
    hand_band: float = 0.15
    """GrabCut seeds: foreground farther than this × the hand's size from the silhouette is not hand."""
    grabcut_iterations: int = 3
    """GrabCut iterations per frame; 0 takes the projected silhouette as it is."""
    object_reach: float = 0.5
    """Foreground farther than this × the hand's size from the hand is not the held object (unknown)."""
    border_px: int = 1
    """Pixels on each side of every label boundary that are marked unknown (255)."""
    unseen_margin_px: int = 3
    """Where the background was never seen (``mode_min_frames``), the pixels GrabCut calls background
    within this many pixels of the object are left unknown: a guess from colours alone, and it tends
    to take the object's edge for background."""
    warn_unseen_fraction: float = 0.05
    """Warn when the background behind more than this fraction of the image was never seen, or when
    more than this fraction of a frame's foreground is left unknown."""

    def __post_init__(self) -> None:
        at_least(self, 1, "iterations", "texture_window")
        at_least(
            self, 0, "grabcut_iterations", "border_px", "unseen_margin_px", "hand_core", "hand_band",
            "noise_factor", "shadow_noise_sigmas", "texture_noise_sigmas",
        )  # fmt: skip
        positive(self, "threshold", "object_reach", "mode_tolerance")
        fraction(
            self,
            "shadow_chroma",
            "texture_min_std",
            "min_region_fraction",
            "mode_min_frames",
            "warn_unseen_fraction",
        )
        if not 0 < self.shadow_min_ratio < self.shadow_max_ratio <= 1:
            raise ValueError(
                "need 0 < shadow_min_ratio < shadow_max_ratio <= 1, found "
                f"{self.shadow_min_ratio} and {self.shadow_max_ratio}"
            )
        if not -1 <= self.shadow_texture_ncc <= 1:
            raise ValueError(f"shadow_texture_ncc must lie in [-1, 1], found {self.shadow_texture_ncc}")


@dataclass
class MasksConfig:
    """Step ``masks``: per-frame label maps (0 bg, 1 object, 2 right, 3 left, 255 unknown)."""

    backend: Literal["import", "sam", "sam2", "static"] = "import"
    """``import``: RAW/masks/NNNNN.png from an external segmenter; ``sam``: segment-anything (v1),
    first-frame prompts; ``sam2``: SAM 2's video predictor, prompted from the hand keypoints and
    RAW/prompts.json; ``static``: background subtraction for a fixed camera, no weights. ``sam2`` and
    ``static`` use the ``hands`` step's output."""
    cleanup: bool = True
    """Remove small components and fill small holes of each foreground label."""
    min_component_fraction: float = 0.1
    """Clean-up: components smaller than this fraction of their label's largest component become
    unknown (255), so spurious blobs neither teach nor mislead."""
    max_hole_fraction: float = 0.05
    """Clean-up: holes of a label smaller than this fraction of its area are filled with the label."""
    min_object_fraction: float = 0.0005
    """A frame has the object when at least this fraction of its pixels is labelled object."""
    min_frames_with_object: float = 0.5
    """Fail when fewer than this fraction of the frames show the object (a wrong or empty mask set)."""
    sam: SamConfig = field(default_factory=SamConfig)
    """Segment-anything settings (backend ``sam``)."""
    sam2: Sam2Config = field(default_factory=Sam2Config)
    """SAM 2 settings (backend ``sam2``)."""
    static: StaticMasksConfig = field(default_factory=StaticMasksConfig)
    """Background-subtraction settings (backend ``static``)."""

    def __post_init__(self) -> None:
        fraction(
            self,
            "min_component_fraction",
            "max_hole_fraction",
            "min_object_fraction",
            "min_frames_with_object",
        )


@dataclass
class MediapipeConfig:
    """Backend ``mediapipe`` of step ``hands``: mediapipe 0.10.21's bundled hand tracker, run in its own
    environment (``make mediapipe-env``) by a worker process (``preprocess/mediapipe/``)."""

    python: str = ""
    """Python of the mediapipe environment. Empty: $HOLD_MEDIAPIPE_PYTHON, else the repository's
    .venv-mediapipe/bin/python (made by ``make mediapipe-env``)."""
    running_mode: Literal["video", "image"] = "video"
    """``video``: frames in order, each hand tracked from the previous frame's landmarks (palm detection
    only when the track is lost); ``image``: every frame detected on its own."""
    detection_fallback: bool = True
    """Video mode: a frame where tracking finds no hand is detected again as a still image."""
    max_num_hands: int = 2
    """Hands mediapipe looks for per frame (candidates for the right/left assignment)."""
    model_complexity: Literal[0, 1] = 1
    """Landmark model: 1 hand_landmark_full.tflite, 0 hand_landmark_lite.tflite."""
    min_detection_confidence: float = 0.5
    """Palm-detection score needed to start a hand."""
    min_tracking_confidence: float = 0.5
    """Hand-presence score needed to keep tracking a hand (video mode); below it, palm detection runs."""
    fallback_min_detection_confidence: float = 0.1
    """Palm-detection score needed by the detection fallback (a frame the tracker found empty). Low: the
    size test (``min_relative_size``), the side assignment and the fit's residual test reject what is
    not the hand (on the demo, 0.1 finds the first two frames with a 6 px median error, 0.5 neither)."""
    upscale_to: int = 0
    """Frames are enlarged (bicubic) so that their longer side is at least this many pixels; 0 keeps
    them. The keypoints are returned in frame pixels either way."""
    pad_fraction: float = 0.0
    """A black border of this fraction of the longer side is added around each frame (helps the palm
    detector with hands cut by the image edge)."""
    mirrored: bool = False
    """The video is mirrored (a selfie camera). mediapipe's handedness labels assume a mirrored image, so
    for an ordinary camera (False) its "Left" is the right hand."""
    sides: Literal["auto", "right", "left", "both"] = "auto"
    """Hands to output. ``auto``: each side that is assigned in at least ``min_side_fraction`` of the
    frames."""
    min_side_fraction: float = 0.2
    """``sides=auto``: a side is kept when it is assigned in at least this fraction of the frames."""
    min_handedness: float = 0.5
    """A detection is assigned to a side, all else equal, when mediapipe's probability of that side
    exceeds this (the cost of leaving a side empty is −log of it)."""
    weight_motion: float = 1.0
    """Side assignment: weight of the keypoint motion between consecutive frames of one side."""
    motion_scale: float = 0.5
    """Side assignment: mean keypoint motion, in hand sizes (2D box diagonals), that costs
    ``weight_motion``."""
    track_change_cost: float = 2.0
    """Side assignment: cost of letting go of a side's hand that goes on in the next frame (moves by less
    than ``motion_scale`` hand sizes); makes a side follow its hand through frames whose handedness
    label flips, as long as the probability of its side stays above min_handedness · exp(−this)
    (7 % with the defaults)."""
    duplicate_iou: float = 0.5
    """Two detections in one frame whose keypoint boxes overlap by more than this IoU are one hand
    (the lower-scored one is dropped)."""
    min_relative_size: float = 0.5
    """Detections whose 2D keypoint box (diagonal) is smaller than this fraction of the clip's median
    are dropped: the detection fallback's false positives on texture are small."""
    use_world_landmarks: bool = False
    """Fit to mediapipe's metric 3D landmarks (root-relative) as well as to the 2D keypoints. They are
    written to hands.npz either way; off by default because on the demo they are 37 mm from gt (the
    2D keypoints 6 px) and fitting to them raised the MPJPE from 26 to 34 mm."""
    timeout_s: float = 0.0
    """Give up on the worker after this many seconds; 0 waits as long as it takes."""

    def __post_init__(self) -> None:
        if self.max_num_hands < 1:
            raise ValueError(f"max_num_hands must be ≥ 1, found {self.max_num_hands}")
        if not 0.0 < self.min_handedness < 1.0:
            raise ValueError(f"min_handedness must lie in (0, 1), found {self.min_handedness}")
        if self.motion_scale <= 0.0:
            raise ValueError(f"motion_scale must be > 0, found {self.motion_scale}")


@dataclass
class HandsConfig:
    """Step ``hands``: hand-model parameters fitted to 2D/3D keypoint estimates."""

    backend: Literal["import", "mediapipe"] = "import"
    """``import``: RAW/hands.npz (2D keypoints with confidence, optional root-relative 3D keypoints) from
    an external estimator; ``mediapipe``: estimated here by mediapipe's hand tracker in its own
    environment (``make mediapipe-env``), written in the same layout to work/hands/mediapipe/hands.npz."""
    max_residual_px: float = 12.0
    """Frames whose mean 2D keypoint residual after fitting exceeds this (pixels) are marked invalid."""
    min_keypoints: int = 6
    """Frames with fewer keypoints above ``hand.fit.min_confidence`` are not fitted (invalid)."""
    end_window: int = 4
    """Invalid frames at a clip's ends continue the fitted motion at constant velocity, estimated over
    the valid frames within this many frames of the end (a few: they average the fits' jitter); 0 holds
    the last pose."""
    end_horizon: int = 8
    """... for at most this many frames beyond the end (twice the evidence), then the pose is held."""
    mediapipe: MediapipeConfig = field(default_factory=MediapipeConfig)
    """Settings of the ``mediapipe`` backend."""

    def __post_init__(self) -> None:
        positive(self, "max_residual_px")
        at_least(self, 0, "min_keypoints", "end_window", "end_horizon")


@dataclass
class SfmConfig:
    """Step ``sfm``: object poses and point cloud from object-only images."""

    backend: Literal["auto", "pycolmap", "hloc"] = "auto"
    """``pycolmap`` SIFT; ``hloc`` (SuperPoint + LightGlue) when installed; ``auto`` prefers hloc."""
    background_value: int = 0
    """Grey level painted over every non-object pixel of the SfM images."""
    upscale_to: int = 640
    """SfM images are enlarged (bicubic) so that their longer side has at least this many pixels: SIFT
    finds several times more features on a small object that way. 0 keeps the frame size."""
    crop: Literal["auto", "on", "off"] = "auto"
    """Crop each SfM image to the object-mask box (plus ``crop_margin``) before enlarging it, each crop
    with its own camera. Needs known intrinsics (RAW/camera.json), which are then held fixed; ``auto``:
    on when they are known (and with pycolmap), else the whole frame is enlarged."""
    crop_margin: float = 0.15
    """Margin added on each side of the object-mask box, as a fraction of its longer side."""
    crop_min_part: float = 0.25
    """The crop box holds the object mask's largest component and every component at least this fraction
    of its size: a held object that the fingers cut in two keeps both parts (with the largest alone, the
    crop jumped between them from frame to frame and SfM split the clip into two models). 1: the largest
    component only."""
    feature_mask_erode: float = 0.005
    """Features are extracted only inside the object mask eroded by this fraction of the longer image
    side (2 px at 320 px): few features on the painted silhouette or on a segmenter's ragged boundary,
    whose descriptors change from frame to frame. Small, so that thin parts (a blade) keep theirs."""
    max_num_features: int = 4096
    """SIFT features per image."""
    peak_threshold: float = 0.003
    """SIFT detection threshold (COLMAP's default 0.0067); lower finds more, weaker features (low-contrast
    textures give few above the default)."""
    domain_size_pooling: bool = True
    """DSP-SIFT descriptors (pooled over scales): more robust matching of few features, slower."""
    estimate_affine_shape: bool = True
    """Affine-covariant SIFT features: better under the foreshortening of a turning object, slower."""
    guided_matching: bool = True
    """Guided matching: after geometric verification, match again along the estimated geometry (more
    matches on objects with few, repetitive features)."""
    sequential_overlap: int = 10
    """Sequential matching: each frame is matched with this many following frames."""
    exhaustive_max_frames: int = 120
    """Up to this many frames, every pair is matched too; longer clips use retrieval instead."""
    vocab_tree: str = ""
    """Retrieval for long clips: a COLMAP vocabulary-tree file. Empty: all pairs among keyframes."""
    keyframe_stride: int = 5
    """Retrieval without a vocabulary tree: every n-th frame is a keyframe, keyframes are matched
    exhaustively."""
    hloc_features: str = "superpoint_aachen"
    """hloc backend: feature configuration name."""
    hloc_matcher: str = "superpoint+lightglue"
    """hloc backend: matcher configuration name."""
    camera_model: Literal["SIMPLE_PINHOLE", "PINHOLE"] = "SIMPLE_PINHOLE"
    """Camera model when the focal length is estimated (pinhole, like SEQUENCE's K)."""
    min_num_matches: int = 15
    """Two frames count as overlapping with at least this many verified matches."""
    init_min_num_inliers: int = 50
    """Mapper: verified matches needed by the initial image pair (COLMAP's default, 100, suits large
    images; object crops of a few hundred pixels have fewer features)."""
    abs_pose_min_num_inliers: int = 20
    """Mapper: 2D-3D inliers needed to register a further image."""
    relaxed_attempt: bool = True
    """When the first mapping leaves frames unregistered, map the same matches again with the relaxed
    thresholds below and keep whichever registered more (every attempt is logged in sfm.json)."""
    relaxed_init_min_num_inliers: int = 15
    """Relaxed attempt: verified matches needed by the initial pair."""
    relaxed_abs_pose_min_num_inliers: int = 10
    """Relaxed attempt: 2D-3D inliers needed to register a further image."""
    relaxed_abs_pose_min_inlier_ratio: float = 0.15
    """Relaxed attempt: inlier ratio needed to register a further image (COLMAP: 0.25)."""
    relaxed_init_min_tri_angle: float = 8.0
    """Relaxed attempt: triangulation angle (degrees) of the initial pair (COLMAP: 16; a slowly turning
    object offers few wide pairs)."""
    fallback: Literal["hand", "none"] = "hand"
    """Frames without a reliable SfM pose: ``hand`` anchors them to the hand (the held object moves
    rigidly with it: the hand-to-object transform of the nearest registered frames), and when SfM
    registers fewer than ``min_registered_fraction`` of the frames the whole trajectory comes from the
    hand and the object's initial shape from its mask hull; ``none`` interpolates between registered
    frames and fails below ``min_registered_fraction``."""
    hand_consistency_deg: float = 15.0
    """A registered frame whose object rotation relative to the hand differs by more than this from the
    model's robust mean is treated as unregistered (a wrong PnP pose, a flipped frame); 0 disables the
    test. On the suite, frames of good models stay within 8° with realistic hand noise (3° mild)."""
    hand_robust_scale_deg: float = 10.0
    """Geman-McClure scale (degrees) of the robust mean of the object's rotations in the hand (the
    consistency tests above and the merging of smaller models): rotations farther off weigh little."""
    mask_reach_percentile: float = 90.0
    """Hand-only poses: the object's bound is how far its mask reaches from the anchored centre, this
    percentile over the frames (the highest would follow the frame whose pose is worst)."""
    model_consistency_deg: float = 8.0
    """When the median of those differences exceeds this, the SfM model as a whole is not used and the
    trajectory comes from the hand (a model that drifts, e.g. on a flat card: 13° on the suite, against
    2-4° for good models); 0 disables the test."""
    extrapolation_velocity_frames: int = 3
    """Unregistered frames at the start or end of the clip continue the object's motion at constant
    velocity (estimated over this many registered frames) instead of copying the nearest pose."""
    pose_outlier_deg: float = 5.0
    """A registered frame whose rotation differs by more than this from what its neighbours predict
    (their SLERP midpoint; constant velocity at the ends), and by more than ``pose_outlier_factor`` ×
    the median such difference, is treated as unregistered (few or badly spread features give a
    wrong PnP pose). 0 disables the test."""
    pose_outlier_factor: float = 3.0
    """See ``pose_outlier_deg``."""
    min_registered_fraction: float = 0.3
    """Below this fraction of the frames registered reliably, SfM's model is not used: the trajectory
    comes from the hand (``fallback=hand``) or the step fails (``fallback=none``)."""
    warn_filled_fraction: float = 0.1
    """Warn (log and sfm.json) when more than this fraction of the frames' poses did not come from SfM."""
    max_reprojection_px: float = 2.0
    """Point trimming: drop 3D points with a larger mean reprojection error."""
    min_track_length: int = 3
    """Point trimming: drop 3D points seen in fewer frames."""
    outlier_std: float = 2.5
    """Point trimming: drop points farther from the median than this many robust standard deviations."""
    sphere_fill: float = 0.9
    """The object's extent (trimmed cloud and mask hull) is scaled so that its farthest point lies at
    this radius (unit sphere)."""
    hull_resolution: int = 48
    """Voxels per side of the grid carved with the object masks to bound the object (0: bound it by the
    SfM points alone, as HOLD does)."""
    hull_extent: float = 3.0
    """Half-size of that grid, in radii of the trimmed cloud around its centre."""
    hull_min_frames: int = 8
    """The hull is carved with the reliably registered frames when there are at least this many, else
    with every frame's pose (hand-anchored ones included)."""
    hull_carve_tolerance: float = 0.1
    """A voxel stays in the hull when it projects onto background in at most this fraction of the frames
    that see it (mask errors)."""
    hull_min_object_fraction: float = 0.1
    """... and onto the object in at least this fraction of them (removes the hand and arm, which never
    carve because they hide the background)."""
    num_threads: int = -1
    """Threads of feature extraction, matching and mapping; -1: all cores. With more than one thread
    COLMAP's result varies from run to run (two runs of the demo clip: 2810 vs 2808 points, other
    poses); 1 makes it reproducible (the demo's SfM step took ~10 % longer on a busy 2-core machine)."""
    seed: int = 0
    """Random seed of COLMAP's RANSAC and mapper."""

    def __post_init__(self) -> None:
        if self.hull_resolution < 0 or 0 < self.hull_resolution < 8:
            raise ValueError(f"hull_resolution must be 0 (off) or ≥ 8, found {self.hull_resolution}")
        if self.hull_extent <= 1.0:
            raise ValueError(f"hull_extent must be > 1 (SfM-cloud radii), found {self.hull_extent}")
        if self.crop_margin < 0:
            raise ValueError(f"crop_margin must be ≥ 0, found {self.crop_margin}")
        if not 0 < self.crop_min_part <= 1:
            raise ValueError(f"crop_min_part must lie in (0, 1], found {self.crop_min_part}")
        if self.hull_min_frames < 1:
            raise ValueError(f"hull_min_frames must be ≥ 1, found {self.hull_min_frames}")
        if not self.hand_robust_scale_deg > 0 or not 0 < self.mask_reach_percentile <= 100:
            raise ValueError(
                "hand_robust_scale_deg must be > 0 and mask_reach_percentile in (0, 100], found "
                f"{self.hand_robust_scale_deg} and {self.mask_reach_percentile}"
            )
        for name in ("hand_consistency_deg", "model_consistency_deg"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0 (0 disables the test), found {getattr(self, name)}")
        for name in (
            "hull_carve_tolerance",
            "hull_min_object_fraction",
            "min_registered_fraction",
            "warn_filled_fraction",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], found {getattr(self, name)}")


@dataclass
class AlignConfig:
    """Step ``align``: HOLD's h, o, ho phases (hand translations; object scale and translations)."""

    phases: tuple[str, ...] = ("h", "o", "ho")
    """Phases run in order: ``h`` hand translations to 2D keypoints; ``o`` object scale and translations
    (centroid contact, reprojection of the SfM points); ``ho`` both jointly with fingertip contact and
    smoothness."""
    iterations: int = 300
    """Adam steps per phase."""
    lr: float = 0.01
    """Adam learning rate (metres, and log-scale for the object scale)."""
    lr_final_factor: float = 0.05
    """The learning rate decays (cosine) to this fraction of ``lr`` within each phase."""
    kp2d_sigma_px: float = 10.0
    """Geman-McClure scale of the hand 2D keypoint residuals (pixels)."""
    obj2d_sigma_px: float = 5.0
    """Geman-McClure scale of the object point reprojection residuals (pixels)."""
    weight_kp2d: float = 1.0
    """Weight of the hand 2D keypoint term."""
    weight_obj2d: float = 1.0
    """Weight of the object reprojection term (projections of the SfM points at the SfM poses)."""
    weight_centroid: float = 0.1
    """Weight of HOLD's coarse contact: L1 distance of the hand-vertex and object-point centroids."""
    centroid_scale_m: float = 0.05
    """Centroid distance (metres) at which the coarse-contact term reaches 1."""
    scale_search_steps: int = 41
    """Phase ``ho`` starts with a search of the object scale on this many log-spaced values."""
    scale_search_range: float = 2.0
    """The scale search spans the current scale divided and multiplied by this factor."""
    weight_contact: float = 1.0
    """Weight of the fingertip contact term (phase ``ho``)."""
    contact_sigma_m: float = 0.01
    """Geman-McClure scale (metres) of the distances between fingertip vertices and the object points."""
    contact_fingers: int = 3
    """Contact: per frame, the fingers closest to the object (this many) are pulled onto it."""
    weight_smooth: float = 1.0
    """Weight of the temporal smoothness of the hand and object centroids (HOLD: phase ``ho``)."""
    smooth_scale_m: float = 0.005
    """Centroid acceleration (metres per frame²) at which the smoothness term reaches 1."""
    weight_delta: float = 0.1
    """Weight of the squared per-frame object offsets δ_t (SfM's trajectory is trusted up to its scale)."""
    delta_scale_m: float = 0.01
    """Offset (metres) at which the δ term reaches 1."""
    weight_depth: float = 10.0
    """Weight of the hinge keeping every object point in front of the camera."""
    min_depth_m: float = 0.05
    """Object points closer than this to the camera plane are penalised."""
    contact_points: int = 1024
    """Object points used by the 3D terms (a random subset, for speed)."""
    contact_vertices_per_finger: int = 8
    """Tip and pad vertices per finger used by the contact term (evenly spread, for speed)."""

    def __post_init__(self) -> None:
        at_least(
            self,
            0,
            "iterations",
            "weight_kp2d",
            "weight_obj2d",
            "weight_centroid",
            "weight_contact",
            "weight_smooth",
            "weight_delta",
            "weight_depth",
            "min_depth_m",
        )
        positive(
            self,
            "lr",
            "kp2d_sigma_px",
            "obj2d_sigma_px",
            "centroid_scale_m",
            "contact_sigma_m",
            "smooth_scale_m",
            "delta_scale_m",
        )
        fraction(self, "lr_final_factor")
        at_least(
            self,
            1,
            "scale_search_steps",
            "contact_points",
            "contact_vertices_per_finger",
            "scale_search_range",
        )
        if not 1 <= self.contact_fingers <= 5:
            raise ValueError(f"contact_fingers must lie in 1..5, found {self.contact_fingers}")


@dataclass
class BuildConfig:
    """Step ``build``: the SEQUENCE dir and an overlay video for a person to check."""

    overlay: bool = True
    """Write SEQ/overlay.mp4: the fitted hand mesh and the object points projected on the frames."""
    overlay_fps: float = 10.0
    """Frame rate of the overlay video."""
    overlay_alpha: float = 0.6
    """Opacity of the projected hand and object in the overlay."""
    invalid_unregistered: bool = False
    """Mark frames that SfM did not register (their object pose is interpolated) as invalid."""

    def __post_init__(self) -> None:
        positive(self, "overlay_fps")
        fraction(self, "overlay_alpha")


@dataclass
class PreprocessConfig:
    """Everything ``hold-preprocess`` does; see docs/architecture.md and §4."""

    seed: int = 0
    """Seed of every random choice (point subsets, fitting initialisation)."""
    device: str = "cpu"
    """Torch device for fitting and alignment (``cpu``, ``cuda``, ``auto``)."""
    torch_threads: int = 1
    """Torch CPU threads while preprocessing. Its tensors are small (tens of frames), where extra
    threads cost more than they give (25× slower with 2 threads on a busy 2-core machine); 0 keeps
    torch's default."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)
    hand: HandConfig = field(default_factory=HandConfig)
    """Hand model (anny / mano) and its keypoint fitting (``hand.fit.*``)."""
    hands: HandsConfig = field(default_factory=HandsConfig)
    sfm: SfmConfig = field(default_factory=SfmConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    build: BuildConfig = field(default_factory=BuildConfig)


def load_preprocess_config(
    overrides: list[str] | None = None, path: str | Path | None = None
) -> PreprocessConfig:
    """Defaults, then a YAML file (optional), then ``key=value`` overrides; strict like ``hold.config``.

    Raises:
        ConfigError: an unknown key, a wrong type, an illegal choice or an unreadable file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"preprocess config file {path} does not exist")
        data = read_yaml_mapping(path)
    apply_overrides(data, overrides or [])
    cfg = from_dict(PreprocessConfig, data)
    bad = [p for p in cfg.align.phases if p not in ("h", "o", "ho")]
    if bad:
        raise ConfigError(f"align.phases: unknown phase(s) {bad}; phases are h, o, ho")
    return cfg


def step_config(step: str, cfg: PreprocessConfig) -> dict:
    """The part of the config a step depends on (stored in its ``done.json``)."""
    parts = {
        "frames": ("frames",),
        "masks": ("masks", "hand"),
        "hands": ("hands", "hand", "camera"),
        "sfm": ("sfm", "camera", "hand"),
        "align": ("align", "hand", "seed"),
        "build": ("build", "hand"),
    }[step]
    full = asdict(cfg)
    return json.loads(json.dumps({k: full[k] for k in parts}))  # tuples → lists, as done.json reads back
