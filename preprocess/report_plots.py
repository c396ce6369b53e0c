"""The figures of the preprocessing report (``preprocess.report``), as small PNGs.

matplotlib draws through its Agg canvas directly (no pyplot, no GUI backend, no global state); the
contact sheet is composed with numpy and PIL. Each function returns a ``Plot`` or None when its
inputs are missing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN, OBJECT_SOURCES
from hold.geometry.camera import project
from preprocess.report_data import (
    ReportData,
    camera,
    contact_distances,
    hand_keypoints,
    object_track,
    posed_object_points,
    rotation_track,
)

DPI = 100
"""Figure resolution: small PNGs, sharp enough at the report's width."""
WIDTH_IN = 9.0
SOURCE_COLOURS = {0: "#2a9d3a", 1: "#e09b1a", 2: "#3a6fd8", 3: "#9b4fc0"}
"""``object.source`` code → colour (SfM green, interpolated amber, hand blue, other purple)."""
LABEL_COLOURS = {"object": "#2a9d3a", "right hand": "#e8822a", "left hand": "#2ab0e8", "unknown": "#999999"}
SIDE_COLOURS = {"right": "#e8822a", "left": "#2ab0e8"}
SKELETON_RGB = {"right": (235, 0, 200), "left": (230, 30, 30)}
"""Hand skeleton colours on the contact sheet (they stand out on the hand labels' tint)."""
OVERLAY_RGB = {LABEL_OBJECT: (40, 200, 60), LABEL_RIGHT: (255, 140, 40), LABEL_LEFT: (40, 180, 255),
               LABEL_UNKNOWN: (150, 150, 150)}  # fmt: skip
OVERLAY_ALPHA = 0.45
SHEET_FRAMES = 8
"""Frames on the contact sheet, spread over the clip."""
SHEET_COLUMNS = 4
SHEET_TILE_WIDTH = 280
"""Tile width in pixels (frames are resized to it; keeps the sheet small for any frame size)."""
BONES = [(0, 1), (1, 2), (2, 3), (3, 4)] + [
    (0 if j == b else j - 1, j) for b in (5, 9, 13, 17) for j in range(b, b + 4)
]
"""Keypoint pairs drawn as the hand skeleton (wrist to each finger's base, then along the finger)."""


@dataclass
class Plot:
    """One figure of the report.

    Attributes:
        name: identifier (``masks_area`` …), also in report.json.
        step: the step it belongs to.
        title: heading above it.
        caption: what it shows and how it was measured.
        png: the PNG bytes.
    """

    name: str
    step: str
    title: str
    caption: str
    png: bytes


