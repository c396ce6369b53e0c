"""Settings of the synthetic ground-truth generator: one dataclass per part (presets in ``presets.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class TextureConfig:
    """Procedural 3D texture, evaluated at the hit point in the surface's own frame.

    Random-coloured Voronoi cells give sharp, non-repetitive corners and random discs give blobs
    (what SIFT detects); finer cells modulate the brightness and fractal value noise breaks up flat
    areas. The defaults were tuned with pycolmap SIFT on the demo preset: 32/32 frames registered.
    """

    cell_size_m: float = 0.008
    """Mean diameter of the coloured cells, metres."""
    spot_spacing_m: float = 0.01
    """Mean distance between the coloured discs drawn over the cells (blobs for SIFT); 0 = none."""
    spot_radius_m: tuple[float, float] = (0.002, 0.005)
    """Range of the disc radii, metres."""
    fine_cell_size_m: float = 0.004
    """Mean diameter of the brightness cells, metres."""
    fine_contrast: float = 0.5
    """Brightness range of the fine cells (factor 1 ± contrast / 2)."""
    noise_frequency: float = 60.0
    """Base frequency of the fractal value noise, cycles per metre."""
    noise_octaves: int = 3
    """Octaves of the fractal value noise (each doubles the frequency, halves the amplitude)."""
    noise_amplitude: float = 0.2
    """Brightness modulation of the noise (0 = none)."""
    saturation: float = 0.85
    """Maximum colour saturation of the cells (0 = grey)."""
    value_min: float = 0.3
    """Darkest cell brightness (HSV value)."""
    plain: bool = False
    """Paint the surface one plain colour, ``base_rgb``, except for a printed label that shows the
    texture above (see ``label_fraction``)."""
    base_rgb: tuple[float, float, float] = (0.2, 0.45, 0.7)
    """Albedo of the plain surface, linear 0..1 (only when ``plain``)."""
    label_fraction: float = 0.1
    """Share of the surface area the label covers (only when ``plain``; 0 = no label). The label is a
    rectangle projected onto the side facing along the surface's thinnest principal axis."""
    label_aspect: float = 1.5
    """Ratio of the label's long side (along the surface's longest principal axis) to its short one."""


@dataclass
class GraspConfig:
    """Optimisation of the hand pose so that fingertips touch the object without interpenetration."""

    steps: int = 300
    """Adam steps of the grasp optimisation."""
    lr: float = 0.02
    """Adam learning rate (radians for angles; translations are divided by ``transl_scale`` first)."""
    lr_final_factor: float = 0.05
    """The learning rate decays (cosine) to this fraction of ``lr`` by the last step."""
    transl_scale: float = 0.1
    """The optimiser sees translation / this (metres): makes one learning rate fit angles and lengths."""
    loss_unit_m: float = 0.01
    """Distances enter the losses in this unit (metres), so the terms are of order one."""
    sdf_sample_spacing_m: float = 0.001
    """Spacing of the surface samples behind the fast signed distance used while optimising, metres."""
    probe_radius_m: float = 0.03
    """Surface distances are evaluated within this range (metres); farther points count as far away."""
    probe_depth_m: float = 0.01
    """Object points are tested for lying inside the hand down to this depth, metres."""
    probe_stride: int = 2
    """Every this-many-th object vertex near the hand is tested for lying inside it."""
    contact_weight: float = 1.0
    """Weight of the squared distance of each fingertip region's nearest vertex to the surface."""
    tip_weights: tuple[float, float, float, float, float] = (3.0, 1.0, 1.0, 1.0, 1.0)
    """Relative contact weight per fingertip, thumb..little (the opposing thumb matters most)."""
    palm_weight: float = 0.3
    """Weight of the squared distance of the palm region's nearest vertex to the surface."""
    penetration_weight: float = 30.0
    """Weight of the summed squared depths of hand vertices inside the object and vice versa."""
    pose_prior_weight: float = 0.01
    """Weight of the squared distance of the joint angles from the pre-shape."""
    limit_weight: float = 100.0
    """Weight of the squared excess of the joint angles beyond the anatomical limits."""
    anchor_weight: float = 1.0
    """Weight of the squared slide of the palm along the wrap axis from where it was placed."""
    finger_preshape: tuple[float, float, float] = (0.15, 0.15, 0.1)
    """Initial flexion (radians) of the fingers' MCP, PIP and DIP joints."""
    thumb_cmc_preshape: tuple[float, float, float] = (0.3, 0.0, 0.5)
    """Initial flexion, twist and spread (radians) of the thumb's CMC joint: spread opposes the thumb."""
    thumb_preshape: tuple[float, float] = (0.0, 0.0)
    """Initial flexion (radians) of the thumb's MCP and IP joints."""
    surface_margin_m: float = 0.0005
    """Target signed distance of the contact regions: slightly outside, so rounding never penetrates."""
    palm_gap_m: float = 0.005
    """Initial gap between the palm skin and the object surface, metres."""
    contact_tolerance_m: float = 0.002
    """A fingertip counts as touching when the surface is this close (the acceptance threshold)."""
    penetration_tolerance_m: float = 0.002
    """Deepest allowed interpenetration of hand and object (the acceptance threshold)."""
    check_every: int = 25
    """Steps between convergence checks; the optimisation stops once it has converged."""
    converged_fraction: float = 0.5
    """Converged: every fingertip and the deepest penetration within this fraction of the tolerances."""
    min_contacts: int = 3
    """Fingertips that must touch for the grasp to be accepted."""
    approach_deg: float = 0.0
    """Azimuth about the wrap axis of the side the palm approaches from, added to the object's default."""
    approach_jitter_deg: float = 20.0
    """Random extra azimuth, uniform in ± this, drawn from the seed."""
    height_fraction: float = 0.5
    """Where along the wrap axis (0 one end, 1 the other) the palm is placed."""


