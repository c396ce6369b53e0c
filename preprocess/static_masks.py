"""Backend ``static`` of step ``masks``: label maps for a camera on a tripod, without model weights.

1. **Background**: a clean plate (``masks.static.background``, or RAW/background.png) or, per pixel,
   the colour that recurs in the most frames (a static background keeps its colour; a moving hand and
   a turning object do not), with the fitted hand and then the previous foreground not voting.
2. **Foreground**: pixels whose colour differs from the background after a per-frame colour gain
   (slow lighting or exposure drift) by more than the larger of ``threshold`` and ``noise_factor`` ×
   the clip's pixel noise, except **shadows**: darker by a factor in [``shadow_min_ratio``,
   ``shadow_max_ratio``] with the background's chromaticity and, where it has any, its texture.
3. **Hand**: the fitted hand model (step ``hands``) projected into the frame, refined by colour
   (OpenCV's GrabCut seeded with the eroded silhouette as hand and the foreground away from it as
   not hand).
4. **Object**: the rest of the foreground near the hand. Foreground that is far from it, or that
   enters from the image border beyond the wrist (an arm), is unknown (255), not object.
5. Unknown (255) on a thin band along every boundary, where a pixel's label is least certain
   (``mark_boundaries``, applied by the masks step after its clean-up has filled small holes), and
   on the background next to the object where the background was never seen and GrabCut guessed it
   (``leave_guesses_unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage
from tqdm import tqdm

from hold.config.hand import HandConfig
from hold.data.sequence import LABEL_BACKGROUND, LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN
from hold.utils.logging import get_logger
from preprocess.config import StaticMasksConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, load_frame
from preprocess.hand_views import MIDDLE_MCP, WRIST, HandView, load_hand_views, silhouette

STEP = "masks"
SIDE_LABELS = {"right": LABEL_RIGHT, "left": LABEL_LEFT}
_MAD_TO_STD = 1.4826
_PLATE_ASPECT_TOLERANCE = 0.02  # log-ratio of aspect ratios: a rounding of the size, not another camera
_DISC3 = ndimage.generate_binary_structure(2, 1)
log = get_logger("preprocess.static")


@dataclass
class StaticReport:
    """What the backend measured and where it had to give up (stored in masks.json)."""

    background: str = "recurring colour"
    never_uncovered_fraction: float = 0.0  # pixels the foreground covered in every frame (no background)
    noise_std: float = 0.0  # the clip's pixel noise (0..1 intensity), from background residuals
    threshold: float = 0.0  # the colour distance used for the foreground
    gain_range: tuple[float, float] = (1.0, 1.0)  # per-frame lighting gains, min and max
    shadow_fraction: list[float] = field(default_factory=list)  # per frame: pixels explained as shadow
    frames_without_hand: int = 0  # frames where the fitted hand projects to no pixel
    unknown_foreground_fraction: list[float] = field(default_factory=list)  # per frame: foreground → 255
    guessed_background_px: int = 0  # never-seen background next to the object, left unknown (all frames)
    warnings: list[str] = field(default_factory=list)  # as logged

    def as_dict(self) -> dict:
        return {
            "background": self.background,
            "never_uncovered_fraction": round(self.never_uncovered_fraction, 5),
            "noise_std": round(self.noise_std, 5),
            "threshold": round(self.threshold, 5),
            "gain_range": [round(g, 4) for g in self.gain_range],
            "shadow_fraction": [round(f, 5) for f in self.shadow_fraction],
            "frames_without_hand": self.frames_without_hand,
            "unknown_foreground_fraction": [round(f, 5) for f in self.unknown_foreground_fraction],
            "guessed_background_px": self.guessed_background_px,
            "warnings": self.warnings,
        }

    def warn(self, text: str) -> None:
        log.warning("%s", text)
        self.warnings.append(text)


def static_masks(
    raw: Path,
    frames_dir: Path,
    hands_dir: Path,
    info: FramesInfo,
    cfg: StaticMasksConfig,
    hand_cfg: HandConfig,
) -> tuple[list[np.ndarray], dict]:
    """Label maps of every frame of a static-camera clip, and the backend's report (masks.json).

    Raises:
        PreprocessError: an unreadable clean plate.
    """
    frames = np.stack([load_frame(frames_dir, t) for t in range(info.num_frames)]).astype(np.float32) / 255
    K, views = load_hand_views(hands_dir, hand_cfg)
    size = info.image_size
    hands = {v.side: np.stack([silhouette(v, t, K, size) for t in range(info.num_frames)]) for v in views}
    any_hand = np.any(list(hands.values()), axis=0)
    report = StaticReport()
    plate = _clean_plate(raw, cfg, size)
    if plate is not None:
        report.background = "clean plate"
    reach = cfg.object_reach * np.array([max(v.size_px(t) for v in views) for t in range(info.num_frames)])
    near_hand = np.stack([ndimage.distance_transform_edt(~h) <= r for h, r in zip(any_hand, reach)])
    background, gains, fg, shadow = estimate_background(frames, any_hand, near_hand, plate, cfg, report)
    unseen = np.isnan(background[..., 0])
    loose = loose_background(frames / gains[:, None, None], any_hand, cfg) if unseen.any() else background
    out = []
    for t in tqdm(range(info.num_frames), desc="static masks", unit="frame", disable=None):
        labels = np.full(size, LABEL_BACKGROUND, np.uint8)
        hand_px = np.zeros(size, bool)
        for view in views:
            if not hands[view.side][t].any():
                report.frames_without_hand += 1
                continue
            mine = refine_hand(frames[t], fg[t], hands[view.side][t], view.size_px(t), cfg)
            labels[mine] = SIDE_LABELS[view.side]
            hand_px |= mine
        frame_fg = unseen_by_colour(
            frames[t] / gains[t], fg[t], any_hand[t], unseen, loose, report.threshold, cfg
        )
        rest = frame_fg & ~hand_px
        obj, unknown = split_rest(rest, hand_px, views, t, cfg)
        labels[obj] = LABEL_OBJECT
        labels[unknown] = LABEL_UNKNOWN
        report.guessed_background_px += leave_guesses_unknown(labels, unseen, cfg.unseen_margin_px)
        report.unknown_foreground_fraction.append(float(unknown.sum() / max(frame_fg.sum(), 1)))
        report.shadow_fraction.append(float(shadow[t].mean()))
        out.append(labels)  # the masks step cleans them up, then marks the boundaries unknown
    report.gain_range = (float(gains.min()), float(gains.max()))
    if report.never_uncovered_fraction > cfg.warn_unseen_fraction:
        report.warn(
            f"static masks: the background behind {100 * report.never_uncovered_fraction:.1f} % of the image was "
            "never seen out of the hand's reach; there the object was told from the background by colour alone "
            "(give a clean plate, RAW/background.png, for exact masks there)"
        )
    far = [f for f in report.unknown_foreground_fraction if f > cfg.warn_unseen_fraction]
    if far:
        report.warn(
            f"static masks: in {len(far)} of {info.num_frames} frames more than {100 * cfg.warn_unseen_fraction:.0f} % "
            "of the foreground was left unknown (far from the hand, or an arm entering from the image border)"
        )
    if report.frames_without_hand:
        report.warn(
            f"static masks: the fitted hand projects to no pixel in {report.frames_without_hand} hand-frame(s): no hand "
            "label there, and the object is only what lies near the other hand"
        )
    return out, report.as_dict()


def _clean_plate(raw: Path, cfg: StaticMasksConfig, size: tuple[int, int]) -> np.ndarray | None:
    path = Path(cfg.background) if cfg.background else raw / "background.png"
    if not path.is_file():
        if cfg.background:
            raise PreprocessError(STEP, "masks.static.background: no such image", path)
        return None
    try:
        with Image.open(path) as im:
            W, H = im.size
            plate = np.asarray(im.convert("RGB").resize(size[::-1], Image.Resampling.BILINEAR), np.float32)
    except (UnidentifiedImageError, OSError) as e:
        raise PreprocessError(STEP, f"unreadable clean plate ({e})", path) from None
    if abs(np.log((W / H) / (size[1] / size[0]))) > _PLATE_ASPECT_TOLERANCE:
        raise PreprocessError(
            STEP, f"the clean plate is {W}×{H}, not the frames' aspect ratio ({size[1]}×{size[0]})", path
        )
    return plate / 255


def estimate_background(
    frames: np.ndarray,
    hand: np.ndarray,
    near_hand: np.ndarray,
    plate: np.ndarray | None,
    cfg: StaticMasksConfig,
    report: StaticReport,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Background image, per-frame gains and the foreground and shadow masks.

    Args:
        frames: (T, H, W, 3) float in [0, 1].
        hand: (T, H, W) bool, the fitted hands' silhouettes (never background).
        near_hand: (T, H, W) bool, within reach of a hand: where the held object may be.

    Returns:
        background (H, W, 3) (NaN where it could not be told), gains (T, 3), foreground (T, H, W) bool
        and shadow (T, H, W) bool.
    """
    excluded = np.stack([ndimage.binary_dilation(h, iterations=2) for h in hand])
    gains = np.ones((len(frames), 3), np.float32)
    background = plate
    for _ in range(cfg.iterations):
        corrected = frames / gains[:, None, None]
        if plate is None:
            background = background_from_clip(corrected, excluded, near_hand, cfg)
        gains = _gains(frames, background, excluded | near_hand)
        corrected = frames / gains[:, None, None]
        fg, shadow, noise, threshold = foreground(corrected, background, excluded | near_hand, cfg)
        excluded = np.stack([ndimage.binary_dilation(f, iterations=2) for f in fg & ~near_hand]) | hand
    report.never_uncovered_fraction = float(np.isnan(background[..., 0]).mean())
    report.noise_std, report.threshold = noise, threshold
    return background, gains, fg, shadow


