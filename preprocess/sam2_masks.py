"""Backend ``sam2`` of step ``masks``: SAM 2's video predictor, prompted without clicking.

- **Hands**: from the ``hands`` step: on the first well-fitted frame and then every
  ``hand_prompt_every`` frames, positive points on the palm (wrist, thumb base, finger bases: on the
  hand whatever it holds) and a box around the confident keypoints.
- **Object**: from the prompt file (RAW/prompts.json, ``preprocess.prompts``: points or a box on one
  or more frames) or, without one, from where the fingertips hold something that is not hand: on the
  frame where the hand is fitted best, the points between the thumb tip and the other fingertips that
  the hand's own mask does not cover, with the palm as negative points.
- SAM 2 propagates every target through the clip (forward from the first prompted frame, then
  backward to the start). A pixel two targets claim is unknown (255).

The model is the user's checkpoint; nothing is downloaded. ``make sam2`` installs the package.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from hold.config.hand import HandConfig
from hold.data.sequence import LABEL_BACKGROUND, LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN
from hold.utils.external import MissingDependencyError, require, resolve_device
from hold.utils.logging import get_logger
from preprocess.config import Sam2Config
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, load_frame
from preprocess.hand_views import FINGERTIPS, PALM_KEYPOINTS, HandView, load_hand_views
from preprocess.prompts import Prompt, read_prompts

STEP = "masks"
OBJECT_IDS = {"object": 1, "right": 2, "left": 3}
LABELS = {1: LABEL_OBJECT, 2: LABEL_RIGHT, 3: LABEL_LEFT}
_SIZES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
CHECKPOINT_HELP = (
    "download one from https://github.com/facebookresearch/sam2#model-description (e.g. "
    "sam2.1_hiera_tiny.pt or sam2.1_hiera_large.pt), put it anywhere (e.g. ~/.cache/hold/sam2/) and pass "
    "masks.sam2.checkpoint=/path/to/sam2.1_hiera_large.pt"
)
log = get_logger("preprocess.sam2")


def model_config(cfg: Sam2Config, checkpoint: Path) -> str:
    """The SAM 2 config file of a checkpoint: ``cfg.model_cfg`` or one read from the file name."""
    if cfg.model_cfg != "auto":
        return cfg.model_cfg
    name = checkpoint.name
    sizes = [s for s in _SIZES if f"_{s}" in name]
    if not name.startswith("sam2") or len(sizes) != 1:
        raise PreprocessError(
            STEP,
            "cannot tell the SAM 2 model from the file name (expected e.g. sam2.1_hiera_tiny.pt); set "
            "masks.sam2.model_cfg=configs/sam2.1/sam2.1_hiera_t.yaml (or _s, _b+, _l)",
            checkpoint,
        )
    version = "sam2.1" if name.startswith("sam2.1") else "sam2"
    return f"configs/{version}/{version}_hiera_{_SIZES[sizes[0]]}.yaml"


def load_predictor(cfg: Sam2Config, device: str):  # -> sam2.sam2_video_predictor.SAM2VideoPredictor
    """SAM 2's video predictor with the user's checkpoint.

    Raises:
        PreprocessError: sam2 not installed, no checkpoint given, a missing or wrong file.
    """
    if not cfg.checkpoint:
        raise PreprocessError(STEP, f"masks.backend=sam2 needs a SAM 2 checkpoint: {CHECKPOINT_HELP}")
    path = Path(cfg.checkpoint).expanduser()
    if not path.is_file():
        raise PreprocessError(STEP, f"checkpoint not found; {CHECKPOINT_HELP}", path)
    config = model_config(cfg, path)
    try:
        require("sam2", "masks.backend=sam2", "Or use masks.backend=import or static.")
    except MissingDependencyError as e:
        raise PreprocessError(STEP, str(e)) from None
    from sam2.build_sam import build_sam2_video_predictor

    # No hole filling: it needs SAM 2's optional CUDA extension, and the step's clean-up fills holes.
    overrides = ["++model.fill_hole_area=0"]
    if cfg.image_size:
        overrides.append(f"++model.image_size={cfg.image_size}")
    quiet = logging.getLogger()  # sam2 logs its checkpoint errors at the root logger; we say it once
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return build_sam2_video_predictor(
            config,
            str(path),
            device=resolve_device(device if cfg.device == "auto" else cfg.device),
            hydra_overrides_extra=overrides,
            apply_postprocessing=False,
        )
    except Exception as e:  # hydra, torch.load and load_state_dict raise many types
        raise PreprocessError(
            STEP, f"not a SAM 2 checkpoint for {config} ({type(e).__name__}: {str(e)[:200]})", path
        ) from None
    finally:
        quiet.setLevel(level)


def hand_prompts(view: HandView, cfg: Sam2Config, size: tuple[int, int]) -> dict[int, Prompt]:
    """Prompts of one hand by frame: positive palm points and the confident keypoints' box."""
    H, W = size
    conf = view.kp2d[..., 2]
    usable = [
        t for t in range(len(conf)) if view.valid[t] and (conf[t] >= cfg.hand_min_confidence).sum() >= 5
    ]
    if not usable:
        return {}
    chosen = [usable[0]]
    for t in usable[1:]:
        if cfg.hand_prompt_every and t - chosen[-1] >= cfg.hand_prompt_every:
            chosen.append(t)
    out = {}
    for t in chosen:
        pts = view.fitted_kp2d[t]
        box_pts = view.kp2d[t, conf[t] >= cfg.hand_min_confidence, :2]
        lo, hi = box_pts.min(0), box_pts.max(0)
        pad = cfg.box_margin * (hi - lo)
        box = np.concatenate([np.maximum(lo - pad, 0), np.minimum(hi + pad, [W - 1, H - 1])])
        palm = np.clip(pts[list(PALM_KEYPOINTS)], 0, [W - 1, H - 1])
        out[t] = Prompt(points=palm, labels=np.ones(len(palm), int), box=box)
    return out


