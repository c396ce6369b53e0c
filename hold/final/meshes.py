"""Canonical hand and object meshes of a final model, their posed copies per frame, and vertex colours.

Units: the object mesh is returned in metres in the object frame (canonical units × scale), so a frame's
camera-frame mesh is ``R_t x + t_t``; the hand mesh lives in the hand model's canonical (rest) space, in
metres, and is posed by forward LBS with the frame's bone transforms (HOLD §3.2, hand node).
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from hold.config.export import ExportConfig
from hold.final.model import FinalModel
from hold.final.object_level import NoObjectPixelsError
from hold.geometry.mesh import EmptySurfaceError, extract_mesh, largest_component, marching_cubes
from hold.hand.model import HandOutput
from hold.hand.skinning import knn_skinning_weights, warp_to_posed
from hold.utils.logging import get_logger

log = get_logger("export")

STAGE_OBJECT_MESH = "object_canonical.ply"
"""The canonical object mesh (canonical units) each training stage saves in its stage dir."""


class ExportError(RuntimeError):
    """Something the trained model cannot give (e.g. an SDF without a surface to mesh)."""


def object_mesh(final: FinalModel, cfg: ExportConfig) -> tuple[trimesh.Trimesh, dict[str, object]]:
    """The canonical object mesh in metres (largest component) and a note of how it was made.

    With ``cfg.object_mesh_resolution == 0`` the mesh the final stage saved is reused (it was made by
    the same marching cubes at ``train.final_mesh_resolution``) when it is the one asked for (the zero
    set); otherwise the SDF is meshed again at the level ``cfg.object_level`` says.
    """
    saved = final.run.stage_dir(final.stage) / STAGE_OBJECT_MESH
    resolution = cfg.object_mesh_resolution or final.cfg.train.final_mesh_resolution
    scale = final.object_poses()[2]
    beta = float(final.model.object.density.get_beta().detach())
    source: dict[str, object] = {"file": None, "resolution": resolution}
    level_beta, how = cfg.object_level_beta, ""
    if cfg.object_mesh_resolution == 0 and saved.is_file() and cfg.object_level == "beta" and level_beta == 0:
        mesh = trimesh.load(saved, process=False, force="mesh")
        source["file"] = str(saved.resolve())
        log.info("object mesh: reusing %s", saved)
    else:
        grid, bounds = final.model.object_sdf_grid(resolution)
        if cfg.object_level == "masks":
            level_beta, how = _level_from_masks(final, cfg, grid, bounds, source)
        log.info(
            "object mesh: marching cubes at %d³, level %g β = %.2f mm outside the zero set%s",
            resolution, level_beta, 1e3 * level_beta * beta, how,
        )  # fmt: skip
        try:
            mesh = largest_component(marching_cubes(grid, bounds, level_beta * beta / scale))
        except EmptySurfaceError as e:
            raise ExportError(f"object: {e}; the object SDF has no surface to export") from None
    source["level"] = {"beta": level_beta, "metres": level_beta * beta}
    mesh = mesh.copy()
    mesh.apply_scale(scale)
    source["units"] = "metres (canonical units × object scale)"
    return mesh, source


def _level_from_masks(
    final: FinalModel,
    cfg: ExportConfig,
    grid: np.ndarray,
    bounds: tuple[float, float],
    source: dict[str, object],
) -> tuple[float, str]:
    """``export.object_level=masks``: the level (β) and a note for the log; the fit goes into ``source``.
    Masks without object pixels cannot choose: ``object_level_beta`` is used, with a warning."""
    try:
        fit = final.fit_object_level(cfg.object_level_candidates_beta, grid, bounds)
    except EmptySurfaceError as e:
        raise ExportError(f"object: {e}; the object SDF has no surface to export") from None
    except NoObjectPixelsError as e:
        log.warning(
            "object mesh: export.object_level=masks cannot choose a level (%s): using "
            "export.object_level_beta=%g instead",
            e, cfg.object_level_beta,
        )  # fmt: skip
        source["level_fit"] = {"fallback": f"{e}; export.object_level_beta used"}
        return cfg.object_level_beta, ""
    source["level_fit"] = fit.as_dict()
    scores = ", ".join(f"{k:g} β: {v:.3f}" for k, v in fit.iou.items())
    return fit.level_beta, (
        f", chosen from the masks (silhouette IoU {fit.iou[fit.level_beta]:.3f} over {fit.frames} frames; {scores})"
    )


def hand_canonical_vertices(final: FinalModel, side: str) -> torch.Tensor:
    """(V, 3) rest mesh of the side's hand model for the final hand shape."""
    node = final.model.hands[side]
    betas = final.model.params.hands[side].betas.detach()
    with torch.no_grad():
        return node.hand_model.canonical_vertices(betas)


