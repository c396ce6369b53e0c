"""Configuration of stage 2, the hand–object pose refinement (HOLD §3.3–3.4, plus HOMan/HOnnotate terms)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from hold.utils.checks import at_least, check, positive

ContactRegion = Literal["tips", "pads", "palm", "zones"]
ContactPer = Literal["region", "vertex"]


@dataclass
class SoftRasterConfig:
    sigma: float = 1.0
    """Sharpness σ in squared pixels: the silhouette blurs over about √σ pixels at the boundary."""
    cutoff: float = 3.0
    """Faces farther than cutoff·√σ pixels from a pixel are skipped there (D < 1e-3 beyond 2.7·√σ)."""
    max_chunk_elements: int = 4_000_000
    """Pixel × face pairs evaluated at once; bounds memory (≈ 40 bytes per pair with gradients)."""
    near: float = 1e-3
    """Vertices closer to the camera than this (metres) are clamped, so projection stays finite."""
    tile_size: int = 1
    """Side of the square pixel tiles that faces are binned into; 1 evaluates exactly the pixels in
    each face's padded box (fewest pairs; larger tiles trade wasted pairs for fewer index operations)."""
    cull_backfaces: bool = True
    """Skip faces that face away from the camera: the front faces of a closed, outward-oriented mesh
    cover the same silhouette at half the cost."""
    outside: Literal["max", "product"] = "max"
    """How the faces that do not contain a pixel cover it. ``product``: SoftRas's 1 − Π(1 − D_j) over
    every nearby face; where several faces meet the contour their tails add up and the silhouette's
    0.5 level lies a fraction of a pixel outside the mesh (a bias that pushes a fitted mesh away from
    the camera). ``max``: only the nearest outside face counts, so the 0.5 level is on the contour;
    faces containing the pixel still combine by product (no dips along interior edges)."""
    backend: Literal["auto", "torch", "kaolin"] = "auto"
    """``torch`` (this module), ``kaolin`` (DIB-R soft mask, CUDA), or ``auto``: kaolin when it imports
    and the vertices are on a CUDA device, else torch (one warning)."""
    kaolin_sigmainv: float = 7000.0
    """kaolin backend: DIB-R sharpness (higher is sharper), in normalised device coordinates."""
    kaolin_boxlen: float = 0.02
    """kaolin backend: margin of a face's box (normalised device coordinates) where it influences pixels."""
    kaolin_knum: int = 30
    """kaolin backend: maximum number of faces that influence one pixel."""

    def __post_init__(self) -> None:
        positive(self, "sigma", "cutoff", "near", "kaolin_sigmainv", "kaolin_boxlen")
        at_least(self, 1, "max_chunk_elements", "tile_size", "kaolin_knum")


@dataclass
class RefineLossConfig:
    """Weights of the refinement terms; 0 switches a term off.

    Metric residuals (contact gaps, penetration depths, translation differences) are measured in
    units of ``RefineConfig.length_unit`` before squaring, so that a weight of 1 makes a residual of
    one unit cost as much as a silhouette that misses its whole mask.
    """

    mask_hand: float = 1.0
    """Hand silhouette vs the hand mask, ignoring object pixels (HOLD §3.4, occlusion-aware L_mask);
    L1 normalised by the mask's area."""
    mask_object: float = 1.0
    """Object silhouette vs the object mask, ignoring hand pixels (HOLD §3.4)."""
    contact: float = 0.5
    """Squared gap between each contact region and its nearest object point (HOLD §3.4 L_contact)."""
    penetration_hand: float = 0.1
    """Squared depth of hand vertices inside the object, summed over vertices (beyond HOLD: HOMan).
    Kept soft: where the hand hides the object, the stage-1 mesh grows into the fingers, and a stiff
    term pushes hand and object apart (on a 256×256 render of the demo, weight 1 raised the fingertip gap
    and lowered the mask IoU; 0.1 cut the penetration 4× and CD_h by 40 %)."""
    penetration_object: float = 0.1
    """Squared depth of object points inside the sealed hand, summed over points (beyond HOLD)."""
    smooth_transl: float = 0.1
    """Zeroth-order temporal smoothness: squared change of hand and object translations between
    consecutive frames (ours, after HOnnotate and HOMan; HOLD has none): a chunk's frames otherwise
    move apart wherever a mask is noisy."""
    smooth_transl_accel: float = 1.0
    """First-order temporal smoothness: squared change of the translation velocity."""
    smooth_rot: float = 0.1
    """Zeroth-order smoothness of hand and object rotations: squared Frobenius norm of R_t+1 − R_t."""
    smooth_rot_accel: float = 1.0
    """First-order smoothness of rotations: squared norm of R_t+1 R_tᵀ − R_t R_t−1ᵀ."""
    object_motion_transl: float = 10.0
    """Spread over the frames of the object's translation correction in its own frame,
    R0ᵀ (t − t0): keeps the inter-frame motion of the initial (SfM) poses, a common offset is free
    (beyond HOLD)."""
    object_motion_rot: float = 10.0
    """Spread over the frames of the object's rotation correction R0ᵀ R (Frobenius)."""
    shape_prior: float = 0.01
    """Squared deviation of the hand shape β from its stage-1 value (ours; HOLD has none)."""
    scale_prior: float = 1.0
    """Squared deviation of the log object scale from its stage-1 value (ours; HOLD has none): the
    masks fix only the ratio of the object's size to its depth."""
    keypoints_2d: float = 1e-3
    """Squared deviation (pixels of the full image) of the projected hand keypoints from their initial
    projections: keeps the hand where the keypoint estimator put it in the image (ours)."""
    keypoints_3d: float = 1.0
    """Squared deviation of the root-relative hand keypoints from their initial positions: keeps the
    hand's orientation and shape near the estimate (the refinement moves the hand, it does not re-fit
    its pose; ours)."""

    def __post_init__(self) -> None:
        at_least(self, 0, *(f.name for f in fields(self)))