def object_prompt_near_fingertips(view: HandView, t: int, hand_mask: np.ndarray) -> tuple[Prompt, bool]:
    """Positive points between the thumb tip and the other fingertips (and at their centre) that the
    hand's mask leaves free, with the palm as negative points.

    Returns:
        the prompt and whether the hand's mask left any candidate free. When it covers them all (SAM
        often takes a hand and what it holds for one thing) every candidate in the frame is used, and
        the caller should tell the hand they are not hand.
    """
    pts = view.fitted_kp2d[t]
    thumb, others = pts[FINGERTIPS[0]], pts[list(FINGERTIPS[1:])]
    candidates = np.concatenate([(thumb + others) / 2, pts[list(FINGERTIPS)].mean(0, keepdims=True)])
    H, W = hand_mask.shape
    ij = np.round(candidates).astype(int)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < W) & (ij[:, 1] >= 0) & (ij[:, 1] < H)
    candidates, ij = candidates[inside], ij[inside]
    grown = ndimage.binary_dilation(hand_mask, iterations=max(2, int(0.03 * view.size_px(t))))
    free = ~grown[ij[:, 1], ij[:, 0]]
    positives = candidates[free] if free.any() else candidates
    negatives = pts[list(PALM_KEYPOINTS)]
    points = np.concatenate([positives, negatives])
    labels = np.concatenate([np.ones(len(positives), int), np.zeros(len(negatives), int)])
    return Prompt(points=points, labels=labels), bool(free.any())


