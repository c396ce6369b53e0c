"""HOLD-Net's foreground nodes (HOLD §3.2): an articulated hand and a rigid object, each an SDF field.

Both march rays in the camera frame, in metres, so that their densities can be composited together.
Each node maps observation-space points to its canonical space (hand: inverse LBS with K-nearest
vertex skinning weights; object: the inverse of x_cam = R (s x_can) + t), evaluates its SDF there and
returns SDF values in metres. A canonical SDF gradient has the same norm as the observation-space one
(the maps are rigid, up to LBS blending), so the eikonal term is applied to it directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from torch import Tensor, nn

from hold.config.fields import ColorNetworkConfig
from hold.config.hand import HandConfig
from hold.config.model import HandNodeConfig, ObjectNodeConfig
from hold.config.render import DensityConfig
from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT
from hold.fields.color import ColorNetwork
from hold.fields.sdf import SDFGradientOutput, SDFNetwork
from hold.geometry.camera import ObjectPose
from hold.geometry.mesh import signed_distance
from hold.geometry.surface import sample_surface
from hold.hand.model import HandModel, HandOutput
from hold.hand.skinning import HandDeformer, blend_transforms
from hold.render.compositing import NodeSamples
from hold.render.density import LaplaceDensity
from hold.render.rays import RayInterval, ray_points, sphere_intersection
from hold.render.samplers import SampleQuery, Sampler, SdfFn


@dataclass
class NodeRays:
    """Rays of one step grouped by frame: n frames × r rays each (the sampler's batch layout)."""

    frames: Tensor  # (n,) frame indices
    origins: Tensor  # (n * r, 3)
    directions: Tensor  # (n * r, 3)

    @property
    def rays_per_frame(self) -> int:
        return self.origins.shape[0] // self.frames.shape[0]

    def per_ray(self, per_frame: Tensor) -> Tensor:
        """(n, ...) → (n * r, ...), repeating each frame's value for its rays."""
        return per_frame.repeat_interleave(self.rays_per_frame, dim=0)


@dataclass
class CanonicalTerms:
    """A node's field evaluated at canonical points drawn for the regularisers."""

    sdf: Tensor  # (N,) metres (hand: clamped to ±prior_clamp when set, like target_sdf)
    gradients: Tensor  # (N, 3) SDF gradients (eikonal), taken before any clamp
    target_sdf: Tensor | None = None  # (N,) prior SDF (hand: sealed hand-model mesh)


@dataclass
class SceneTerms:
    """Every node's ``CanonicalTerms``: the hands by side, and the object."""

    hands: dict[str, CanonicalTerms]
    object: CanonicalTerms

    def all(self) -> list[CanonicalTerms]:
        """The hands' (in side order) then the object's."""
        return [*self.hands.values(), self.object]


@dataclass
class NodeEval:
    """A node's contribution to one rendering step."""

    samples: NodeSamples
    far_rays: Tensor  # (R,) bool: rays far from the node's mesh (sparsity)


def needs_normals(color_cfg: ColorNetworkConfig) -> bool:
    """SDF gradients at the samples are needed when the colour network reads them, or for normal maps
    (rendering outside training, where gradients are off)."""
    return color_cfg.use_normals or not torch.is_grad_enabled()


def per_sample(directions: Tensor, samples: int) -> Tensor:
    """(R, 3) ray directions → (R·S, 3), one per sample of each ray."""
    return directions[:, None].expand(-1, samples, -1).reshape(-1, 3)


def ray_point_distance(directions: Tensor, points: Tensor) -> Tensor:
    """Distance from rays through the origin to their nearest point of a set, per frame.

    Args:
        directions: (n, r, 3) unit directions. points: (n, P, 3).

    Returns:
        (n, r) distances.
    """
    along = directions @ points.transpose(1, 2)  # (n, r, P)
    d2 = (points * points).sum(-1)[:, None] - along.clamp_min(0) ** 2
    return d2.clamp_min(0).min(-1).values.sqrt()


def on_rows(rows: Tensor, fn: Callable[..., tuple[Tensor, ...]], *inputs: Tensor) -> tuple[Tensor, ...]:
    """``fn`` on the rows of ``inputs`` (N, …) where ``rows`` (N,) is True; the other rows of each
    output are zero (differentiable through the rows computed)."""
    idx = rows.nonzero()[:, 0]
    if len(idx) == rows.shape[0]:
        return fn(*inputs)
    # No chosen row (no ray hit the node): one row run for the output shapes, none kept.
    outputs = fn(*(x[idx] if len(idx) else x[:1] for x in inputs))
    if not len(idx):
        return tuple(y.new_zeros((rows.shape[0], *y.shape[1:])) for y in outputs)
    return tuple(y.new_zeros((rows.shape[0], *y.shape[1:])).index_copy(0, idx, y) for y in outputs)


@dataclass
class SamplerPass:
    """The sampler's pass over a node: the SDF function it called (a node's own may record what it
    computed) and ``RaySamples.evaluated`` (R, S), or None."""

    sdf_fn: SdfFn
    evaluated: Tensor | None


@dataclass
class Shading:
    """A node's fields at the samples of its rays (R·S of them): SDF (metres), normal and colour."""

    sdf: Tensor  # (R·S,)
    normal: Tensor  # (R·S, 3) camera frame
    rgb: Tensor  # (R·S, 3)


class Node(nn.Module, ABC):
    """What the hand and object nodes share (HOLD §3.2): place samples on each ray with the node's own
    SDF (no gradient), shade them with gradients, and flag the rays far from the node's surface (the
    sparsity term). Subclasses say where the node is (``interval``, ``sampling_sdf``,
    ``surface_points``) and how its fields are evaluated (``shade``)."""

    label: int
    cfg: HandNodeConfig | ObjectNodeConfig
    density: LaplaceDensity

    @abstractmethod
    def interval(self, rays: NodeRays, pose) -> RayInterval:
        """Where each ray crosses the node's bounding sphere in its frame."""

    @abstractmethod
    def sampling_sdf(self, rays: NodeRays, pose, hit: Tensor) -> SdfFn:
        """The SDF of points (n·r, S, 3) on the rays, without gradients, for the sampler; only on the
        rays that ``hit`` (n·r,) the node's bounding sphere (elsewhere any finite value)."""

    @abstractmethod
    def shade(self, points: Tensor, rays: NodeRays, pose, hit: Tensor, sampled: SamplerPass) -> Shading:
        """The fields at camera-frame points (n, r·S, 3), with gradients, on the rays that ``hit`` the
        node (zero elsewhere); ``sampled`` says what the sampler's pass already computed."""

    @abstractmethod
    def surface_points(self, pose) -> Tensor:
        """(n, P, 3) points of the node's posed surface, without gradients."""

    def render_samples(
        self, rays: NodeRays, pose, sampler: Sampler, perturb: bool, generator: torch.Generator | None
    ) -> NodeEval:
        n, r = rays.frames.shape[0], rays.rays_per_frame
        interval = self.interval(rays, pose)
        # Samples on rays that miss the bounding sphere get zero density in compositing: no work there.
        sdf_fn = self.sampling_sdf(rays, pose, interval.hit)
        query = SampleQuery(
            sdf_fn,
            rays.origins,
            rays.directions,
            interval.near,
            interval.far,
            self.density.get_beta().detach(),
        )
        with torch.no_grad():
            samples = sampler(query, perturb, generator)
        z = samples.z
        S = z.shape[1]
        points = ray_points(rays.origins, rays.directions, z).reshape(n, r * S, 3)
        hit = interval.hit[:, None].expand(-1, S).reshape(n, r * S)
        shading = self.shade(points, rays, pose, hit, SamplerPass(sdf_fn, samples.evaluated))
        far = ray_point_distance(rays.directions.reshape(n, r, 3), self.surface_points(pose)).reshape(-1)
        return NodeEval(
            samples=NodeSamples(
                label=self.label,
                z=z,
                sigma=self.density(shading.sdf).reshape(n * r, S),
                rgb=shading.rgb.reshape(n * r, S, 3),
                normal=shading.normal.reshape(n * r, S, 3),
                far=interval.far,
                valid=interval.hit,
            ),
            far_rays=far > self.cfg.sparsity_margin,
        )


class HandNode(Node):
    """Articulated hand: canonical SDF + colour driven by the hand model's skinning.

    Args:
        cfg: node settings. hand_cfg: hand-model settings (skinning K, σ, validity radius).
        density_cfg: initial β. hand_model: the side's hand model. betas: (B,) initial shape, defines the
            canonical mesh used for normalisation and the SDF prior.
    """

    def __init__(
        self,
        cfg: HandNodeConfig,
        hand_cfg: HandConfig,
        density_cfg: DensityConfig,
        hand_model: HandModel,
        betas: Tensor,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.label = LABEL_RIGHT if hand_model.side == "right" else LABEL_LEFT
        self.hand_model = hand_model.requires_grad_(False)
        self.deformer = HandDeformer(hand_model, hand_cfg)
        self.sdf_net = SDFNetwork(cfg.sdf)
        self.color_net = ColorNetwork(cfg.color, cfg.sdf.feature_dim)
        self.density = LaplaceDensity(density_cfg)
        with torch.no_grad():
            verts, faces = hand_model.sealed_canonical_mesh(betas)
        lo, hi = verts.min(0).values, verts.max(0).values
        centre = (lo + hi) / 2
        self.register_buffer("centre", centre)
        self.register_buffer("radius", (verts - centre).norm(dim=1).max())
        points, target = self._prior_bank(verts.numpy(), faces.numpy(), seed)
        self.register_buffer("prior_points", points)
        self.register_buffer("prior_sdf", target)

    def _prior_bank(self, verts: np.ndarray, faces: np.ndarray, seed: int) -> tuple[Tensor, Tensor]:
        """Canonical points with their signed distance to the sealed hand mesh (HOLD L_prior targets),
        Loop-subdivided ``prior_subdivisions`` times first."""
        cfg = self.cfg
        if cfg.prior_subdivisions:
            verts, faces = trimesh.remesh.subdivide_loop(verts, faces, iterations=cfg.prior_subdivisions)
        rng = np.random.default_rng(seed)
        n_uniform = int(cfg.prior_bank_size * cfg.prior_uniform_fraction)
        n_surface = cfg.prior_bank_size - n_uniform
        surface = sample_surface(trimesh.Trimesh(verts, faces, process=False), n_surface, seed, "sealed hand")
        surface = surface + rng.normal(scale=cfg.prior_near_surface_std, size=surface.shape)
        lo, hi = verts.min(0), verts.max(0)
        pad = cfg.prior_box_padding * (hi - lo)
        uniform = rng.uniform(lo - pad, hi + pad, size=(n_uniform, 3))
        points = np.concatenate([surface, uniform]).astype(np.float32)
        target = signed_distance(points, verts, faces).astype(np.float32)
        return torch.from_numpy(points), torch.from_numpy(target)

    def _normalise(self, x_can: Tensor) -> Tensor:
        return (x_can - self.centre) / self.radius

    def canonical_sdf(self, x_can: Tensor) -> Tensor:
        """(N, 3) canonical points → (N,) SDF in metres."""
        return self.sdf_net.sdf(self._normalise(x_can))[:, 0] * self.radius

    def canonical_sdf_and_gradient(self, x_can: Tensor, create_graph: bool) -> SDFGradientOutput:
        out = self.sdf_net.sdf_and_gradient(self._normalise(x_can), create_graph=create_graph)
        # d/dx [r f((x − c)/r)] = ∇f: the gradient is unchanged by the normalisation.
        return SDFGradientOutput(out.sdf * self.radius, out.feature, out.gradient)

    def canonical_terms(self, generator: torch.Generator) -> CanonicalTerms:
        """SDF, its target and its gradient at a random subset of the prior bank (L_prior, eikonal).

        The bank holds points near the sealed hand surface and in its bounding box, which is also
        where the eikonal term matters, so one evaluation serves both.
        """
        idx = torch.randint(
            0, self.prior_points.shape[0], (self.cfg.prior_points_per_step,), generator=generator
        ).to(self.prior_points.device)
        out = self.canonical_sdf_and_gradient(self.prior_points[idx], create_graph=torch.is_grad_enabled())
        sdf, target = out.sdf[:, 0], self.prior_sdf[idx]
        if self.cfg.prior_clamp > 0:  # HOLD clamps both sides before the L1
            limit = self.cfg.prior_clamp
            sdf, target = sdf.clamp(-limit, limit), target.clamp(-limit, limit)
        return CanonicalTerms(sdf=sdf, target_sdf=target, gradients=out.gradient)

    def bounding_sphere(self, posed: HandOutput) -> tuple[Tensor, Tensor]:
        """Per-frame centre (n, 3) and radius (n,) of the posed mesh plus the margin."""
        centre = posed.vertices.mean(1)
        radius = (posed.vertices - centre[:, None]).norm(dim=-1).max(1).values + self.cfg.sphere_margin
        return centre, radius

    def interval(self, rays: NodeRays, posed: HandOutput) -> RayInterval:
        centre, radius = self.bounding_sphere(posed)
        return sphere_intersection(rays.origins, rays.directions, rays.per_ray(centre), rays.per_ray(radius))

    def sampling_sdf(self, rays: NodeRays, posed: HandOutput, hit: Tensor) -> _HandSamplingSdf:
        return _HandSamplingSdf(self, rays, posed, hit)

    def shade(
        self, points: Tensor, rays: NodeRays, posed: HandOutput, hit: Tensor, sampled: SamplerPass
    ) -> Shading:
        warp = self.deformer.to_canonical(points, posed, self._known_neighbours(sampled, hit))
        x_can = warp.points.reshape(-1, 3)
        view = per_sample(rays.directions, points.shape[1] // rays.rays_per_frame)

        def fields(x: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            if needs_normals(self.cfg.color):
                # By default normals only feed the colour network and normal maps: no double backward
                # (the costliest part of a step); the eikonal term uses ``canonical_terms`` instead.
                out = self.canonical_sdf_and_gradient(x, create_graph=self.cfg.color.normals_create_graph)
            else:
                sdf_out = self.sdf_net(self._normalise(x))
                out = SDFGradientOutput(sdf_out.sdf * self.radius, sdf_out.feature, torch.zeros_like(x))
            return (
                out.sdf[:, 0],
                out.gradient,
                self.color_net(self._normalise(x), out.gradient, v, out.feature),
            )

        field_sdf, gradient, rgb = on_rows(hit.reshape(-1), fields, x_can, view)
        sdf = torch.where(warp.valid.reshape(-1), field_sdf, warp.distance.reshape(-1))
        blend = blend_transforms(warp.weights, posed.bone_transforms)[..., :3].reshape(-1, 3, 3)
        normal = torch.nn.functional.normalize((blend @ gradient[..., None])[..., 0], dim=-1)
        return Shading(sdf, normal, rgb)

    def _known_neighbours(self, sampled: SamplerPass, hit: Tensor) -> Tensor:
        """(n, r·S, k) nearest-vertex indices known before the search: those the sampler's first SDF
        call found at the rendered depths it evaluated (the same posed vertices, so the same indices),
        any vertex on rays that miss the node (nothing there is rendered); −1 rows elsewhere."""
        k = self.deformer.k
        known = torch.where(hit, -1, 0)[..., None].expand(-1, -1, k)
        first = getattr(sampled.sdf_fn, "neighbours", None)
        if first is None or sampled.evaluated is None:
            return known
        evaluated = sampled.evaluated  # (n·r, S)
        per_ray = first.reshape(evaluated.shape[0], -1, k)
        found = per_ray.gather(1, evaluated.clamp_min(0)[..., None].expand(-1, -1, k)).reshape(known.shape)
        return torch.where((evaluated >= 0).reshape(hit.shape)[..., None], found, known)

    def surface_points(self, posed: HandOutput) -> Tensor:
        return posed.vertices.detach()


class _HandSamplingSdf:
    """The hand's SDF at posed points (n·r, S, 3) for the sampler, without gradients. Keeps the
    nearest-vertex indices of its first call, which the rendering pass reuses (``HandNode.shade``)."""

    def __init__(self, node: HandNode, rays: NodeRays, posed: HandOutput, hit: Tensor) -> None:
        self.node = node
        self.n, self.r = rays.frames.shape[0], rays.rays_per_frame
        self.hit = hit
        self.posed = HandOutput(
            *(t.detach() for t in (posed.vertices, posed.keypoints, posed.bone_transforms))
        )
        self.neighbours: Tensor | None = None

    def __call__(self, points: Tensor) -> Tensor:
        S = points.shape[1]
        hit = self.hit[:, None].expand(-1, S).reshape(self.n, self.r * S)
        skip = torch.where(hit, -1, 0)[..., None].expand(-1, -1, self.node.deformer.k)  # any vertex
        warp = self.node.deformer.to_canonical(points.reshape(self.n, self.r * S, 3), self.posed, skip)
        if self.neighbours is None:
            self.neighbours = warp.neighbours
        # Far from the mesh the skinning weights are meaningless and the vertex distance bounds |sdf|:
        # the network runs only where its value is used (about half of the samples in the hand's
        # bounding sphere lie farther than skinning_max_dist from every vertex).
        use = (hit & warp.valid).reshape(-1)
        sdf = on_rows(use, lambda x: (self.node.canonical_sdf(x),), warp.points.reshape(-1, 3))[0]
        return torch.where(warp.valid, sdf.reshape(hit.shape), warp.distance).reshape(self.n * self.r, S)


class ObjectNode(Node):
    """Rigid object: canonical SDF + colour with a per-frame code; x_can = (s R)⁻¹ (x_cam − t).

    Args:
        cfg: node settings. density_cfg: initial β. num_frames: T (rows of the code table).
        surface_points: (P, 3) canonical points standing in for the object mesh until one is extracted
            (used to find rays far from the object).
    """

    def __init__(
        self, cfg: ObjectNodeConfig, density_cfg: DensityConfig, num_frames: int, surface_points: Tensor
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.label = LABEL_OBJECT
        self.sdf_net = SDFNetwork(cfg.sdf)
        self.color_net = ColorNetwork(cfg.color, cfg.sdf.feature_dim)
        self.density = LaplaceDensity(density_cfg)
        self.latents = nn.Embedding(num_frames, cfg.color.latent_dim)
        nn.init.zeros_(self.latents.weight)
        self.register_buffer("mesh_vertices", surface_points.float().clone())

    def set_mesh_vertices(self, vertices: Tensor) -> None:
        """Replace the canonical vertices used for the sparsity term (after a periodic mesh extraction)."""
        self.mesh_vertices = vertices.to(self.mesh_vertices)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # The periodic meshing changes the number of vertices: take the saved count, so that any
        # checkpoint (a resumed run's last.ckpt, a stage's model.pt) loads into a fresh model.
        saved = state_dict.get(prefix + "mesh_vertices")
        if saved is not None and saved.shape != self.mesh_vertices.shape:
            self.mesh_vertices = self.mesh_vertices.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def canonical_sdf(self, x_can: Tensor) -> Tensor:
        """(N, 3) canonical points → (N,) SDF in canonical units (metres / scale)."""
        return self.sdf_net.sdf(x_can)[:, 0]

    def canonical_terms(self, generator: torch.Generator) -> CanonicalTerms:
        """SDF gradients for the eikonal term at points uniform in the bounding ball and near the mesh."""
        cfg = self.cfg
        n_uniform = cfg.eikonal_points // 2
        device = self.mesh_vertices.device
        radius = cfg.sphere_radius + cfg.sphere_margin
        direction = torch.nn.functional.normalize(torch.randn(n_uniform, 3, generator=generator), dim=-1)
        uniform = direction * radius * torch.rand(n_uniform, 1, generator=generator) ** (1 / 3)
        idx = torch.randint(
            0, self.mesh_vertices.shape[0], (cfg.eikonal_points - n_uniform,), generator=generator
        )
        noise = cfg.eikonal_surface_std * torch.randn(len(idx), 3, generator=generator)
        # drawn on the CPU (the generator's device), indexed on the vertices' device: no copy back
        near = self.mesh_vertices[idx.to(device)] + noise.to(device)
        points = torch.cat([uniform.to(device), near])
        out = self.sdf_net.sdf_and_gradient(points, create_graph=torch.is_grad_enabled())
        return CanonicalTerms(sdf=out.sdf[:, 0], gradients=out.gradient)

    def interval(self, rays: NodeRays, pose: ObjectPose) -> RayInterval:
        radius = pose.s.detach() * (self.cfg.sphere_radius + self.cfg.sphere_margin)
        return sphere_intersection(rays.origins, rays.directions, rays.per_ray(pose.t.detach()), radius)

    def sampling_sdf(self, rays: NodeRays, pose: ObjectPose, hit: Tensor) -> SdfFn:
        n, r = rays.frames.shape[0], rays.rays_per_frame
        fixed = pose.detach()

        def sdf_fn(points: Tensor) -> Tensor:
            S = points.shape[1]
            x = fixed.to_canonical(points.reshape(n, r * S, 3)).reshape(-1, 3)
            rows = hit[:, None].expand(-1, S).reshape(-1)
            return (on_rows(rows, lambda x: (self.canonical_sdf(x),), x)[0] * fixed.s).reshape(n * r, S)

        return sdf_fn

    def shade(
        self, points: Tensor, rays: NodeRays, pose: ObjectPose, hit: Tensor, sampled: SamplerPass
    ) -> Shading:
        n, M = points.shape[:2]
        x_can = pose.to_canonical(points).reshape(-1, 3)
        view = per_sample(rays.directions, M // rays.rays_per_frame)
        latent = self.latents(rays.frames)[:, None].expand(n, M, -1).reshape(n * M, -1)

        def fields(x: Tensor, v: Tensor, code: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            if needs_normals(self.cfg.color):  # as for the hand
                out = self.sdf_net.sdf_and_gradient(x, create_graph=self.cfg.color.normals_create_graph)
            else:
                out = SDFGradientOutput(*self.sdf_net(x), torch.zeros_like(x))
            return out.sdf[:, 0], out.gradient, self.color_net(x, out.gradient, v, out.feature, code)

        sdf, gradient, rgb = on_rows(hit.reshape(-1), fields, x_can, view, latent)
        R_per_point = pose.R[:, None].expand(n, M, 3, 3).reshape(-1, 3, 3)
        normal = torch.nn.functional.normalize((R_per_point @ gradient[..., None])[..., 0], dim=-1)
        return Shading(sdf * pose.s, normal, rgb)

    def surface_points(self, pose: ObjectPose) -> Tensor:
        return pose.detach().to_camera(self.mesh_vertices)
