"""Volume rendering: Laplace-CDF density, rays, samplers and compositional rendering (DESIGN.md §5)."""

from __future__ import annotations

from hold.render.compositing import (
    BACKGROUND,
    CLASS_NAMES,
    LEFT_HAND,
    NUM_CLASSES,
    OBJECT,
    RIGHT_HAND,
    CompositeRender,
    NodeRender,
    NodeSamples,
    composite,
    render_node,
    volume_weights,
)
from hold.render.config import (
    BoundedSamplerConfig,
    DensityConfig,
    ErrorBoundedSamplerConfig,
    RenderConfig,
    SamplerConfig,
)
from hold.render.density import LaplaceDensity, laplace_density
from hold.render.rays import RayInterval, pixel_grid, pixel_rays, ray_points, sphere_intersection
from hold.render.samplers import (
    BoundedSampler,
    ErrorBoundedSampler,
    RaySamples,
    Sampler,
    SdfFn,
    build_sampler,
    sample_pdf,
    uniform_depths,
)

__all__ = [
    "BACKGROUND",
    "CLASS_NAMES",
    "LEFT_HAND",
    "NUM_CLASSES",
    "OBJECT",
    "RIGHT_HAND",
    "BoundedSampler",
    "BoundedSamplerConfig",
    "CompositeRender",
    "DensityConfig",
    "ErrorBoundedSampler",
    "ErrorBoundedSamplerConfig",
    "LaplaceDensity",
    "NodeRender",
    "NodeSamples",
    "RayInterval",
    "RaySamples",
    "RenderConfig",
    "Sampler",
    "SamplerConfig",
    "SdfFn",
    "build_sampler",
    "composite",
    "laplace_density",
    "pixel_grid",
    "pixel_rays",
    "ray_points",
    "render_node",
    "sample_pdf",
    "sphere_intersection",
    "uniform_depths",
    "volume_weights",
]
