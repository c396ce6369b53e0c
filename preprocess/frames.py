"""Step ``frames``: a video (mp4/mov/… through imageio-ffmpeg) or an image folder → numbered PNGs.

Output ``work/frames/``: ``00000.png …`` and ``frames.json`` (a ``FramesInfo``): which input frames were
kept (stride, maximum count), the resize factors (applied later to imported masks, 2D keypoints and
camera.json) and the intrinsics from camera.json, rescaled, when the RAW dir has one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from hold.utils.io import write_json, write_png
from hold.utils.logging import get_logger
from preprocess.config import FramesConfig
from preprocess.errors import PreprocessError

STEP = "frames"
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_NUMBER = re.compile(r"(\d+)")
log = get_logger("preprocess.frames")


@dataclass
class FramesInfo:
    """What step ``frames`` did; read by every later step (``frames.json``).

    Attributes:
        num_frames: T, frames written.
        image_size: (H, W) of the written frames.
        input_size: (H, W) of the input frames.
        num_input_frames: frames in the input (before stride / maximum count).
        source_indices: (T,) input index of each written frame.
        source: the video file or the image folder.
        fps: frame rate of the input video (after the stride), None for an image folder.
        K: (3, 3) intrinsics from RAW/camera.json rescaled to ``image_size``, or None.
    """

    num_frames: int
    image_size: tuple[int, int]
    input_size: tuple[int, int]
    num_input_frames: int
    source_indices: list[int]
    source: str
    fps: float | None = None
    K: list[list[float]] | None = None

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): output / input pixel size ratio along x and y."""
        return self.image_size[1] / self.input_size[1], self.image_size[0] / self.input_size[0]

    def map_pixels(self, uv: np.ndarray) -> np.ndarray:
        """Input pixel coordinates (..., 2) → output pixel coordinates (pixel centres at integers)."""
        sx, sy = self.scale
        out = np.array(uv, dtype=np.float64, copy=True)
        out[..., 0] = (out[..., 0] + 0.5) * sx - 0.5
        out[..., 1] = (out[..., 1] + 0.5) * sy - 0.5
        return out

    def intrinsics(self) -> np.ndarray | None:
        return None if self.K is None else np.asarray(self.K, np.float64)

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> FramesInfo:
        data = json.loads(Path(path).read_text())
        data["image_size"], data["input_size"] = tuple(data["image_size"]), tuple(data["input_size"])
        return cls(**data)


def default_intrinsics(image_size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """(3, 3) pinhole intrinsics with a horizontal field of view, principal point at the centre."""
    H, W = image_size
    f = 0.5 * W / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])


