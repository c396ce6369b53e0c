"""The preprocessing chain: RAW dir → ``SEQ/work/<step>/`` → SEQUENCE dir (docs/architecture.md, §4).

Each step reads earlier steps' dirs and writes its own, with ``done.json`` last; a finished step is
skipped unless ``redo`` is set, so any step can be re-run alone (``--steps sfm --redo``). At the end,
and when a step fails, ``SEQ/report.html`` and ``report.json`` judge every step (``preprocess.report``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hold.config import save_config
from hold.utils.external import resolve_device
from hold.utils.logging import get_logger
from preprocess import STEPS
from preprocess.config import PreprocessConfig, step_config
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo
from preprocess.report import StepFailure, write_report_safely
from preprocess.workdir import WORK_DIR, StepDir, require

log = get_logger("preprocess")
INPUTS = {
    "frames": (),
    "hands": ("frames",),
    "masks": ("frames",),
    "sfm": ("frames", "masks", "hands"),  # hands: poses of the frames SfM leaves out
    "align": ("hands", "sfm"),
    "build": ("frames", "masks", "hands", "sfm", "align"),
}
HAND_PROMPTED_MASKS = ("sam2", "static")
"""Mask backends that need the ``hands`` step's output."""


def step_inputs(step: str, cfg: PreprocessConfig) -> tuple[str, ...]:
    """The finished steps ``step`` reads with this config."""
    if step == "masks" and cfg.masks.backend in HAND_PROMPTED_MASKS:
        return ("frames", "hands")
    return INPUTS[step]


@dataclass
class PipelineResult:
    """What ``run_pipeline`` did.

    Attributes:
        ran: steps computed in this call, with their run time in seconds.
        skipped: steps whose finished output was reused.
        summaries: each requested step's summary (from its ``done.json``).
    """

    ran: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    summaries: dict[str, dict] = field(default_factory=dict)


def frame_counts(seq: Path) -> dict[str, int]:
    """Frames in each finished step's output (to catch stale outputs after a partial ``--redo``)."""
    work = seq / WORK_DIR
    counts: dict[str, int] = {}
    if StepDir(seq, "frames").is_done():
        counts["frames"] = FramesInfo.load(work / "frames" / "frames.json").num_frames
    if StepDir(seq, "masks").is_done():
        counts["masks"] = len(list((work / "masks").glob("[0-9]*.png")))
    for step, key in (("hands", None), ("sfm", "registered"), ("align", "object.transl")):
        if StepDir(seq, step).is_done():
            with np.load(work / step / f"{step}.npz") as f:
                name = key or next(k for k in f.files if k.endswith(".valid"))
                counts[step] = int(f[name].shape[0])
    return counts


def check_frame_counts(seq: Path, step: str, inputs: tuple[str, ...]) -> None:
    """Raise when the finished ``inputs`` of ``step`` disagree on the number of frames."""
    counts = {k: v for k, v in frame_counts(seq).items() if k in inputs}
    if len(set(counts.values())) > 1:
        found = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise PreprocessError(
            step, f"frame counts differ between masks, hands and frames ({found}); the older outputs are stale: "
            f"re-run them with --steps {','.join(counts)} --redo", seq / WORK_DIR,
        )  # fmt: skip


def run_step(step: str, raw: Path, seq: Path, cfg: PreprocessConfig) -> dict:
    """Compute one step into its (emptied) working dir; returns its summary."""
    work = seq / WORK_DIR
    inputs = step_inputs(step, cfg)
    for needed in inputs:
        require(seq, needed, step)
    check_frame_counts(seq, step, inputs)
    out = StepDir(seq, step).start()
    device = resolve_device(cfg.device)
    if step == "frames":
        from preprocess.frames import run_frames

        info = run_frames(raw, out, cfg.frames)
        return {
            "num_frames": info.num_frames,
            "image_size": list(info.image_size),
            "camera_json": info.K is not None,
        }
    if step == "masks":
        from preprocess.masks import run_masks

        return run_masks(raw, work, out, cfg.masks, cfg.hand, device)
    if step == "hands":
        from preprocess.hands import run_hands

        return run_hands(raw, work / "frames", out, cfg.hands, cfg.hand, cfg.camera, device)
    if step == "sfm":
        from preprocess.sfm import run_sfm

        return run_sfm(
            raw, work / "frames", work / "masks", work / "hands", out, cfg.sfm, cfg.camera, cfg.hand
        )
    if step == "align":
        from preprocess.align import run_align

        return run_align(work / "hands", work / "sfm", out, cfg.align, cfg.hand, cfg.seed)
    from preprocess.build import run_build

    return run_build(raw, seq, work, cfg.build, cfg.hand)