def background_from_clip(
    frames: np.ndarray, excluded: np.ndarray, near_hand: np.ndarray, cfg: StaticMasksConfig
) -> np.ndarray:
    """(H, W, 3) background of a static camera's clip; NaN where it cannot be told.

    Per pixel, the colour that recurs in the most frames where the pixel is out of the hand's reach
    (the held object cannot be there). A plain object covering a pixel in most frames would win a vote
    over all frames. Pixels out of reach in too few frames (near the point the hand turns about) stay
    unknown; ``unseen_by_colour`` decides them frame by frame.
    """
    mode, votes = temporal_mode(frames, excluded | near_hand, cfg)
    mode[votes < max(2, cfg.mode_min_frames * len(frames))] = np.nan
    return mode


def loose_background(frames: np.ndarray, excluded: np.ndarray, cfg: StaticMasksConfig) -> np.ndarray:
    """(H, W, 3) the colour that recurs most over all frames, near the hand too: right wherever the
    background shows more often than any one colour of the object; a first guess where the background
    is unknown. NaN where no colour recurs."""
    mode, votes = temporal_mode(frames, excluded, cfg)
    mode[votes < 2] = np.nan
    return mode


def temporal_mode(
    frames: np.ndarray, excluded: np.ndarray, cfg: StaticMasksConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the colour that recurs in the most frames, averaged over the frames that show it
    (within ``mode_tolerance``), and its number of votes; excluded frames neither vote nor stand.

    A frame that shows a shadowed version of a colour (darker, same chromaticity) votes for it too:
    a shadow that lingers would otherwise win over the lit background.
    """
    T = len(frames)
    flat, ex = frames.reshape(T, -1, 3), excluded.reshape(T, -1)
    lum = np.maximum(flat.mean(-1), 1e-3)
    rgb = flat / lum[..., None]  # chromaticity
    best = np.full(flat.shape[1:], np.nan, np.float32)
    votes = np.zeros(flat.shape[1], int)
    for i in range(T):
        same = (np.linalg.norm(flat - flat[i], axis=-1) < cfg.mode_tolerance) & ~ex
        ratio = lum / lum[i]
        shadowed = (
            (ratio >= cfg.shadow_min_ratio)
            & (ratio <= cfg.shadow_max_ratio)
            & (np.abs(rgb - rgb[i]).sum(-1) / 3 <= cfg.shadow_chroma)
            & ~ex
        )
        count = np.where(ex[i], -1, (same | shadowed).sum(0))
        better = count > votes
        votes[better] = count[better]
        best[better] = (flat * same[..., None]).sum(0)[better] / same.sum(0)[better, None]
    return best.reshape(frames.shape[1:]), votes.reshape(frames.shape[1:3])


def unseen_by_colour(
    frame: np.ndarray,
    fg: np.ndarray,
    hand: np.ndarray,
    unseen: np.ndarray,
    loose: np.ndarray,
    threshold: float,
    cfg: StaticMasksConfig,
) -> np.ndarray:
    """The foreground with its pixels of unknown background decided by colour (GrabCut). Seeds: the
    foreground seen against known background is foreground, the known background and the hand are
    not; the unknown pixels start as foreground where they differ from ``loose`` (the colour that
    recurs most over all frames), else as background."""
    todo = unseen & ~hand
    if cfg.grabcut_iterations == 0 or not todo.any() or not (~fg & ~unseen).any():
        return fg
    differs = np.linalg.norm(frame - np.nan_to_num(loose, nan=-1.0), axis=-1) > threshold
    gc = np.full(fg.shape, cv2.GC_BGD, np.uint8)
    gc[fg & ~unseen & ~hand] = cv2.GC_FGD
    gc[todo] = np.where(differs[todo], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    region = ndimage.binary_dilation(todo | (fg & ~hand), iterations=8)
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = np.ascontiguousarray(gc[y0:y1, x0:x1])
    crop = np.ascontiguousarray((frame[y0:y1, x0:x1] * 255).astype(np.uint8)[..., ::-1])  # BGR
    _grabcut(crop, sub, cfg.grabcut_iterations)
    out = fg.copy()
    decided = np.zeros_like(fg)
    decided[y0:y1, x0:x1] = (sub == cv2.GC_FGD) | (sub == cv2.GC_PR_FGD)
    out[todo] = decided[todo]
    return out


def _grabcut(image: np.ndarray, labels: np.ndarray, iterations: int) -> None:
    """OpenCV's GrabCut on a BGR image, updating the GC_* ``labels`` in place. Its GMMs start from
    k-means on OpenCV's global random state: reseeded so that a frame's labels do not depend on which
    frames and clips the process handled before."""
    cv2.setRNGSeed(0)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(image, labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)


def _gains(frames: np.ndarray, background: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """(T, 3) per-channel gain of each frame against the background, a median over its background."""
    gains = np.ones((len(frames), 3), np.float32)
    for t, (frame, ex) in enumerate(zip(frames, excluded)):
        sel = ~ex & ~np.isnan(background[..., 0]) & (background.min(-1) > 0.05)
        if sel.sum() > 100:
            gains[t] = np.median(frame[sel] / background[sel], axis=0)
    return gains


def foreground(
    corrected: np.ndarray, background: np.ndarray, excluded: np.ndarray, cfg: StaticMasksConfig
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Foreground and shadow masks of gain-corrected frames against the background.

    Returns:
        foreground (T, H, W), shadow (T, H, W), the noise estimate and the threshold used.
    """
    bg = np.nan_to_num(background, nan=-1.0)  # never-uncovered pixels differ from any colour
    diff = np.linalg.norm(corrected - bg, axis=-1)
    quiet = ~excluded & ~np.isnan(background[..., 0])[None]
    noise = float(_MAD_TO_STD * np.median(np.abs(corrected - bg)[quiet])) if quiet.any() else 0.0
    threshold = max(cfg.threshold, cfg.noise_factor * noise * np.sqrt(3))
    lum_f, lum_b = corrected.mean(-1), np.maximum(bg.mean(-1), 1e-3)
    ratio = lum_f / lum_b
    chroma = np.abs(corrected / np.maximum(lum_f, 1e-3)[..., None] - bg / lum_b[..., None]).sum(-1) / 3
    # Sensor noise moves a dark pixel's chromaticity by about noise / brightness: tolerate that much more.
    chroma_tolerance = cfg.shadow_chroma + cfg.shadow_noise_sigmas * noise / np.maximum(lum_f, 1e-3)
    shadow = (
        (ratio >= cfg.shadow_min_ratio)
        & (ratio <= cfg.shadow_max_ratio)
        & (chroma <= chroma_tolerance)
        & _same_texture(lum_f, lum_b, noise / np.sqrt(3), cfg)
    )
    fg = (diff > threshold) & ~shadow
    fg = np.stack([_clean(f, cfg.min_region_fraction) for f in fg])
    return fg, shadow & (diff > threshold), noise, threshold


def _same_texture(lum_f: np.ndarray, lum_b: np.ndarray, noise: float, cfg: StaticMasksConfig) -> np.ndarray:
    """Where the background has texture, a shadow keeps it: local normalised cross-correlation of the
    frame and the background ≥ ``shadow_texture_ncc``. Flat background passes (nothing to compare),
    and so does background whose only texture is noise (local std within ``texture_noise_sigmas`` × the brightness
    noise ``noise``: a noisy clean plate of a plain wall)."""
    size = (1, cfg.texture_window, cfg.texture_window)

    def local(a: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(a, size=size, mode="nearest")

    b = np.broadcast_to(lum_b, lum_f.shape)
    mf, mb = local(lum_f), local(b)
    cov = local(lum_f * b) - mf * mb
    var_f = np.maximum(local(lum_f**2) - mf**2, 0)
    var_b = np.maximum(local(b**2) - mb**2, 0)
    flat = np.sqrt(var_b) < np.maximum(
        cfg.texture_min_std * np.maximum(mb, 1e-3), cfg.texture_noise_sigmas * noise
    )
    ncc = cov / np.sqrt(np.maximum(var_f * var_b, 1e-12))
    return flat | (ncc >= cfg.shadow_texture_ncc)


def _clean(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    mask = ndimage.binary_opening(mask, structure=_DISC3)
    comp, n = ndimage.label(mask)
    if n:
        sizes = np.bincount(comp.ravel())[1:]
        mask = np.isin(comp, np.flatnonzero(sizes >= min_fraction * mask.size) + 1)
    return mask  # holes stay: a handle's opening shows the background (the step's clean-up fills small ones)


def refine_hand(
    frame: np.ndarray, fg: np.ndarray, sil: np.ndarray, hand_px: float, cfg: StaticMasksConfig
) -> np.ndarray:
    """The hand's pixels: the projected silhouette refined by colour with GrabCut inside the foreground.

    Seeds: the silhouette eroded by ``hand_core`` × the hand's size is hand; foreground farther than
    ``hand_band`` × its size from the silhouette is not; the band between is left to the colours.
    """
    core = ndimage.binary_erosion(sil, iterations=max(1, int(round(cfg.hand_core * hand_px))))
    near = ndimage.binary_dilation(sil, iterations=max(1, int(round(cfg.hand_band * hand_px))))
    if cfg.grabcut_iterations == 0 or not core.any() or not (fg & ~near).any():
        return sil & (fg | core)
    gc = np.full(sil.shape, cv2.GC_BGD, np.uint8)
    gc[fg & near] = cv2.GC_PR_BGD
    gc[fg & sil] = cv2.GC_PR_FGD
    gc[core] = cv2.GC_FGD
    ys, xs = np.nonzero(fg | sil)
    pad = int(hand_px * 0.2) + 2
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, sil.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, sil.shape[1])
    crop = np.ascontiguousarray((frame[y0:y1, x0:x1] * 255).astype(np.uint8)[..., ::-1])  # BGR
    sub = np.ascontiguousarray(gc[y0:y1, x0:x1])
    _grabcut(crop, sub, cfg.grabcut_iterations)
    hand = np.zeros_like(sil)
    hand[y0:y1, x0:x1] = (sub == cv2.GC_FGD) | (sub == cv2.GC_PR_FGD)
    hand &= fg | core
    comp, n = ndimage.label(hand)  # keep what is connected to the silhouette's core
    if n > 1:
        hand = np.isin(comp, np.unique(comp[core & hand]))
    return hand


def split_rest(
    rest: np.ndarray, hand: np.ndarray, views: list[HandView], t: int, cfg: StaticMasksConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground that is not hand → (object, unknown): components within ``object_reach`` × the hand's
    size of a hand are object, unless they enter from the image border beyond the wrist (an arm)."""
    obj, unknown = np.zeros_like(rest), np.zeros_like(rest)
    comp, n = ndimage.label(rest)
    if n == 0:
        return obj, unknown
    hand_size = max((v.size_px(t) for v in views), default=0.0)
    dist = ndimage.distance_transform_edt(~hand) if hand.any() else np.full(rest.shape, np.inf)
    border = np.zeros_like(rest)
    border[[0, -1], :] = border[:, [0, -1]] = True
    for k in range(1, n + 1):
        region = comp == k
        far = dist[region].min() > cfg.object_reach * hand_size
        arm = (region & border).any() and any(_beyond_wrist(region, v, t) for v in views)
        if far or arm:
            unknown |= region
        else:
            obj |= region
    return obj, unknown


def leave_guesses_unknown(labels: np.ndarray, unseen: np.ndarray, margin: int) -> int:
    """Set to unknown, in place, the background pixels within ``margin`` pixels of the object where the
    background was never seen; returns how many. There GrabCut told the object from the background by
    colour alone, and it takes the object's edge for background (it misses the pixels the object
    covers in part, and whole stretches of edge where the object's colour resembles what recurs there):
    on the static suite's bottle, 3.5 k object pixels labelled background without this, 1.1 k with a
    margin of 3 px, and the trained object's scale error went from −6.2 to −2.9 %."""
    if not margin:
        return 0
    guessed = unseen & (labels == LABEL_BACKGROUND)
    guessed &= ndimage.binary_dilation(labels == LABEL_OBJECT, _DISC3, iterations=margin)
    labels[guessed] = LABEL_UNKNOWN
    return int(guessed.sum())


def _beyond_wrist(region: np.ndarray, view: HandView, t: int) -> bool:
    """The region's centroid lies on the far side of the wrist from the fingers."""
    wrist, mcp = view.fitted_kp2d[t, WRIST], view.fitted_kp2d[t, MIDDLE_MCP]
    ys, xs = np.nonzero(region)
    return float((np.array([xs.mean(), ys.mean()]) - wrist) @ (wrist - mcp)) > 0


def mark_boundaries(labels: np.ndarray, width: int) -> np.ndarray:
    """Labels with ``width`` pixels on each side of every boundary between two labels set to unknown."""
    if width == 0:
        return labels
    footprint = np.ones((2 * width + 1, 2 * width + 1), bool)
    lo = ndimage.minimum_filter(labels, footprint=footprint, mode="nearest")
    hi = ndimage.maximum_filter(
        np.where(labels == LABEL_UNKNOWN, 0, labels), footprint=footprint, mode="nearest"
    )
    out = labels.copy()
    out[(lo != hi) & (labels != LABEL_UNKNOWN)] = LABEL_UNKNOWN
    return out