def hand_mesh(final: FinalModel, side: str, cfg: ExportConfig) -> trimesh.Trimesh:
    """Canonical hand mesh (metres): marching cubes of the hand SDF over the hand model's box + margin."""
    node = final.model.hands[side]
    verts = hand_canonical_vertices(final, side)
    lo = verts.min(0).values - cfg.hand_mesh_margin_m
    hi = verts.max(0).values + cfg.hand_mesh_margin_m
    centre = (lo + hi) / 2
    half = float((hi - lo).max()) / 2
    log.info(
        "hand mesh (%s): marching cubes at %d³ over a %.0f mm cube",
        side,
        cfg.hand_mesh_resolution,
        2e3 * half,
    )
    try:
        mesh = extract_mesh(lambda x: node.canonical_sdf(x + centre), (-half, half), cfg.hand_mesh_resolution)
    except EmptySurfaceError as e:
        raise ExportError(f"hand ({side}): {e}; the hand SDF has no surface around the hand model") from None
    mesh.apply_translation(centre.numpy())
    return mesh


class HandPoser:
    """Poses a canonical hand mesh per frame by forward LBS (HOLD §3.2, hand node).

    Skinning weights come from the K nearest canonical hand-model vertices, as in
    ``HandDeformer.to_posed``; they do not depend on the frame, so they are computed once here.

    Args:
        final: the model. side: hand side. mesh: canonical hand mesh (metres).
    """

    def __init__(self, final: FinalModel, side: str, mesh: trimesh.Trimesh) -> None:
        self.final = final
        self.side = side
        deformer = final.model.hands[side].deformer
        self.points = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32)[None]
        with torch.no_grad():
            self.weights, _ = knn_skinning_weights(
                self.points,
                hand_canonical_vertices(final, side),
                deformer.model.skinning_weights,
                deformer.k,
                deformer.sigma,
                deformer.chunk,
            )

    @torch.no_grad()
    def __call__(self, frame: int) -> np.ndarray:
        """Camera-frame vertices (N, 3) at ``frame``."""
        posed: HandOutput = self.final.model.posed_hand(self.side, torch.tensor([frame]))
        return warp_to_posed(self.points, self.weights, posed.bone_transforms)[0].numpy()


def posed_hand(final: FinalModel, side: str, mesh: trimesh.Trimesh, frame: int) -> np.ndarray:
    """Camera-frame vertices (N, 3) of the canonical hand ``mesh`` at one ``frame`` (see ``HandPoser``)."""
    return HandPoser(final, side, mesh)(frame)


def posed_object(mesh: trimesh.Trimesh, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Camera-frame vertices (N, 3) of the object mesh (metres, object frame) under one frame's pose."""
    return np.asarray(mesh.vertices) @ np.asarray(rotation).T + np.asarray(translation)


# ------------------------------------------------------------------------------------- vertex colours


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def object_vertex_colors(final: FinalModel, mesh: trimesh.Trimesh, frame: int) -> np.ndarray:
    """(N, 3) uint8 colours of the object mesh's vertices seen from the camera at ``frame``.

    The object colour network takes the canonical point, its SDF gradient and feature, the viewing
    direction and the frame's latent code, as in rendering (HOLD §3.2).
    """
    node = final.model.object
    R, t, s = final.object_poses()
    x_m = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    x_can = x_m / s
    with torch.no_grad():
        out = node.sdf_net.sdf_and_gradient(x_can)
        x_cam = x_m @ torch.as_tensor(R[frame], dtype=torch.float32).T + torch.as_tensor(
            t[frame], dtype=torch.float32
        )
        view = torch.nn.functional.normalize(x_cam, dim=-1)
        latent = node.latents(torch.tensor([frame]))
        return _to_uint8(node.color_net(x_can, out.gradient, view, out.feature, latent))


def hand_vertex_colors(final: FinalModel, side: str, mesh: trimesh.Trimesh, posed: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colours of the canonical hand mesh's vertices, viewed from the camera.

    Args:
        final: the model. side: hand side. mesh: canonical hand mesh (metres).
        posed: (N, 3) the same vertices posed in the camera frame (for the viewing direction).
    """
    node = final.model.hands[side]
    x_can = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    with torch.no_grad():
        out = node.canonical_sdf_and_gradient(x_can, create_graph=False)
        view = torch.nn.functional.normalize(torch.as_tensor(posed, dtype=torch.float32), dim=-1)
        # The hand colour network reads the canonical point normalised into the unit sphere, as in
        # HandNode.render_samples.
        x_unit = (x_can - node.centre) / node.radius
        return _to_uint8(node.color_net(x_unit, out.gradient, view, out.feature))
