"""Segment-anything backend of step ``masks``: first-frame prompts, propagated through the video.

Prompts file (``masks.sam.prompts``, default RAW/prompts.json; format in ``preprocess.prompts``),
frame-0 prompts only, e.g. ``{"object": {"box": [x0, y0, x1, y1]}, "right": {"points": [[x, y]]}}``.
Frame 0 is segmented from these prompts; every later frame is prompted from the previous frame's mask of the same target: its box (enlarged by ``box_margin``), positive
points at its interior maxima and its low-resolution logits (like HOLD's SAM-based tracking, without
a separate tracker). Nothing is downloaded: the checkpoint is the user's file.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT
from hold.utils.external import require, resolve_device
from hold.utils.logging import get_logger
from preprocess.config import SamConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, load_frame
from preprocess.prompts import Prompt, read_prompts

STEP = "masks"
TARGETS = {"object": LABEL_OBJECT, "right": LABEL_RIGHT, "left": LABEL_LEFT}
CHECKPOINT_HELP = (
    "download one from https://github.com/facebookresearch/segment-anything#model-checkpoints "
    "(e.g. sam_vit_h_4b8939.pth), put it anywhere (e.g. ~/.cache/hold/sam/) and pass "
    "masks.sam.checkpoint=/path/to/sam_vit_h_4b8939.pth"
)
log = get_logger("preprocess.sam")


def import_segment_anything() -> types.ModuleType:
    """Import ``segment_anything`` with a temporary torchvision shim.

    segment-anything imports two torchvision image functions (its predictor's resize) and two box
    ops (only used by its automatic mask generator, which we do not use). torchvision cannot be
    installed beside the CPU torch here, so when it is missing we register a minimal stand-in for
    the import and remove it afterwards, leaving ``sys.modules`` as it was.

    Raises:
        PreprocessError: segment-anything is not installed.
    """
    try:
        import torchvision  # noqa: F401

        shim = False
    except Exception:  # missing, or a broken CUDA-linked wheel
        shim = True
    names = (
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.functional",
        "torchvision.ops",
        "torchvision.ops.boxes",
    )
    saved = {n: sys.modules.get(n) for n in names}
    if shim:
        _install_shim(names)
    try:
        return require("segment_anything", "masks.backend=sam", "Or use masks.backend=import or static.")
    except ImportError as e:
        raise PreprocessError(STEP, str(e)) from None
    finally:
        if shim:
            for n, mod in saved.items():
                if mod is None:
                    sys.modules.pop(n, None)
                else:
                    sys.modules[n] = mod


def _install_shim(names: tuple[str, ...]) -> None:
    from PIL import Image

    def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
        return image.resize((size[1], size[0]), Image.Resampling.BILINEAR)

    def to_pil_image(array: np.ndarray) -> Image.Image:
        return Image.fromarray(np.asarray(array))

    def unavailable(*args: object, **kwargs: object) -> None:
        raise NotImplementedError("torchvision box ops are not available (torchvision shim)")

    mods = {n: types.ModuleType(n) for n in names}
    mods["torchvision.transforms.functional"].resize = resize
    mods["torchvision.transforms.functional"].to_pil_image = to_pil_image
    mods["torchvision.ops.boxes"].batched_nms = unavailable
    mods["torchvision.ops.boxes"].box_area = unavailable
    mods["torchvision"].transforms, mods["torchvision"].ops = (
        mods["torchvision.transforms"],
        mods["torchvision.ops"],
    )
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
    sys.modules.update(mods)


def load_predictor(cfg: SamConfig, device: str):  # -> segment_anything.SamPredictor
    """A ``SamPredictor`` for the user's checkpoint.

    Raises:
        PreprocessError: no checkpoint given, a missing file, an unknown backbone or a bad file.
    """
    if not cfg.checkpoint:
        raise PreprocessError(
            STEP, f"masks.backend=sam needs a segment-anything checkpoint: {CHECKPOINT_HELP}"
        )
    path = Path(cfg.checkpoint).expanduser()
    if not path.is_file():
        raise PreprocessError(STEP, f"checkpoint not found; {CHECKPOINT_HELP}", path)
    model_type = cfg.model_type
    if model_type == "auto":
        found = [m for m in ("vit_h", "vit_l", "vit_b") if m in path.name]
        if len(found) != 1:
            raise PreprocessError(
                STEP,
                "cannot tell the backbone from the file name; set masks.sam.model_type=vit_h|vit_l|vit_b",
                path,
            )
        model_type = found[0]
    sa = import_segment_anything()
    import torch

    model = sa.sam_model_registry[model_type](checkpoint=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # torch raises many types for a wrong or corrupt file
        raise PreprocessError(
            STEP, f"not a {model_type} segment-anything checkpoint ({type(e).__name__}: {str(e)[:200]})", path
        ) from None
    model.to(resolve_device(device if cfg.device == "auto" else cfg.device)).eval()
    return sa.SamPredictor(model)


def first_frame_prompts(path: Path, info: FramesInfo) -> dict[str, Prompt]:
    """The prompts file's frame-0 prompts (this backend propagates from frame 0 only).

    Raises:
        PreprocessError: a missing or malformed file, no object prompt, prompts on later frames.
    """
    if not path.is_file():
        raise PreprocessError(
            STEP, 'masks.backend=sam needs first-frame prompts, e.g. {"object": {"box": [x0, y0, x1, y1]}, '
            '"right": {"points": [[x, y]]}} (or set masks.sam.prompts=FILE)', path,
        )  # fmt: skip
    prompts = read_prompts(path, info)
    if "object" not in prompts:
        raise PreprocessError(STEP, "expected an 'object' entry (and 'right' / 'left')", path)
    later = sorted({name for name, frames in prompts.items() if set(frames) - {0}})
    if later or any(0 not in frames for frames in prompts.values()):
        raise PreprocessError(
            STEP,
            "masks.backend=sam prompts frame 0 only (propagating from there); prompts on other frames "
            f"({', '.join(later) or 'no frame-0 prompt'}) need masks.backend=sam2",
            path,
        )
    return {name: frames[0] for name, frames in prompts.items()}


def prompt_from_mask(mask: np.ndarray, logits: np.ndarray | None, cfg: SamConfig) -> Prompt | None:
    """Prompts for the next frame from a target's mask: enlarged box, interior points, logits."""
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    mx, my = cfg.box_margin * (x1 - x0 + 1), cfg.box_margin * (y1 - y0 + 1)
    H, W = mask.shape
    box = np.array([max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, W - 1), min(y1 + my, H - 1)], float)
    dist = ndimage.distance_transform_edt(mask)
    points = []
    for _ in range(cfg.num_points):
        y, x = np.unravel_index(np.argmax(dist), dist.shape)
        if dist[y, x] <= 0:
            break
        points.append((x, y))
        yy, xx = np.ogrid[:H, :W]
        dist[(yy - y) ** 2 + (xx - x) ** 2 <= max(dist[y, x], 1.0) ** 2] = 0  # next point elsewhere
    pts = np.array(points, float).reshape(-1, 2)
    return Prompt(
        points=pts if len(pts) else None,
        labels=np.ones(len(pts), int) if len(pts) else None,
        box=box,
        logits=logits if cfg.use_mask_input else None,
    )


