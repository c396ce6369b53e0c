"""kaolin (DIB-R) backend of the silhouette rasteriser: same inputs and output as ``soft_silhouette``.

kaolin works in OpenGL conventions: the camera looks down −z, image coordinates are normalised to
[−1, 1] with y up. Silhouettes need no depth order, so every face is drawn (``face_normals_z`` = 1)
and the soft mask of DIB-R (Chen et al., NeurIPS 2019) is returned. Needs a CUDA device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hold.config.refine import SoftRasterConfig
from hold.geometry.camera import project
from hold.utils.external import require


def kaolin_silhouette(
    vertices: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int], cfg: SoftRasterConfig
) -> Tensor:
    """Soft silhouettes (B, H, W) of meshes (B, V, 3) in the OpenCV camera frame, via kaolin's DIB-R."""
    kal = require("kaolin", "silhouette rasteriser with backend=kaolin")
    H, W = image_size
    uv = project(vertices, K, cfg.near)  # pixels, x right, y down
    ndc = torch.stack([uv[..., 0] / W * 2 - 1, 1 - uv[..., 1] / H * 2], -1)
    face_image = ndc[:, faces]  # (B, F, 3, 2)
    face_z = -vertices[..., 2][:, faces]  # OpenGL: points in front of the camera have z < 0
    features = torch.ones_like(face_z)[..., None]
    normals_z = torch.ones(face_z.shape[:2], dtype=vertices.dtype, device=vertices.device)
    _, soft_mask, _ = kal.render.mesh.dibr_rasterization(
        H,
        W,
        face_z,
        face_image,
        features,
        normals_z,
        sigmainv=cfg.kaolin_sigmainv,
        boxlen=cfg.kaolin_boxlen,
        knum=cfg.kaolin_knum,
    )
    # kaolin's row i is at y = 1 − (2i + 1) / H: the top row first, as ours (pixel centres agree too).
    return soft_mask