SEQ_MANAGED = ("images", "masks", "gt", WORK_DIR)
"""Folders of a SEQUENCE dir that preprocessing writes or replaces."""
RAW_INPUTS = ("frames", "masks", "gt")
"""Folders of a RAW dir that preprocessing reads."""


def check_separate(raw: Path, seq: Path, step: str) -> None:
    """Refuse a SEQ dir that is the RAW dir or lies in, or holds, what the other one keeps: writing it
    would overwrite or delete the inputs (RAW/masks, RAW/gt)."""
    r, s = raw.resolve(), seq.resolve()
    inside = lambda a, b: a == b or b in a.parents  # noqa: E731  (a inside b)
    clash = r == s or any(inside(r, s / d) for d in SEQ_MANAGED) or any(inside(s, r / d) for d in RAW_INPUTS)
    if clash:
        raise PreprocessError(
            step,
            f"the SEQUENCE dir {seq} overlaps the RAW dir {raw}: writing it would overwrite the inputs; "
            "choose a SEQUENCE dir outside the RAW dir (e.g. a sibling folder)",
            seq,
        )


def run_pipeline(
    raw: str | Path,
    seq: str | Path,
    steps: list[str] | None = None,
    redo: bool = False,
    cfg: PreprocessConfig | None = None,
) -> PipelineResult:
    """Run ``steps`` (default: all, in order) from RAW into SEQ.

    Args:
        raw: the RAW dir (docs/formats.md).
        seq: the SEQUENCE dir to write; working dirs go to ``SEQ/work/``.
        steps: a subset of ``preprocess.STEPS``.
        redo: recompute the requested steps even when their output is finished.
        cfg: settings; None for the defaults.

    Raises:
        PreprocessError: naming the step, the file and the problem.
    """
    raw, seq = Path(raw), Path(seq)
    cfg = cfg or PreprocessConfig()
    steps = [s for s in STEPS if s in (steps or STEPS)]
    if not raw.is_dir():
        raise PreprocessError(steps[0], "RAW dir does not exist", raw)
    check_separate(raw, seq, steps[0])
    (seq / WORK_DIR).mkdir(parents=True, exist_ok=True)
    save_config(cfg, seq / WORK_DIR / "config.yaml")
    result = PipelineResult()
    for step in steps:
        d = StepDir(seq, step)
        if d.is_done() and not redo:
            if d.done_info().get("config") != step_config(step, cfg):
                log.warning(
                    "%s: reusing the finished output made with another config; pass --redo to recompute", step
                )
            log.info("%s: done already (%s), skipped", step, d.path)
            result.skipped.append(step)
            result.summaries[step] = d.done_info().get("summary", {})
            continue
        log.info("%s: running", step)
        start = time.perf_counter()
        threads = torch.get_num_threads()
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        try:
            summary = run_step(step, raw, seq, cfg)
            seconds = time.perf_counter() - start
            d.finish(step_config(step, cfg), summary, seconds)
        except Exception as e:  # the report says which step failed and why; the error goes on unchanged
            write_report_safely(seq, cfg, StepFailure.from_error(step, e))
            raise
        finally:
            torch.set_num_threads(threads)
        log.info("%s: finished in %.1f s", step, seconds)
        result.ran[step] = seconds
        result.summaries[step] = summary
    write_report_safely(seq, cfg)
    return result
