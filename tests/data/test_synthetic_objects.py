"""The synthetic generator's object catalogue, user meshes' own colours and the texture levels."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from hold.data.synthetic import SHAPES, generate, make_config
from hold.data.synthetic.config import TextureConfig
from hold.data.synthetic.objects import load_object, sample_surface
from hold.data.synthetic.presets import TEXTURE_LEVELS
from hold.data.synthetic.render import Lighting, RenderMesh, render
from hold.data.synthetic.scene import intrinsics
from hold.data.synthetic.texture import ProceduralAlbedo, UVImageAlbedo, VertexColorAlbedo

FACING_LIGHT = Lighting(np.array([0.0, 0.0, -1.0]), 0.5)  # a surface facing the camera shows its albedo
# Bounding-box sides (metres, sorted) of the shapes added for the benchmark, to within 1.5 mm.
SIDES = {
    "knife": (0.019, 0.03, 0.219),
    "card": (0.003, 0.054, 0.0856),
    "marker": (0.0196, 0.0229, 0.13),
    "die": (0.03, 0.03, 0.03),
    "pear": (0.068, 0.068, 0.112),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_meshes_watertight_and_hand_held(name):
    obj = load_object(name, make_config("tiny"), np.random.default_rng(0))
    mesh = trimesh.Trimesh(obj.vertices, obj.faces, process=False)
    assert mesh.is_watertight and mesh.volume > 0 and mesh.body_count == 1
    assert 0.025 < mesh.extents.max() < 0.25 and np.allclose(mesh.bounds.mean(0), 0, atol=1e-9)
    assert abs(obj.wrap_axis @ obj.approach) < 1e-9
    if name in SIDES:
        assert np.allclose(np.sort(mesh.extents), SIDES[name], atol=0.0015)


def test_at_least_ten_shapes():
    assert len(SHAPES) >= 10 and set(SIDES) <= set(SHAPES)


def test_knife_has_a_thin_blade_and_a_thick_handle():
    obj = load_object("knife", make_config("tiny"), np.random.default_rng(0))
    x, z = obj.vertices[:, 0], obj.vertices[:, 2]
    blade, handle = z[x > 0.04], z[x < -0.04]  # the blade points along +x
    assert 0.002 < np.ptp(blade) < 0.0035 and 0.017 < np.ptp(handle) < 0.021


@pytest.fixture(scope="module")
def die_clip(tmp_path_factory):
    cfg = make_config("tiny", object="die", image_size=(240, 320), num_frames=2)
    return generate(tmp_path_factory.mktemp("die") / "raw", seed=0, cfg=cfg)


def test_small_die_stays_small_in_the_frame(die_clip):
    assert die_clip.grasp_ok
    for path in sorted((die_clip.raw_dir / "synth" / "labels").glob("*.png")):
        rows, cols = np.nonzero(np.asarray(Image.open(path)) == 1)
        assert len(rows) > 0
        assert 10 < max(np.ptp(rows), np.ptp(cols)) + 1 <= 80


def _render_facing(obj, size: int = 64, distance: float = 0.25):
    verts = obj.vertices + [0.0, 0.0, distance]
    K = intrinsics(make_config("tiny", image_size=(size, size)))
    return render([RenderMesh(verts, obj.faces, 1, obj.albedo, obj.vertices)], K, (size, size), FACING_LIGHT)


def test_textured_obj_keeps_its_uv_image(tmp_path):
    """A square with a 2 × 2 texel image: each quadrant of the square shows one texel's colour."""
    texels = np.array([[[220, 20, 20], [20, 220, 20]], [[20, 20, 220], [220, 220, 20]]], np.uint8)
    half = 0.05
    verts = np.array([[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]])
    square = trimesh.Trimesh(verts, [[0, 1, 2], [0, 2, 3]], process=False)
    uv = (verts[:, :2] + half) / (2 * half)  # v up: the image's top row at y > 0
    square.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(texels))
    square.export(tmp_path / "square.obj")
    assert any(tmp_path.glob("*.mtl")) and any(tmp_path.glob("*.png"))
    obj = load_object(str(tmp_path / "square.obj"), make_config("tiny"), np.random.default_rng(0))
    assert isinstance(obj.albedo, UVImageAlbedo)

    points, colors = sample_surface(obj, 2000, np.random.default_rng(1))
    away = (np.abs(points[:, :2]) > 0.002).all(1)  # off the texel borders
    expected = texels[(points[:, 1] < 0).astype(int), (points[:, 0] > 0).astype(int)]
    assert np.array_equal(colors[away], expected[away])

    out = _render_facing(obj)  # the camera's y points down: y > 0 shows in the image's lower half
    on = out.labels == 1
    H, W = on.shape
    for r, c in np.ndindex(2, 2):
        rows = slice(H // 2, H) if r == 0 else slice(0, H // 2)
        cols = slice(0, W // 2) if c == 0 else slice(W // 2, W)
        pixels = out.rgb[rows, cols][on[rows, cols]]
        assert len(pixels) > 50
        assert np.median(np.abs(pixels.astype(int) - texels[r, c]).max(1)) <= 1


def test_ply_keeps_its_vertex_colours(tmp_path):
    box = trimesh.creation.box((0.06, 0.1, 0.04))
    colors = np.random.default_rng(0).integers(0, 256, (len(box.vertices), 3), dtype=np.uint8)
    box.visual.vertex_colors = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], 1)
    box.export(tmp_path / "box.ply")
    obj = load_object(str(tmp_path / "box.ply"), make_config("tiny"), np.random.default_rng(0))
    assert isinstance(obj.albedo, VertexColorAlbedo)
    assert np.allclose(obj.vertices, box.vertices - box.bounds.mean(0))
    assert np.array_equal(obj.vertex_colors(), colors)


