from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hold.utils.io import write_png
from preprocess.config import FramesConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, default_intrinsics, run_frames


def _image_raw(root: Path, n: int = 7, size: tuple[int, int] = (40, 60)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]
    for i, f in enumerate(frames):
        write_png(root / "frames" / f"{i:05d}.png", f)
    return frames


def test_image_folder_stride_limit_and_resize(tmp_path: Path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _image_raw(raw)
    (raw / "camera.json").write_text(json.dumps({"fx": 50.0, "fy": 50.0, "cx": 29.5, "cy": 19.5}))
    info = run_frames(raw, out, FramesConfig(stride=2, max_frames=3, max_size=30))
    assert info.source_indices == [0, 2, 4] and info.num_input_frames == 7
    assert info.image_size == (20, 30) and info.input_size == (40, 60)
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    assert Image.open(out / "00002.png").size == (30, 20)
    K = info.intrinsics()
    np.testing.assert_allclose(K, [[25.0, 0, 14.5], [0, 25.0, 9.5], [0, 0, 1]])  # centre stays the centre
    # pixel centres map consistently: the input's corner pixel centres → the output's
    np.testing.assert_allclose(
        info.map_pixels(np.array([[-0.5, -0.5], [59.5, 39.5]])), [[-0.5, -0.5], [29.5, 19.5]]
    )
    assert FramesInfo.load(out / "frames.json") == info


def test_video_is_decoded(tmp_path: Path):
    import imageio.v3 as iio

    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    frames = np.zeros((6, 32, 48, 3), np.uint8)
    for i in range(6):
        frames[i, :, i * 8 : i * 8 + 8] = 255  # a moving bar survives H.264
    iio.imwrite(raw / "video.mp4", frames, plugin="FFMPEG", fps=12)
    info = run_frames(raw, out, FramesConfig(stride=3))
    assert info.num_input_frames == 6 and info.source_indices == [0, 3]
    assert info.fps == pytest.approx(4.0) and info.image_size == (32, 48)
    second = np.asarray(Image.open(out / "00001.png"))
    assert second[:, 24:32].mean() > 200 and second[:, :16].mean() < 50


def test_unreadable_video_is_a_clear_error(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "video.mov").write_bytes(b"not a video" * 100)
    with pytest.raises(PreprocessError, match=r"frames: .*video.mov: unreadable video"):
        run_frames(raw, tmp_path / "out", FramesConfig())


def test_missing_input_is_a_clear_error(tmp_path: Path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(PreprocessError, match="no input"):
        run_frames(tmp_path / "raw", tmp_path / "out", FramesConfig())


def test_default_intrinsics_field_of_view():
    K = default_intrinsics((100, 200), 90.0)
    assert K[0, 0] == pytest.approx(100.0) and K[0, 2] == pytest.approx(99.5)


def test_a_principal_point_outside_the_frames_is_an_error(tmp_path: Path):
    _image_raw(tmp_path)
    (tmp_path / "camera.json").write_text(json.dumps({"fx": 50, "fy": 50, "cx": 75.0, "cy": 20.0}))
    with pytest.raises(PreprocessError, match=r"camera.json: principal point .* outside the 60x40 frames"):
        run_frames(tmp_path, tmp_path / "out", FramesConfig())