def _predict(predictor, prompt: Prompt) -> tuple[np.ndarray, np.ndarray]:
    masks, _, low_res = predictor.predict(
        point_coords=prompt.points,
        point_labels=prompt.labels,
        box=prompt.box,
        mask_input=prompt.logits,
        multimask_output=False,
    )
    return masks[0].astype(bool), low_res[:1]


def sam_masks(raw: Path, frames_dir: Path, info: FramesInfo, cfg: SamConfig, device: str) -> list[np.ndarray]:
    """Label maps of every frame by segment-anything, propagated from the first frame's prompts."""
    prompts = first_frame_prompts(Path(cfg.prompts) if cfg.prompts else raw / "prompts.json", info)
    predictor = load_predictor(cfg, device)
    state: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    out = []
    for t in tqdm(range(info.num_frames), desc="sam", unit="frame", disable=None):
        predictor.set_image(load_frame(frames_dir, t))
        labels = np.zeros(info.image_size, np.uint8)
        for name in ("object", "right", "left"):  # hands last: a hand in front of the object wins
            if name not in prompts:
                continue
            if t == 0:
                mask, logits = _predict(predictor, prompts[name])
            else:
                prev, prev_logits = state[name]
                mask, logits = _propagate(predictor, prev, prev_logits, cfg)
            state[name] = (mask, logits)
            labels[mask] = TARGETS[name]
        out.append(labels)
    log.info("segment-anything masks for %d frames (targets: %s)", len(out), ", ".join(prompts))
    return out


def _propagate(
    predictor, prev: np.ndarray, prev_logits: np.ndarray | None, cfg: SamConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    prompt = prompt_from_mask(prev, prev_logits, cfg)
    if prompt is None:  # lost in an earlier frame: stays lost
        return prev, prev_logits
    area = prev.sum()
    lo, hi = cfg.lost_area_ratio * area, area / cfg.lost_area_ratio
    mask, logits = _predict(predictor, prompt)
    if lo <= mask.sum() <= hi:
        return mask, logits
    mask, logits = _predict(predictor, Prompt(box=prompt.box))  # the box alone, no stale logits
    if lo <= mask.sum() <= hi:
        return mask, logits
    return prev, prev_logits