@dataclass
class NoiseConfig:
    """Noise of the emulated off-the-shelf estimators written to the RAW dir (recorded in synth.json)."""

    mask_boundary_px: float = 1.5
    """Amplitude, pixels, of the smooth random displacement of every mask boundary."""
    mask_boundary_smooth_px: float = 3.0
    """Spatial correlation (Gaussian sigma, pixels) of the boundary displacement field."""
    mask_blob_prob: float = 0.15
    """Probability per frame of one spurious blob (hand or object label) somewhere in the mask."""
    mask_blob_radius: float = 0.04
    """Radius of a spurious blob, as a fraction of the image's smaller side."""
    kp2d_noise_px: float = 1.5
    """Standard deviation of the Gaussian noise on the 2D keypoints, pixels (at the output resolution)."""
    kp2d_conf_visible: float = 0.9
    """Mean confidence of a visible 2D keypoint."""
    kp2d_conf_occluded: float = 0.4
    """Mean confidence of a keypoint hidden behind the object."""
    kp2d_conf_jitter: float = 0.05
    """Standard deviation of the confidences around their means."""
    kp2d_dropout_prob: float = 0.05
    """Probability that a single keypoint is dropped (confidence 0)."""
    hand_dropout_prob: float = 0.0
    """Probability that the whole hand is missed in a frame (``right.valid`` false)."""
    kp3d_noise_m: float = 0.004
    """Standard deviation of the noise on the root-relative 3D keypoints, metres."""
    kp3d_frame_noise_m: float = 0.0
    """Standard deviation of a per-frame 3D offset shared by all non-root keypoints, metres (a whole
    hand misplaced relative to its root, as networks err); adds to ``kp3d_noise_m`` in quadrature."""
    kp2d_outlier_prob: float = 0.0
    """Probability that a 2D keypoint is an outlier, thrown off by up to ``kp2d_outlier_px``."""
    kp2d_outlier_px: float = 40.0
    """Largest extra displacement of an outlier 2D keypoint, pixels (length uniform in 0..this)."""
    hand_dropout_runs: int = 0
    """Runs of consecutive frames in which the hand is missed (``right.valid`` false); 0 = none."""
    hand_dropout_fraction: tuple[float, float] = (0.1, 0.5)
    """Range of the share of the clip the missed runs cover together (drawn uniformly)."""
    mask_thin_px: float = 0.0
    """Object parts narrower than this (pixels) vanish from the masks (a morphological opening by a
    disc of this diameter; the pixels turn background), as segmenters miss handles and blades; 0 = off."""
    mask_contact_confusion_px: float = 0.0
    """Within this distance (pixels) of the hand–object boundary, random patches swap the hand and
    object labels; 0 = off."""