def _new_figure(height: float, width: float = WIDTH_IN):
    """A Figure on its own Agg canvas (no pyplot: nothing global, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, linewidth=0.5)


def _figure(rows: int = 1, cols: int = 1, height: float = 2.4, **kw):
    """A figure with a grid of styled axes, ``height`` inches per row."""
    fig = _new_figure(height * rows)
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    for ax in axes.ravel():
        _style(ax)
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _shade(ax, frames: np.ndarray, colour: str = "#d62728", label: str | None = None) -> None:
    """Vertical bands over the given frames."""
    for k, t in enumerate(np.flatnonzero(frames)):
        ax.axvspan(t - 0.5, t + 0.5, color=colour, alpha=0.12, linewidth=0, label=label if k == 0 else None)


def masks_plot(data: ReportData, tiny_fraction: float) -> Plot | None:
    if data.areas is None:
        return None
    fig, ax = _figure()
    ax = ax[0, 0]
    obj = data.areas["object"]
    for name, values in data.areas.items():
        if name == "object" or values.any():
            ax.plot(100 * values, ".-", color=LABEL_COLOURS[name], label=name, lw=1, ms=3)
    min_object = data.config("masks", "masks", "min_object_fraction", 0.0)
    _shade(ax, obj < max(min_object, 1e-12), label="no object pixels")
    ax.axhline(
        100 * tiny_fraction, color="#2a9d3a", ls=":", lw=1, label=f"tiny object ({100 * tiny_fraction:g}%)"
    )
    ax.set_xlabel("frame", fontsize=8)
    ax.set_ylabel("% of the image", fontsize=8)
    ax.legend(fontsize=7, ncol=3, loc="upper right")
    caption = (
        "Share of each frame's pixels per mask label (from work/masks/). Red bands: frames whose object "
        f"area is below masks.min_object_fraction ({min_object:g})."
    )
    return Plot("masks_area", "masks", "Mask areas per frame", caption, _png(fig))


def hands_plot(data: ReportData) -> Plot | None:
    if data.hands is None or not data.sides:
        return None
    fig, axes = _figure(2, 1, height=2.0, sharex=True)
    top, bottom = axes[:, 0]
    limit = data.config("hands", "hands", "max_residual_px", None)
    for side in data.sides:
        res = np.asarray(data.hands[f"{side}.residual_px"], np.float64)
        valid = np.asarray(data.hands[f"{side}.valid"], bool)
        frames = np.arange(len(res))
        top.plot(frames, res, ".-", color=SIDE_COLOURS[side], lw=1, ms=3, label=f"{side}: residual")
        unfitted = ~np.isfinite(res)
        if unfitted.any():
            top.plot(frames[unfitted], np.zeros(unfitted.sum()), "x", color="#d62728", ms=5,
                     label=f"{side}: not fitted")  # fmt: skip
        _shade(top, ~valid, label=f"{side}: interpolated" if len(data.sides) == 1 else None)
        conf = np.asarray(data.hands[f"{side}.kp2d"], np.float64)[..., 2].mean(-1)
        bottom.plot(
            frames, conf, ".-", color=SIDE_COLOURS[side], lw=1, ms=3, label=f"{side}: mean confidence"
        )
        if data.mediapipe is not None and f"{side}.valid" in data.mediapipe:
            det = np.asarray(data.mediapipe[f"{side}.valid"], bool)
            bottom.plot(frames[~det], np.zeros((~det).sum()), "v", color="#d62728", ms=4,
                        label=f"{side}: no detection")  # fmt: skip
    if limit is not None:
        top.axhline(limit, color="#d62728", ls=":", lw=1, label=f"hands.max_residual_px ({limit:g})")
    top.set_ylabel("fit residual (px)", fontsize=8)
    bottom.set_ylabel("keypoint confidence", fontsize=8)
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_xlabel("frame", fontsize=8)
    for ax in (top, bottom):
        ax.legend(fontsize=7, ncol=4, loc="upper right")
    caption = (
        "Top: mean 2D keypoint residual of the hand-model fit per frame (work/hands/hands.npz "
        "residual_px); red bands: frames whose hand is interpolated (not fitted, or residual above the "
        "limit). Bottom: the estimator's mean keypoint confidence"
        + ("; triangles: frames mediapipe did not detect." if data.mediapipe is not None else ".")
    )
    return Plot("hands_fit", "hands", "Hand fit per frame", caption, _png(fig))


def sfm_plot(data: ReportData, stats: dict | None) -> Plot | None:
    if data.sfm is None or data.num_frames is None:
        return None
    T = data.num_frames
    has_model = stats is not None and bool(np.isfinite(stats["error"]).any())
    fig = _new_figure(4.4 if has_model else 1.5)
    grid = fig.add_gridspec(2 if has_model else 1, 2, height_ratios=[1, 2.2] if has_model else [1],
                            width_ratios=[2.4, 1])  # fmt: skip
    strip = fig.add_subplot(grid[0, :])
    rows = [("registered", data.sfm["registered"]), ("kept (reliable)", data.sfm.get("reliable"))]
    for y, (_, flags) in enumerate(rows):
        if flags is not None:
            flags = np.asarray(flags, bool)
            strip.bar(np.arange(T), 0.8, bottom=y - 0.4, width=0.9,
                      color=np.where(flags, "#2a9d3a", "#eeeeee"), edgecolor="none")  # fmt: skip
    source = np.asarray(data.sfm["source"])
    strip.bar(np.arange(T), 0.8, bottom=len(rows) - 0.4, width=0.9,
              color=[SOURCE_COLOURS.get(int(s), "#000000") for s in source], edgecolor="none")  # fmt: skip
    strip.set_yticks(range(len(rows) + 1), [r[0] for r in rows] + ["pose source"], fontsize=8)
    strip.set_xlim(-0.5, T - 0.5)
    _style(strip)
    _source_legend(strip)
    strip.set_xlabel("frame", fontsize=8)
    if has_model:
        per_frame = fig.add_subplot(grid[1, 0])
        hist = fig.add_subplot(grid[1, 1])
        for ax in (per_frame, hist):
            _style(ax)
        per_frame.plot(stats["error"], "o", color="#3a6fd8", ms=3, label="mean reprojection error")
        per_frame.set_ylabel("px (SfM crops)", fontsize=8)
        twin = per_frame.twinx()
        twin.bar(np.arange(T), stats["seen"], color="#999999", alpha=0.3, width=0.8, label="3D points seen")
        twin.set_ylabel("3D points seen", fontsize=8)
        twin.tick_params(labelsize=8)
        per_frame.set_zorder(twin.get_zorder() + 1)
        per_frame.patch.set_visible(False)
        per_frame.legend(fontsize=7, loc="upper left")
        hist.hist(stats["tracks"], bins=np.arange(1.5, max(stats["tracks"].max(), 3) + 1.5), color="#3a6fd8")
        hist.set_xlabel("track length (images per 3D point)", fontsize=8)
        hist.set_ylabel("3D points", fontsize=8)
        per_frame.set_xlim(-0.5, T - 0.5)
        per_frame.set_xlabel("frame", fontsize=8)
    caption = (
        "Frames SfM registered, the registrations kept (consistent with the hand), and where each frame's "
        "object pose came from (sfm.npz source). "
    )
    if has_model:
        caption += (
            "Below: per-frame mean reprojection error and 3D points seen, and the track lengths, of the "
            f"largest SfM model in work/sfm/ ({stats['model']}); errors are in pixels of the enlarged object "
            "crops SfM saw (sfm.json keeps only the mean)."
        )
    else:
        caption += (
            f"The SfM model in work/sfm/{stats['model']} registered {stats['images']} images but keeps no 3D "
            "points, so there are no reprojection errors or track lengths to show."
            if stats is not None
            else "No SfM model is left in work/sfm/ (SfM registered no frame), so there are no reprojection "
            "errors or track lengths to show."
        )
    return Plot("sfm_frames", "sfm", "SfM registration", caption, _png(fig))


def _source_legend(ax) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=SOURCE_COLOURS[c], label=f"{c} {name}") for c, name in OBJECT_SOURCES.items()]
    ax.legend(
        handles=handles, fontsize=7, ncol=4, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False
    )


def rotation_plot(data: ReportData) -> Plot | None:
    track = object_track(data)
    if track is None:
        return None
    angle, total, step = rotation_track(track["rot"])
    source = np.asarray(track["source"]).astype(int)
    frames = np.arange(len(angle))
    fig, axes = _figure(2, 1, height=1.9, sharex=True)
    top, bottom = axes[:, 0]
    top.plot(frames, angle, "-", color="#555555", lw=1)
    top.plot(frames, total, "--", color="#999999", lw=1, label="turned in total")
    for code, colour in SOURCE_COLOURS.items():
        sel = source == code
        if sel.any():
            top.plot(frames[sel], angle[sel], "o", color=colour, ms=4, label=f"{code} {OBJECT_SOURCES[code]}")
    top.set_ylabel("angle vs frame 0 (°)", fontsize=8)
    top.legend(fontsize=7, ncol=5, loc="upper left")
    for k, (axis, colour) in enumerate(zip("xyz", ("#d62728", "#2a9d3a", "#3a6fd8"))):
        bottom.plot(frames[1:], step[:, k], ".-", color=colour, lw=1, ms=3, label=f"{axis} (camera)")
    bottom.set_ylabel("rotation per frame (°)", fontsize=8)
    bottom.set_xlabel("frame", fontsize=8)
    bottom.legend(fontsize=7, ncol=3, loc="best")
    origin = "sequence.npz" if data.sequence is not None else "work/sfm/sfm.npz"
    caption = (
        f"The object's rotation ({origin} object.rot). Top: the angle of its motion since frame 0 (0–180°), "
        "each frame marked by where its pose came from (object.source), and the angle turned in total "
        "(dashed). Bottom: the rotation from the previous frame as a rotation vector per camera axis. A "
        "held object turns smoothly: spikes, or a track that stalls where the hand keeps turning, are "
        "pose errors."
    )
    return Plot("object_rotation", "sfm", "Object rotation track", caption, _png(fig))


def contact_plot(data: ReportData, fingers: int, warn_m: float) -> Plot | None:
    fig, ax = None, None
    origin, offset = "", 0.0
    for side in data.sides:
        found = contact_distances(data, side)
        if found is None:
            continue
        dist, origin, offset = found
        if fig is None:
            fig, axes = _figure()
            ax = axes[0, 0]
        closest = np.sort(dist, -1)[:, :fingers].mean(-1)
        ax.plot(1000 * closest, ".-", color=SIDE_COLOURS[side], lw=1, ms=3,
                label=f"{side}: mean of the {fingers} closest fingers")  # fmt: skip
        ax.plot(1000 * dist.min(-1), ":", color=SIDE_COLOURS[side], lw=1, label=f"{side}: closest finger")
        _shade(ax, ~np.asarray(data.hands[f"{side}.valid"], bool), colour="#999999",
               label="hand interpolated" if side == data.sides[0] else None)  # fmt: skip
    if fig is None:
        return None
    limit = 1000 * (warn_m + offset)
    ax.axhline(limit, color="#d62728", ls=":", lw=1, label=f"{limit:g} mm (warning)")
    ax.set_ylabel("distance to the object (mm)", fontsize=8)
    ax.set_xlabel("frame", fontsize=8)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    inside = (
        f"; keypoints lie ~{1000 * offset:g} mm inside the finger, so contact reads ~{1000 * offset:g} mm"
        if offset
        else ""
    )
    caption = (
        f"After step align: per frame, the distance from the fingers ({origin}{inside}) to the nearest "
        "point of the posed, scaled object cloud. Fingers holding the object touch it (a few mm); large "
        "values mean the object's scale or position relative to the hand is off. Grey bands: frames whose "
        "hand is interpolated."
    )
    return Plot("align_contact", "align", "Hand–object contact per frame", caption, _png(fig))


def _sheet_frames(T: int) -> list[int]:
    return sorted(set(np.linspace(0, T - 1, min(SHEET_FRAMES, T)).round().astype(int).tolist()))


def contact_sheet(data: ReportData) -> Plot | None:
    """Frames spread over the clip with the masks tinted, the fitted hand skeleton and the object points."""
    frames_dir, masks_dir = data.work / "frames", data.work / "masks"
    if data.num_frames is None or not (frames_dir / "00000.png").is_file():
        return None
    K, track = camera(data), object_track(data)
    K_hand = K if data.align is not None or data.hands is None else np.asarray(data.hands["K"], np.float64)
    points = posed_object_points(track) if track is not None else None
    keypoints = {s: hand_keypoints(data, s) for s in data.sides}
    tiles = []
    for t in _sheet_frames(data.num_frames):
        with Image.open(frames_dir / f"{t:05d}.png") as im:
            image = np.asarray(im.convert("RGB"), np.float32)
        mask_path = masks_dir / f"{t:05d}.png"
        if mask_path.is_file():
            with Image.open(mask_path) as im:
                labels = np.asarray(im)
            for label, rgb in OVERLAY_RGB.items():
                sel = labels == label
                image[sel] = (1 - OVERLAY_ALPHA) * image[sel] + OVERLAY_ALPHA * np.asarray(rgb, np.float32)
        tile = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
        s = SHEET_TILE_WIDTH / tile.width
        tile = tile.resize((SHEET_TILE_WIDTH, max(1, round(tile.height * s))), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(tile)
        if K is not None and points is not None:
            for u, v in project(points[t], K) * s:
                draw.point((u, v), fill=(255, 255, 0))
        for side, kp in keypoints.items():
            if kp is not None and K_hand is not None:
                uv = project(kp[t], K_hand) * s
                for a, b in BONES:
                    draw.line([tuple(uv[a]), tuple(uv[b])], fill=SKELETON_RGB[side], width=2)
        note = f"frame {t}"
        if track is not None:
            note += f"  pose: {OBJECT_SOURCES.get(int(track['source'][t]), '?')}"
        draw.rectangle([0, 0, 8 + 6 * len(note), 14], fill=(0, 0, 0))
        draw.text((4, 2), note, fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    h, w = max(t.shape[0] for t in tiles), SHEET_TILE_WIDTH
    cols = min(SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (h + 4), cols * (w + 4), 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (h + 4) : r * (h + 4) + tile.shape[0], c * (w + 4) : c * (w + 4) + w] = tile
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, format="PNG", optimize=True)
    caption = (
        "Frames spread over the clip: mask labels tinted (object green, right hand orange, left hand blue, "
        "unknown grey), the fitted hand keypoints as a skeleton (right magenta, left red)"
        + (" at the aligned translation" if data.align is not None else "")
        + (
            ", and the object points (yellow) posed by object.rot, transl and scale"
            if points is not None
            else ""
        )
        + "."
    )
    return Plot("contact_sheet", "all", "Contact sheet", caption, buf.getvalue())