@dataclass
class RefineConfig:
    """Stage 2: object mesh from the stage-1 SDF, then per-frame pose refinement in two phases."""

    mesh_resolution: int = 128
    """Marching-cubes resolution of the object mesh extracted from the stage-1 SDF (HOLD §3.3)."""
    mesh_faces: int = 3000
    """Faces of the object mesh after decimation (rasterisation and contact use this mesh; HOLD's
    released code: 5000, ours 3000 for CPU time)."""
    hand_raster_faces: int = 1000
    """Faces of the decimated proxy of the sealed hand mesh that is rasterised (its vertices follow the
    posed hand by barycentric interpolation); 0 rasterises the full sealed mesh."""
    sdf_grid_resolution: int = 64
    """Samples per axis of the object's canonical SDF grid (interpenetration, trilinear lookup)."""
    hand_sdf_grid_resolution: int = 64
    """Samples per axis of the sealed hand's canonical SDF grid."""
    hand_sdf_padding: float = 0.02
    """Metres added around the canonical hand's bounding box for its SDF grid."""
    object_points: int = 4000
    """Points sampled on the object mesh (canonical) for the contact term."""
    penetration_object_points: int = 1000
    """Of those, points tested for being inside the sealed hand."""
    skinning_vertex_stride: int = 4
    """Every k-th hand vertex is searched for the skinning weights of those points (inverse skinning
    into the canonical hand; ``hand.skinning_*`` set K, σ and the range)."""
    contact_regions: tuple[ContactRegion, ...] = ("tips",)
    """Hand regions that should touch the object: each finger's tip (and pad) region is one contact
    region, the palm another (ours, from the hand model's mesh: ``hand.contact_*`` define them).
    ``zones``: ObMan's contact zones of the MANO mesh, the vertex ids HOLD uses (``hand.model=mano``,
    with ``contact_zones.pkl`` in ``hand.mano_dir``)."""
    contact_per: ContactPer = "region"
    """What the contact term averages. ``region`` (ours): the gap of each contact region is that of
    its vertex nearest the object, so a fingertip touching anywhere is in contact and a region is not
    pressed flat onto the surface. ``vertex``: every contact vertex's own gap (HOLD Eq. 16; released
    ``code/src/fitting/loss.py``: the mean over all contact vertices)."""
    contact_robust_distance: float = 0.03
    """Scale (metres) of the robust contact penalty (ours): a region this far from the object costs
    half of what a far one does; every region is pulled, far ones gently (a lifted finger does not drag
    the object). 0: plain squared gaps (HOLD Eq. 16)."""
    length_unit: float = 0.01
    """Metres per unit of the metric residuals (see ``RefineLossConfig``)."""
    raster_size: int = 128
    """Longest side, in pixels, of the silhouettes and masks compared (HOLD: 300)."""
    raster: SoftRasterConfig = field(default_factory=lambda: SoftRasterConfig(sigma=0.25))
    """Soft rasteriser settings (sharpness in pixels of the ``raster_size`` image, tiling, backend)."""
    loss: RefineLossConfig = field(default_factory=RefineLossConfig)
    """Term weights."""
    optimize_hand_rot: bool = True
    """Refine the hand's global orientation R_h (ours; HOLD's released code keeps it fixed): a hand
    rotated off by the keypoint fit otherwise holds the object at a wrong angle in every frame."""
    object_rot_frames: Literal["all", "filled"] = "all"
    """Which frames' object rotations phase 2 refines: ``all`` (HOLD), or ``filled`` (ours: only the
    frames whose pose did not come from SfM, ``object.source``; all when the sequence records no
    source). An SfM rotation is good to about a degree on a textured object; the silhouette and contact
    terms move it by several."""
    optimize_articulation: bool = False
    """Refine the finger articulation too (HOLD keeps it fixed)."""
    optimize_betas: bool = True
    """Refine the hand shape β in phase 1 (kept fixed in phase 2)."""
    optimize_scale: bool = True
    """Refine the object scale s in phase 1 (kept fixed in phase 2)."""
    phase1_frames: int = 10
    """Phase 1: frames spread evenly over the sequence, optimised together for the shared β and s
    (HOLD's released code: 10 by default, 51 in its documented pipeline; ours 10 for CPU time). Their
    per-frame poses are then reset; phase 2 refines them."""
    phase1_iterations: int = 500
    """Maximum steps of phase 1 (HOLD: 500)."""
    chunk_frames: int = 10
    """Phase 2: consecutive frames optimised together (HOLD's released code: 10 by default, 51 in its
    documented pipeline; ours 10 for CPU time)."""
    phase2_iterations: int = 500
    """Maximum steps per phase-2 chunk (HOLD: 500)."""
    context_frames: int = 2
    """Already refined frames before a chunk that enter its smoothness terms (fixed)."""
    lr_rot: float = 1e-2
    """Adam learning rate of the rotations (axis-angle, radians; HOLD: 1e-2 for everything)."""
    lr_transl: float = 1e-3
    """Learning rate of the translations (metres)."""
    lr_pose: float = 1e-2
    """Learning rate of the articulation (when optimised)."""
    lr_betas: float = 1e-2
    """Learning rate of the hand shape."""
    lr_scale: float = 1e-2
    """Learning rate of the log object scale."""
    plateau_patience: int = 30
    """Steps without a relative improvement of ``plateau_threshold`` before the learning rates are
    multiplied by ``plateau_factor`` (HOLD: ReduceLROnPlateau, patience 30)."""
    plateau_factor: float = 0.1
    """Learning-rate decay on a plateau."""
    plateau_threshold: float = 1e-4
    """Relative loss decrease that counts as an improvement."""
    min_lr_ratio: float = 1e-3
    """Early stopping: a phase ends once its learning rates fall below this fraction of the start
    (HOLD: 1e-5 / 1e-2)."""
    log_every: int = 10
    """Steps between scalar log rows."""
    overlay: Literal["gif", "mp4", "none"] = "gif"
    """Before/after overlay video written to RUN/stage2/."""
    overlay_size: int = 192
    """Height in pixels of each panel of the overlay."""
    overlay_fps: float = 8.0
    """Frames per second of the overlay."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the refinement runs (``auto``: CUDA when available)."""
    num_threads: int = 1
    """CPU threads of torch during the refinement (restored afterwards); 0 keeps torch's setting. Its
    small batched operations gain nothing from more threads, and on a busy machine lose up to 5×."""

    def __post_init__(self) -> None:
        check(self.mesh_resolution >= 16, f"mesh_resolution must be >= 16, found {self.mesh_resolution}")
        check(self.mesh_faces >= 100, f"mesh_faces must be >= 100, found {self.mesh_faces}")
        check(self.raster_size >= 16, f"raster_size must be >= 16, found {self.raster_size}")
        for name in ("phase1_frames", "chunk_frames", "object_points", "penetration_object_points"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, found {getattr(self, name)}")
        check(self.length_unit > 0, f"length_unit must be > 0, found {self.length_unit}")
        check(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), found {self.plateau_factor}")
        check(len(self.contact_regions) > 0, "contact_regions must name at least one region")