@dataclass
class SynthConfig:
    """Everything that shapes a synthetic sequence; a seed and this config determine every byte."""

    num_frames: int = 32
    """T, the number of frames."""
    image_size: tuple[int, int] = (320, 320)
    """(H, W) of the rendered frames, pixels."""
    focal_factor: float = 1.2
    """Focal length in units of the image width (fx = fy = focal_factor * W): FoV ~ 45 degrees."""
    supersample: int = 2
    """Rays per pixel side for the RGB frame (anti-aliasing); masks and depth use the pixel centre."""
    object: str = "bottle"
    """Procedural shape name (see ``hold.data.synthetic.objects.SHAPES``) or a .obj / .ply path."""
    object_size_m: float = 0.0
    """Rescale a user mesh so its longest bounding-box side is this long; 0 keeps the file's metres."""
    object_voxel_m: float = 0.002
    """Marching-cubes voxel size of the procedural shapes, metres (their mesh density)."""
    texture: TextureConfig = field(default_factory=TextureConfig)
    """Object texture."""
    texture_level: str = "rich"
    """Entry of ``TEXTURE_LEVELS`` that ``texture`` starts from (``texture`` overrides apply on top);
    set by ``make_config``, recorded in synth.json. ``rich``: dense sharp cells and blobs (SfM's
    best case); ``medium``: larger, paler cells and fewer blobs; ``low``: a few large low-contrast
    patches (breaks SfM); ``plain_label``: one plain colour plus a small printed label on one side."""
    fill_fraction: float = 0.9
    """The hand+object bounding sphere spans this fraction of the smaller image side (sets the depth)."""
    rotation_deg: float = 240.0
    """Total rotation of the hand+object group over the clip, degrees (>= 180 lets SfM see around it)."""
    axis_tilt_deg: float = 25.0
    """Tilt of the rotation axis out of the image plane, towards the camera, degrees."""
    wobble_m: float = 0.01
    """Amplitude of a slow sinusoidal translation of the group, metres."""
    wobble_deg: float = 8.0
    """Amplitude of a slow sinusoidal rocking of the group about the camera's x axis, degrees."""
    spin_axis: Literal["palm", "random"] = "palm"
    """Spin about the object→palm axis, or about one tilted from it by a random angle (uniform up to
    ``spin_axis_jitter_deg``, random direction; the palm then no longer stays on the axis)."""
    spin_axis_jitter_deg: float = 60.0
    """Largest tilt of a ``random`` spin axis away from the object→palm axis, degrees."""
    translation_m: float = 0.0
    """Length of a linear drift of the group over the clip, metres, along a random direction mostly
    in the image plane; centred on the framed position (reached mid-clip), the framing allows for it."""
    fast_segment_fraction: float = 0.0
    """Share of the clip (a random contiguous part) in which the spin runs ``fast_segment_speedup``
    times faster; the total rotation stays ``rotation_deg``. 0 = uniform speed."""
    fast_segment_speedup: float = 3.0
    """Angular speed in the fast part relative to the rest of the clip."""
    finger_motion: Literal["none", "wave", "regrasp"] = "none"
    """Articulation over time: ``wave`` lifts the four fingers off the object and back one after the
    other; ``regrasp`` opens all four together and closes them again. The thumb always holds."""
    finger_motion_deg: float = 30.0
    """Flexion taken off each finger's MCP, PIP and DIP joints at the peak of its motion, degrees
    (never beyond the anatomical limits); opening only, so the fingers never enter the object."""
    finger_motion_span: tuple[float, float] = (0.2, 0.8)
    """Part of the clip (start, end as fractions of it) in which the fingers move; outside it they
    hold the static grasp."""
    camera_motion: Literal["static", "orbit"] = "static"
    """Static pinhole camera, or one that orbits the scene centre (yaw, see ``camera_orbit_deg``)."""
    camera_orbit_deg: float = 20.0
    """Total yaw of the orbiting camera over the clip, degrees."""
    background_depth_factor: float = 2.5
    """Distance of the background wall as a multiple of the object's distance."""
    background_texture: TextureConfig = field(
        default_factory=lambda: TextureConfig(
            cell_size_m=0.15,
            spot_spacing_m=0.0,
            fine_cell_size_m=0.05,
            fine_contrast=0.15,
            noise_frequency=8.0,
            noise_amplitude=0.3,
            saturation=0.3,
            value_min=0.55,
        )
    )
    """Texture of the background wall (coarser, paler and softer than the object's)."""
    background_texels: int = 512
    """Side of the image the wall texture is baked into (the wall is ~1.6× the view's width)."""
    background_style: Literal["cells", "photo"] = "cells"
    """``cells``: the procedural ``background_texture``; ``photo``: a photographic-looking backdrop
    (coloured things with soft edges, a wooden table edge, uneven light, grain; ``backdrop.py``), what
    a desk or lab behind a tripod looks like."""
    shadows: bool = False
    """The hand and object cast soft shadows on the background (wall and distractor)."""
    shadow_softness_deg: float = 4.0
    """Angular radius of the light source, degrees: the width of the penumbra."""
    shadow_samples: int = 8
    """Shadow rays per background hit (the soft-shadow estimate)."""
    light_drift: float = 0.0
    """Relative change of the light's intensity over the clip (0.04: from -2 % to +2 %, with a slow
    wobble), as daylight or a camera's auto-exposure drifts."""
    image_noise: float = 0.0
    """Standard deviation of per-frame Gaussian pixel noise (0..1 intensity units; ~0.01 for a
    phone camera in room light)."""
    distractor: bool = False
    """Add a static textured box beside the hand (labelled background) as a distractor."""
    skin_rgb: tuple[float, float, float] = (0.87, 0.66, 0.53)
    """Base albedo of the hand's skin, linear 0..1."""
    skin_variation: float = 0.08
    """Amplitude of the low-frequency albedo variation over the skin."""
    ambient: float = 0.45
    """Ambient light level."""
    light_dir: tuple[float, float, float] = (-0.4, -0.6, -1.0)
    """Direction towards the directional light, camera frame (normalised in code)."""
    grasp: GraspConfig = field(default_factory=GraspConfig)
    """Grasp optimisation."""
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    """Noise of the emulated estimators."""
    noise_preset: str = "mild"
    """Entry of ``NOISE_PRESETS`` that ``noise`` starts from (``custom``: a whole ``NoiseConfig`` was
    given that equals none); set by ``make_config``, recorded in synth.json."""
    oracle_num_points: int = 4096
    """Number of GT-surface points in the oracle SEQUENCE's ``object.points``."""
    contact_sheet_columns: int = 8
    """Frames per row of the contact sheet."""
