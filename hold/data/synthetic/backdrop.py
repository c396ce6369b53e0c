"""A photographic-looking backdrop for the wall behind the scene (``background_style: photo``).

A desk or lab behind a tripod is not a field of pale cells: it has a few large coloured things with
soft edges (books, boxes, a monitor), a table edge with wood grain, light that falls off across the
room, and sensor grain. Background subtraction must cope with exactly that, so the generator can
paint it. Everything is drawn from the given generator: a seed fixes every texel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hold.data.synthetic.texture import hsv_to_rgb


def _colour(h: float, s: float, v: float) -> np.ndarray:
    return hsv_to_rgb(np.array([[h, s, v]]))[0]


_THINGS = (7, 12)  # range of the number of coloured rectangles (things on shelves, frames, boxes)
_THING_SIZE = (0.08, 0.35)  # their side, as a fraction of the backdrop
_TABLE_TOP = (0.62, 0.75)  # where the table edge lies, fraction of the height from the top
_GRAIN = 0.015  # amplitude of the per-texel sensor grain
_EDGE_BLUR = 1.5  # Gaussian sigma (texels) softening every edge, as a lens does


def fbm(rng: np.random.Generator, size: int, octaves: int = 5, base: int = 4) -> np.ndarray:
    """(size, size) fractal noise in [0, 1]: ``octaves`` bilinearly upsampled random grids, each twice
    as fine and half as strong as the one before."""
    out = np.zeros((size, size))
    for k in range(octaves):
        cells = base * 2**k
        grid = rng.random((cells + 1, cells + 1))
        out += 0.5**k * ndimage.zoom(grid, size / (cells + 1), order=1)[:size, :size]
    out -= out.min()
    return out / max(out.max(), 1e-12)


def photo_backdrop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) float32 albedo image in [0, 1] that reads like a photograph of a room corner.

    Args:
        rng: random generator (the ``background`` stream).
        size: texels per side.
    """
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size
    wall_hue = rng.uniform(0, 1)
    wall = _colour(wall_hue, rng.uniform(0.05, 0.2), rng.uniform(0.6, 0.8))
    img = np.broadcast_to(wall, (size, size, 3)).copy()
    img *= (0.9 + 0.2 * fbm(rng, size, octaves=3, base=2))[..., None]  # uneven paint and light
    for _ in range(rng.integers(*_THINGS, endpoint=True)):
        w, h = rng.uniform(*_THING_SIZE, 2)
        x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, _TABLE_TOP[0] - h * 0.5)
        inside = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        colour = _colour(rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.9))
        shade = 0.85 + 0.3 * ((yy - y0) / h)  # lit from above: darker towards the bottom of each thing
        img[inside] = colour * np.clip(shade[inside], 0.7, 1.15)[:, None]
    top = rng.uniform(*_TABLE_TOP)
    table = yy >= top
    wood = _colour(rng.uniform(0.05, 0.11), rng.uniform(0.4, 0.6), rng.uniform(0.45, 0.7))
    warp = fbm(rng, size, octaves=4, base=3)
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (28 * yy + 6 * warp))  # wood rings, bent by the noise
    img[table] = wood * (0.8 + 0.25 * grain[table])[:, None]
    img[np.abs(yy - top) < 0.006] *= 0.55  # the table's front edge casts a thin dark line
    img *= (0.85 + 0.15 * fbm(rng, size, octaves=5, base=4))[..., None]  # dirt, wear, texture
    falloff = 1.0 - 0.25 * ((xx - rng.uniform(0.2, 0.8)) ** 2 + (yy - rng.uniform(0.1, 0.5)) ** 2)
    img *= falloff[..., None]
    img = ndimage.gaussian_filter(img, sigma=(_EDGE_BLUR, _EDGE_BLUR, 0))
    img += _GRAIN * rng.standard_normal(img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