def _albedo_samples(name: str, level: str) -> tuple[np.ndarray, TextureConfig]:
    cfg = make_config("tiny", texture_level=level)
    obj = load_object(name, cfg, np.random.default_rng(0))
    assert isinstance(obj.albedo, ProceduralAlbedo)
    _, colors = sample_surface(obj, 4000, np.random.default_rng(1))
    return colors.astype(np.float64) / 255.0, cfg.texture


@pytest.mark.parametrize("name", ["can", "pear"])
def test_texture_levels_lose_contrast_in_order(name):
    spread = {level: _albedo_samples(name, level)[0].std(0).mean() for level in ("rich", "medium", "low")}
    assert spread["rich"] > 1.2 * spread["medium"] > 1.2**2 * spread["low"]


def test_plain_label_is_one_colour_but_for_a_small_textured_label_on_one_side():
    rgb, texture = _albedo_samples("box", "plain_label")
    cfg = make_config("tiny", texture_level="plain_label")
    obj = load_object("box", cfg, np.random.default_rng(0))
    points, _ = sample_surface(obj, 4000, np.random.default_rng(1))
    plain = np.abs(rgb - texture.base_rgb).max(1) < 1e-2
    assert 0.85 < plain.mean() < 0.95  # the label covers ~10 % of the area
    label = ~plain
    assert rgb[label].std(0).mean() > 0.15  # high-contrast print
    # The box's thinnest axis is x: the label sits on one of the two large ±x faces.
    assert len(np.unique(np.sign(points[label, 0]))) == 1


def test_texture_levels_are_config_presets():
    assert make_config("demo", texture_level="rich") == make_config("demo")
    assert make_config("demo").texture == TextureConfig()
    low = make_config("demo", texture_level="low", texture={"saturation": 0.5})
    assert low.texture_level == "low" and low.texture.saturation == 0.5
    assert low.texture.cell_size_m == TEXTURE_LEVELS["low"]["cell_size_m"]
    with pytest.raises(ValueError, match="rich, medium, low, plain_label"):
        make_config("demo", texture_level="glossy")