def combine(masks: dict[int, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """One label map from per-target masks; pixels two targets claim are unknown (255)."""
    labels = np.full(size, LABEL_BACKGROUND, np.uint8)
    claims = np.zeros(size, np.int32)
    for obj_id, mask in masks.items():
        labels[mask] = LABELS[obj_id]
        claims += mask
    labels[claims > 1] = LABEL_UNKNOWN
    return labels


def sam2_masks(
    raw: Path,
    frames_dir: Path,
    hands_dir: Path,
    info: FramesInfo,
    cfg: Sam2Config,
    hand_cfg: HandConfig,
    device: str,
) -> tuple[list[np.ndarray], dict]:
    """Label maps of every frame by SAM 2, and the backend's report (masks.json).

    Raises:
        PreprocessError: a missing model or checkpoint, a malformed prompt file, no prompt for the object.
    """
    path = Path(cfg.prompts) if cfg.prompts else raw / "prompts.json"
    given = read_prompts(path, info) if (cfg.prompts or path.is_file()) else {}
    _, views = load_hand_views(hands_dir, hand_cfg)
    prompts: dict[str, dict[int, Prompt]] = {v.side: hand_prompts(v, cfg, info.image_size) for v in views}
    for target, frames in given.items():  # the user's prompts win on their frames
        prompts.setdefault(target, {}).update(frames)
    if "object" not in given and not cfg.auto_object:
        raise PreprocessError(
            STEP, "masks.sam2.auto_object=false needs an 'object' prompt in the prompt file", path
        )
    predictor = load_predictor(cfg, device)
    import torch

    with (
        tempfile.TemporaryDirectory(prefix="hold-sam2-") as tmp,
        torch.inference_mode(),
        _own_progress_bars(),
    ):
        for t in range(info.num_frames):  # SAM 2 reads a folder of JPEGs named by frame number
            Image.fromarray(load_frame(frames_dir, t)).save(Path(tmp) / f"{t:05d}.jpg", quality=95)
        state = predictor.init_state(tmp, offload_video_to_cpu=True)
        shutil.rmtree(tmp, ignore_errors=True)  # loaded; free the disk early
        for target, frames in prompts.items():
            for t, p in sorted(frames.items()):
                _add(predictor, state, t, OBJECT_IDS[target], p)
        source = "prompt file" if "object" in given else _auto_object(predictor, state, views, prompts, info)
        masks = _propagate(predictor, state, info)
    out = [combine(masks[t], info.image_size) for t in range(info.num_frames)]
    report = {
        "prompted_frames": {k: sorted(v) for k, v in prompts.items()},
        "object_prompt": source,
        "claimed_twice_fraction": [round(float((m == LABEL_UNKNOWN).mean()), 6) for m in out],
    }
    log.info("SAM 2 masks for %d frames (object prompt: %s)", len(out), source)
    return out, report


def _add(predictor, state, t: int, obj_id: int, p: Prompt) -> np.ndarray:
    """Add one prompt; returns the target's mask on that frame."""
    _, ids, logits = predictor.add_new_points_or_box(
        state, frame_idx=t, obj_id=obj_id, points=p.points, labels=p.labels, box=p.box
    )
    return (logits[list(ids).index(obj_id), 0] > 0).cpu().numpy()


def _auto_object(predictor, state, views: list[HandView], prompts: dict, info: FramesInfo) -> str:
    """Prompt the object next to the fingertips on the frame where a hand is fitted best."""
    for view in views:
        frames = prompts.get(view.side, {})
        if not frames:
            continue
        conf = view.kp2d[..., 2].mean(1)
        t = max(frames, key=lambda f: conf[f])
        hand_mask = _add(predictor, state, t, OBJECT_IDS[view.side], frames[t])
        prompt, free = object_prompt_near_fingertips(view, t, hand_mask)
        if not len(prompt.labels) or not prompt.labels.any():
            continue
        prompts.setdefault("object", {})[t] = prompt
        _add(predictor, state, t, OBJECT_IDS["object"], prompt)
        where = f"next to the {view.side} fingertips on frame {info.source_indices[t]}"
        if not free:  # the hand's mask took the object too: tell the hand those points are not hand
            hand = frames[t]
            held = prompt.points[prompt.labels == 1]
            frames[t] = Prompt(
                points=np.concatenate([hand.points, held]),
                labels=np.concatenate([hand.labels, np.zeros(len(held), int)]),
                box=hand.box,
            )
            _add(predictor, state, t, OBJECT_IDS[view.side], frames[t])
            where += " (inside the hand's first mask: the hand was prompted again with them as not hand)"
        return where
    raise PreprocessError(
        STEP,
        "could not place an object prompt next to the fingertips (no well-fitted hand in any frame): give one "
        'in RAW/prompts.json, e.g. {"object": {"frame": 0, "box": [x0, y0, x1, y1]}}',
    )


@contextlib.contextmanager
def _own_progress_bars():
    """SAM 2 draws a progress bar per pass and per frame load; ours counts frames once."""
    import sam2.sam2_video_predictor as predictor_module
    import sam2.utils.misc as misc_module

    saved = predictor_module.tqdm, misc_module.tqdm
    predictor_module.tqdm = misc_module.tqdm = functools.partial(tqdm, disable=True)
    try:
        yield
    finally:
        predictor_module.tqdm, misc_module.tqdm = saved


def _propagate(predictor, state, info: FramesInfo) -> dict[int, dict[int, np.ndarray]]:
    """Per frame, per target id, the propagated mask: forward from the first prompted frame, then
    backward from it to frame 0."""
    out: dict[int, dict[int, np.ndarray]] = {}
    bar = tqdm(total=info.num_frames, desc="sam2", unit="frame", disable=None)

    def collect(frames) -> None:
        for t, ids, logits in frames:
            if t not in out:
                bar.update()
            out[t] = {int(i): (logits[k, 0] > 0).cpu().numpy() for k, i in enumerate(ids)}

    collect(predictor.propagate_in_video(state))  # starts at the first prompted frame
    first = min(t for obj in state["output_dict_per_obj"].values() for t in obj["cond_frame_outputs"])
    if first > 0:
        collect(predictor.propagate_in_video(state, start_frame_idx=first, reverse=True))
    bar.close()
    missing = [t for t in range(info.num_frames) if t not in out]
    if missing:
        raise PreprocessError(STEP, f"SAM 2 returned no masks for frames {missing[:5]}…")
    return out