def find_input(raw: Path) -> tuple[str, Path]:
    """``("images", RAW/frames)`` or ``("video", RAW/video.*)``; raises when neither is there."""
    folder = raw / "frames"
    if folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir()):
        return "images", folder
    videos = sorted(p for p in raw.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    named = [p for p in videos if p.stem == "video"]
    if named or len(videos) == 1:
        return "video", (named or videos)[0]
    if len(videos) > 1:
        raise PreprocessError(
            STEP,
            f"several videos ({', '.join(p.name for p in videos)}); name the one to use video.<ext>",
            raw,
        )
    raise PreprocessError(
        STEP, f"no input: expected frames/*.png|*.jpg or video.mp4 ({'/'.join(VIDEO_EXTENSIONS)})", raw
    )


def _iter_images(folder: Path) -> Iterator[np.ndarray]:
    for path in image_files(folder):
        try:
            with Image.open(path) as im:
                yield np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise PreprocessError(STEP, f"unreadable image ({e})", path) from None


def image_files(folder: Path) -> list[Path]:
    """Image files of a folder in numeric order of the first number in their names (else by name)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]

    def key(p: Path) -> tuple[int, str]:
        m = _NUMBER.search(p.stem)
        return (int(m.group(1)) if m else -1, p.name)

    return sorted(files, key=key)


def _iter_video(path: Path) -> Iterator[np.ndarray]:
    import imageio.v3 as iio

    try:
        for frame in iio.imiter(path, plugin="FFMPEG"):
            yield np.asarray(frame)[..., :3]
    except (OSError, RuntimeError, ValueError, StopIteration) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PreprocessError(
            STEP, f"unreadable video ({first}); is it a valid mp4/mov file?", path
        ) from None


def _video_fps(path: Path) -> float | None:
    import imageio.v3 as iio

    try:
        fps = iio.immeta(path, plugin="FFMPEG").get("fps")
    except (OSError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PreprocessError(
            STEP, f"unreadable video ({first}); is it a valid mp4/mov file?", path
        ) from None
    return float(fps) if fps and np.isfinite(fps) else None


def _output_size(size: tuple[int, int], max_size: int) -> tuple[int, int]:
    H, W = size
    if max_size <= 0 or max(H, W) <= max_size:
        return H, W
    s = max_size / max(H, W)
    return max(1, round(H * s)), max(1, round(W * s))


def read_camera(raw: Path) -> np.ndarray | None:
    """(3, 3) intrinsics from RAW/camera.json in input pixels, or None when there is no file."""
    path = raw / "camera.json"
    if not path.exists():
        return None
    try:
        cam = json.loads(path.read_text())
        fx, fy, cx, cy = (float(cam[k]) for k in ("fx", "fy", "cx", "cy"))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise PreprocessError(STEP, f'expected {{"fx", "fy", "cx", "cy"}} numbers ({e!r})', path) from None
    if not (fx > 0 and fy > 0 and np.isfinite([fx, fy, cx, cy]).all()):
        raise PreprocessError(
            STEP, f"focal lengths must be positive and finite, found fx={fx}, fy={fy}", path
        )
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def run_frames(raw: Path, out: Path, cfg: FramesConfig) -> FramesInfo:
    """Decode the RAW input, keep every ``stride``-th frame, resize, write PNGs and ``frames.json``.

    Raises:
        PreprocessError: no input, an unreadable video or image, images of different sizes.
    """
    if cfg.stride < 1:
        raise PreprocessError(STEP, f"frames.stride must be ≥ 1, found {cfg.stride}")
    kind, source = find_input(raw)
    fps = _video_fps(source) if kind == "video" else None
    frames = _iter_video(source) if kind == "video" else _iter_images(source)
    kept: list[int] = []
    input_size = out_size = None
    n_in = 0
    for i, frame in enumerate(tqdm(frames, desc="frames", unit="frame", disable=None)):
        n_in += 1
        size = frame.shape[:2]
        if input_size is None:
            input_size, out_size = size, _output_size(size, cfg.max_size)
        elif size != input_size:
            raise PreprocessError(STEP, f"frame {i} has size {size}, the first frame {input_size}", source)
        if i % cfg.stride or (cfg.max_frames and len(kept) >= cfg.max_frames):
            continue
        if out_size != input_size:
            frame = np.asarray(Image.fromarray(frame).resize(out_size[::-1], Image.Resampling.LANCZOS))
        write_png(out / f"{len(kept):05d}.png", np.ascontiguousarray(frame, dtype=np.uint8))
        kept.append(i)
    if not kept:
        raise PreprocessError(STEP, "no frames could be decoded", source)
    info = FramesInfo(
        num_frames=len(kept),
        image_size=out_size,
        input_size=input_size,
        num_input_frames=n_in,
        source_indices=kept,
        source=str(source),
        fps=None if fps is None else fps / cfg.stride,
    )
    K = read_camera(raw)
    if K is not None:
        H, W = input_size
        if not (0 <= K[0, 2] < W and 0 <= K[1, 2] < H):
            raise PreprocessError(
                STEP,
                f"principal point (cx, cy) = ({K[0, 2]}, {K[1, 2]}) lies outside the {W}x{H} frames",
                raw / "camera.json",
            )
        sx, sy = info.scale
        K[0, 0], K[1, 1] = K[0, 0] * sx, K[1, 1] * sy
        K[0, 2], K[1, 2] = (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5
        info.K = K.tolist()
    info.save(out / "frames.json")
    log.info(
        "%d of %d input frames from %s, %dx%d px%s",
        info.num_frames,
        n_in,
        source.name,
        out_size[1],
        out_size[0],
        "" if K is None else ", intrinsics from camera.json",
    )
    return info


def load_frame(frames_dir: Path, t: int) -> np.ndarray:
    """RGB frame t of a ``work/frames`` dir, uint8 (H, W, 3)."""
    with Image.open(frames_dir / f"{t:05d}.png") as im:
        return np.asarray(im.convert("RGB"))
