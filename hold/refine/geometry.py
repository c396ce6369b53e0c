"""The meshes stage 2 works with: the object mesh from the stage-1 SDF and the hand's derived geometry.

Object (HOLD §3.3): marching cubes on the canonical SDF, largest connected component, decimation to
``mesh_faces``; plus surface points for the contact term and an SDF grid for interpenetration.
Hand: the sealed (watertight) hand mesh, a decimated proxy of it for rasterisation, its contact
regions, and a canonical SDF grid that posed points are looked up in after inverse skinning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import point_cloud_utils as pcu
import torch
import trimesh
from torch import Tensor

from hold.config.hand import HandConfig
from hold.config.refine import RefineConfig
from hold.geometry.mesh import decimate, largest_component, marching_cubes, sdf_grid
from hold.geometry.surface import sample_surface
from hold.hand.mano_io import load_contact_zones
from hold.hand.model import HandModel
from hold.hand.skinning import HandDeformer
from hold.refine.sdf_grid import SDFGrid


@dataclass
class ObjectGeometry:
    """The canonical object (canonical units; metres = canonical × scale).

    Attributes:
        mesh: the largest component of the zero level set (diagnostics, SDF grid).
        vertices: (Vo, 3) vertices of the decimated mesh (rasterised).
        faces: (Fo, 3) its faces.
        points: (P, 3) surface samples of ``mesh`` (contact, object-in-hand penetration).
        sdf: canonical SDF grid of ``mesh``.
    """

    mesh: trimesh.Trimesh
    vertices: Tensor
    faces: Tensor
    points: Tensor
    sdf: SDFGrid

    def to(self, device: torch.device) -> ObjectGeometry:
        return ObjectGeometry(
            self.mesh,
            self.vertices.to(device),
            self.faces.to(device),
            self.points.to(device),
            self.sdf.to(device),
        )


def object_geometry(
    sdf_fn: Callable[[Tensor], Tensor], bound: float, cfg: RefineConfig, seed: int = 0
) -> ObjectGeometry:
    """Extract and prepare the object mesh from a canonical SDF ((N, 3) → (N,)) over [−bound, bound]³.

    Raises:
        EmptySurfaceError: the SDF has no zero level set in the box.
    """
    grid = sdf_grid(sdf_fn, (-bound, bound), cfg.mesh_resolution)
    mesh = largest_component(marching_cubes(grid, (-bound, bound)))
    small = decimate(mesh, cfg.mesh_faces)
    points = sample_surface(mesh, cfg.object_points, seed, "object mesh")
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    sdf = SDFGrid.around_mesh(
        np.asarray(mesh.vertices), np.asarray(mesh.faces), cfg.sdf_grid_resolution, 0.1 * extent
    )
    return ObjectGeometry(
        mesh=mesh,
        vertices=torch.as_tensor(np.asarray(small.vertices), dtype=torch.float32),
        faces=torch.as_tensor(np.asarray(small.faces), dtype=torch.long),
        points=torch.as_tensor(points, dtype=torch.float32),
        sdf=sdf,
    )


@dataclass
class HandGeometry:
    """What the refinement needs of one hand model.

    Attributes:
        model: the hand model (frozen weights).
        proxy_faces: (Fp, 3) faces of the rasterised proxy mesh.
        proxy_corners: (Vp, 3) sealed-mesh vertex ids of the triangle each proxy vertex lies on.
        proxy_weights: (Vp, 3) barycentric weights of the proxy vertices on those triangles.
        contact_regions: vertex ids of each region that should touch the object.
        tips: the five fingertip regions (diagnostics: fingertip–object gap).
        sdf: SDF grid of the sealed canonical mesh (for ``betas``), in the canonical frame.
        deformer: inverse skinning of posed points into that frame.
    """

    model: HandModel
    proxy_faces: Tensor
    proxy_corners: Tensor
    proxy_weights: Tensor
    contact_regions: list[Tensor]
    tips: list[Tensor]
    sdf: SDFGrid
    deformer: HandDeformer

    def to(self, device: torch.device) -> HandGeometry:
        move = lambda ts: [t.to(device) for t in ts]  # noqa: E731
        return HandGeometry(
            self.model.to(device),
            self.proxy_faces.to(device),
            self.proxy_corners.to(device),
            self.proxy_weights.to(device),
            move(self.contact_regions),
            move(self.tips),
            self.sdf.to(device),
            self.deformer.to(device),
        )

    def proxy_vertices(self, sealed_vertices: Tensor) -> Tensor:
        """(B, V + h, 3) posed sealed vertices → (B, Vp, 3) posed proxy vertices."""
        corners = sealed_vertices[:, self.proxy_corners]  # (B, Vp, 3, 3)
        return (corners * self.proxy_weights[None, :, :, None]).sum(2)


def hold_contact_zones(model: HandModel, hand_cfg: HandConfig) -> list[Tensor]:
    """ObMan's contact zones of the MANO mesh, one region each (the ids HOLD's stage 2 uses)."""
    if model.name != "mano":
        raise ValueError(
            f"refine.contact_regions 'zones' are vertex ids of the MANO mesh (hand.model=mano); the "
            f"{model.name} hand has its own regions: 'tips', 'pads', 'palm'"
        )
    zones = load_contact_zones(hand_cfg.mano_dir, model.skinning_weights.shape[0])
    return [torch.as_tensor(ids, dtype=torch.long) for ids in zones]


def hand_geometry(model: HandModel, betas: Tensor, cfg: RefineConfig, hand_cfg: HandConfig) -> HandGeometry:
    """Build the proxy mesh, contact regions and canonical SDF grid of a hand for shape ``betas`` (B,)."""
    with torch.no_grad():
        verts, faces = model.sealed_canonical_mesh(betas.float())
    v, f = verts.cpu().numpy().astype(np.float64), faces.cpu().numpy()
    sealed = trimesh.Trimesh(v, f, process=False)
    if cfg.hand_raster_faces and cfg.hand_raster_faces < len(f):
        proxy = decimate(sealed, cfg.hand_raster_faces)
        _, tri, weights = pcu.closest_points_on_mesh(np.asarray(proxy.vertices), v, f.astype(np.int32))
        corners = f[tri]
        proxy_faces = np.asarray(proxy.faces)
    else:  # the sealed mesh itself: each vertex is its own "triangle" with weight 1
        ids = np.arange(len(v))
        corners = np.stack([ids, ids, ids], 1)
        weights = np.tile([1.0, 0.0, 0.0], (len(v), 1))
        proxy_faces = f
    regions = model.contact_vertex_ids()
    by_name = {"tips": list(regions.tips), "pads": list(regions.pads), "palm": [regions.palm]}
    if "zones" in cfg.contact_regions:
        by_name["zones"] = hold_contact_zones(model, hand_cfg)
    contact = [ids for name in cfg.contact_regions for ids in by_name[name] if len(ids)]
    return HandGeometry(
        model=model,
        proxy_faces=torch.as_tensor(proxy_faces, dtype=torch.long),
        proxy_corners=torch.as_tensor(corners, dtype=torch.long),
        proxy_weights=torch.as_tensor(np.clip(weights, 0.0, 1.0), dtype=torch.float32),
        contact_regions=[r.cpu() for r in contact],
        tips=[r.cpu() for r in regions.tips],
        sdf=SDFGrid.around_mesh(v, f, cfg.hand_sdf_grid_resolution, cfg.hand_sdf_padding),
        deformer=HandDeformer(model, hand_cfg),
    )
