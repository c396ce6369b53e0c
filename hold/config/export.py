"""Configuration of `hold-export` (the EXPORT dir of docs/formats.md): meshing, renders, preview video, scene."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hold.utils.checks import check


@dataclass
class ExportConfig:
    object_mesh_resolution: int = 0
    """Marching-cubes grid (points per side of the cube around the object's bounding sphere) of the
    canonical object mesh. 0 reuses the mesh the final training stage saved (made at
    ``train.final_mesh_resolution``), extracting at that resolution only when the stage saved none."""
    object_level_beta: float = 0.0
    """Mesh the object at the level set this many β (the object density's learnt β, metres) outside
    the SDF's zero set. The density renders a silhouette edge 1.6–2.5 β beyond the zero set (measured
    with the renderer for radii of 1–4 cm and β of 1–2 mm), so an SDF fitted to masks with a large β
    has its zero set that far inside the object: at the demo's β ≈ 2 mm, 4 mm, −10 % on a 4 cm
    object. 0 meshes the zero set (HOLD). Used when ``object_level`` is ``beta``."""
    object_level: Literal["beta", "masks"] = "beta"
    """How the object mesh's level set is chosen. ``beta``: ``object_level_beta`` β outside the zero
    set, the same for every object. ``masks``: among ``object_level_candidates_beta``, the level whose
    posed mesh silhouettes overlap the object masks best (IoU on the pixels the hand does not cover):
    how far the rendered edge lies beyond the zero set depends on the object's size and shape, so a
    fixed offset inflates small objects and leaves large ones too small."""
    object_level_candidates_beta: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    """Levels (multiples of β outside the zero set) that ``object_level: masks`` chooses from."""
    final_stage: Literal["last", "masks"] = "last"
    """Which training stage's model is exported and evaluated. ``last``: stage 3 (HOLD), or stage 1
    when stage 3 lost the object's surface. ``masks``: of stages 1 and 3, the one whose object
    silhouettes (each at its best level of ``object_level_candidates_beta``) overlap the object masks
    better, as for ``object_level``; stage 3 retrains on stage 2's poses, which on some clips fit the
    masks worse than stage 1's. A stage 1 chosen this way is reported like the fallback."""
    hand_mesh_resolution: int = 96
    """Marching-cubes grid (points per side) of the canonical hand mesh, over the cube around the hand
    model's canonical vertices plus ``hand_mesh_margin_m``."""
    hand_mesh_margin_m: float = 0.01
    """Metres added on every side of the canonical hand model's bounding box before meshing the hand SDF."""
    max_faces: int = 0
    """Decimate every exported mesh to at most this many faces (quadric); 0 keeps marching cubes' meshes.
    Metrics are always computed on the undecimated object mesh."""
    render_frames: list[int] = field(default_factory=list)
    """Frames rendered by the neural renderer (RGB + normal map + mesh overlay, as HOLD Fig. 1); empty:
    ``num_render_frames`` frames evenly spaced over the valid frames."""
    num_render_frames: int = 2
    """How many frames to render when ``render_frames`` is empty (volume rendering is slow on a CPU)."""
    render_stride: int = 4
    """Pixel stride of the neural renders (1 = every pixel)."""
    scene_frame: int = -1
    """Frame whose posed hand and object meshes go into ``scene.glb``; -1: the first rendered frame."""
    vertex_colors: bool = True
    """Colour the meshes of ``scene.glb`` with the trained colour networks (otherwise plain colours)."""
    video: bool = True
    """Write ``renders/preview.mp4``: input | reconstructed meshes over the input | side view, per frame."""
    video_fps: int = 10
    """Frame rate of the preview video."""
    video_frame_stride: int = 1
    """Use every n-th frame of the sequence in the preview video."""
    side_view_deg: float = 90.0
    """Side view of the preview: the meshes turned by this angle about the camera's vertical axis through
    their centre."""
    overlay_alpha: float = 0.8
    """Opacity of the mesh renders drawn over the input frame."""

    def __post_init__(self) -> None:
        check(
            self.object_mesh_resolution == 0 or self.object_mesh_resolution >= 8,
            f"object_mesh_resolution must be 0 (reuse the stage's mesh) or >= 8, found {self.object_mesh_resolution}",
        )
        check(
            self.hand_mesh_resolution >= 8,
            f"hand_mesh_resolution must be >= 8, found {self.hand_mesh_resolution}",
        )
        check(
            self.hand_mesh_margin_m >= 0, f"hand_mesh_margin_m must be >= 0, found {self.hand_mesh_margin_m}"
        )
        check(self.max_faces >= 0, f"max_faces must be >= 0, found {self.max_faces}")
        check(self.object_level_beta >= 0, f"object_level_beta must be >= 0, found {self.object_level_beta}")
        check(
            self.object_level in ("beta", "masks"),
            f"object_level must be 'beta' or 'masks', found {self.object_level!r}",
        )
        check(
            self.final_stage in ("last", "masks"),
            f"final_stage must be 'last' or 'masks', found {self.final_stage!r}",
        )
        check(
            len(self.object_level_candidates_beta) > 0 and min(self.object_level_candidates_beta) >= 0,
            f"object_level_candidates_beta must be non-empty and >= 0, found {self.object_level_candidates_beta}",
        )
        check(
            all(f >= 0 for f in self.render_frames), f"render_frames must be >= 0, found {self.render_frames}"
        )
        check(self.num_render_frames >= 0, f"num_render_frames must be >= 0, found {self.num_render_frames}")
        check(self.render_stride >= 1, f"render_stride must be >= 1, found {self.render_stride}")
        check(self.scene_frame >= -1, f"scene_frame must be >= -1, found {self.scene_frame}")
        check(self.video_fps >= 1, f"video_fps must be >= 1, found {self.video_fps}")
        check(
            self.video_frame_stride >= 1, f"video_frame_stride must be >= 1, found {self.video_frame_stride}"
        )
        check(
            0.0 <= self.overlay_alpha <= 1.0, f"overlay_alpha must be in [0, 1], found {self.overlay_alpha}"
        )
