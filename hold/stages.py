"""The three-stage run of `hold-train` (docs/architecture.md): pretrain → refine poses → retrain, resumable.

Every stage writes into ``RUN/stage<k>/``; a finished stage is recorded in ``RUN/state.json`` and skipped
when the run is started again, and a stage that was interrupted resumes from its last checkpoint
(stages 1 and 3: Lightning's ``ckpts/last.ckpt``; stage 2: ``progress.pt`` after each chunk).
Stage 3 trains on stage 2's refined poses, its networks and latent codes re-initialised (HOLD) or
started from stage 1's (``train.stage3_init``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import convert_inf

from hold.config import HoldConfig
from hold.data.sequence import Sequence, read_sequence
from hold.diagnosis import REPORT_NAME
from hold.geometry.mesh import EmptySurfaceError
from hold.refine.stage import REFINED_POSES, run_refinement, with_refined_poses
from hold.run import RunDir, RunDirError
from hold.run_logger import RunLogger, write_run_summary
from hold.system import HoldSystem
from hold.utils.io import atomic_open
from hold.utils.logging import get_logger, setup_logging

log = get_logger("train")

STAGE_NAMES = {1: "pretrain", 2: "pose refinement", 3: "retrain"}


PROGRESS_UPDATES = 20
"""Updates of a stage's progress bar when the console is not a terminal (a log file)."""


class StageNotAvailableError(RuntimeError):
    """A stage that this version of hold cannot run (kept for callers; every stage runs now)."""


class StageProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar named after the stage (``stage 1 (pretrain)``, not ``Epoch 0``), with its ETA;
    in a log file it updates ``PROGRESS_UPDATES`` times per stage instead of every step."""

    def __init__(self, stage: int, steps: int):
        super().__init__(refresh_rate=1 if sys.stderr.isatty() else max(1, steps // PROGRESS_UPDATES))
        self.label = f"stage {stage} ({STAGE_NAMES[stage]})"

    @property
    def train_description(self) -> str:
        return self.label

    def on_train_epoch_start(self, trainer: pl.Trainer, *args) -> None:  # as Lightning's, without "Epoch 0"
        bar = self.train_progress_bar
        bar.reset(total=convert_inf(self.total_train_batches))
        bar.initial = 0

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self._train_progress_bar is not None:  # clear it now, not at exit after the error line
            self._train_progress_bar.close()

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


def run_stages(sequence_dir: Path, run_dir: Path, cfg: HoldConfig, stages: list[int]) -> RunDir:
    """Run (or resume) the given stages of a training run.

    Args:
        sequence_dir: SEQUENCE dir (validated here).
        run_dir: RUN dir, created or resumed (same config required).
        cfg: resolved config.
        stages: subset of 1, 2, 3 in order.
    """
    seq = read_sequence(sequence_dir)
    r, q = Path(run_dir).resolve(), Path(sequence_dir).resolve()
    if r == q or q in r.parents or r in q.parents:
        raise RunDirError(
            f"--out {run_dir}: the RUN dir would overlap the SEQUENCE dir {sequence_dir}; choose a separate folder"
        )
    run = RunDir.create(run_dir, cfg, sequence_dir)
    setup_logging(run.logs / "hold.log", cfg.logging.console_level)
    log.info("run dir: %s (config: %s)", run.root, run.config_path)
    if run.changed_on_resume:
        log.info("resuming with %s (saved in %s)", "; ".join(run.changed_on_resume), run.config_path)
    try:
        for stage in stages:
            if stage in run.completed_stages():
                log.info("stage %d (%s) already finished: skipped", stage, STAGE_NAMES[stage])
                continue
            if stage == 2:
                log.info("stage 2 (%s): outputs in %s", STAGE_NAMES[2], run.stage_dir(2))
                info = run_refinement(run, cfg, seq)
            elif stage == 1:
                info = train_stage(run, cfg, seq, 1, cfg.train.stage1_steps)
            else:
                info = train_stage(run, cfg, stage3_sequence(run, seq), 3, cfg.train.stage3_steps)
            run.mark_stage_done(stage, info)
    except KeyboardInterrupt:
        raise
    except Exception as e:
        with contextlib.suppress(OSError):  # a full disk or a read-only dir: the original error is the news
            summarise_run(
                run, cfg, sequence_dir, stopped=str(e).splitlines()[0] if str(e) else type(e).__name__
            )
        raise
    summarise_run(run, cfg, sequence_dir)
    return run


def summarise_run(run: RunDir, cfg: HoldConfig, sequence_dir: Path, stopped: str | None = None) -> None:
    """The run's summary (logs/summary.json and its W&B summary run): stage timings from state.json,
    whether it stopped and why, and the preprocessing report attached."""
    stages = run.state()["completed_stages"]
    timings = {f"stage{k}_s": v["seconds"] for k, v in sorted(stages.items()) if "seconds" in v}
    timings["train_s"] = round(sum(timings.values()), 1)
    updates = {"completed_stages": ",".join(sorted(stages)), "timings": timings, "stopped": stopped or ""}
    write_run_summary(run.logs, cfg, updates, report=Path(sequence_dir) / REPORT_NAME)


def stage3_sequence(run: RunDir, seq: Sequence) -> Sequence:
    """The sequence stage 3 trains on: ``seq`` with stage 2's refined poses when stage 2 finished."""
    refined = run.stage_dir(2) / REFINED_POSES
    if 2 in run.completed_stages() and refined.is_file():
        log.info("stage 3: training on the refined poses of %s", refined)
        return with_refined_poses(seq, refined)
    log.warning("stage 3: stage 2 has not run in %s; training on the sequence's initial poses", run.root)
    return seq


def resume_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint of ``ckpt_dir`` that loads (``last.ckpt`` first); None when there is none.

    A checkpoint cut short (a kill while it was written, a full disk) is skipped with a warning naming
    it, so the stage resumes from the previous intact one instead of failing on every rerun.
    """
    if not ckpt_dir.is_dir():
        return None
    others = sorted(
        (p for p in ckpt_dir.glob("*.ckpt") if p.name != "last.ckpt"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in [ckpt_dir / "last.ckpt", *others]:
        if not path.is_file():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if not isinstance(state, dict) or "state_dict" not in state:
                raise ValueError("no state_dict inside")
        except Exception as e:  # any unreadable file: torch, pickle and zip errors differ by version
            log.warning(
                "%s: unreadable checkpoint (%s): trying an older one", path, str(e).splitlines()[0][:120]
            )
            continue
        return path
    return None


def train_stage(run: RunDir, cfg: HoldConfig, seq: Sequence, stage: int, steps: int) -> dict:
    """Train HOLD-Net for ``steps`` steps from scratch (or from this stage's last intact checkpoint)."""
    stage_dir = run.stage_dir(stage)
    ckpt_dir = stage_dir / "ckpts"
    last = resume_checkpoint(ckpt_dir)
    log.info(
        "stage %d (%s): %d steps, outputs in %s%s",
        stage,
        STAGE_NAMES[stage],
        steps,
        stage_dir,
        f", resuming from {last}" if last is not None else "",
    )
    pl.seed_everything(cfg.seed + stage, verbose=False)
    run_logger = RunLogger(run.logs, cfg, f"stage{stage}")
    system = HoldSystem(cfg, seq, run_logger, steps, stage=stage)
    if stage == 3 and cfg.train.stage3_init == "stage1" and last is None:
        log.info("stage 3: networks start from %s (train.stage3_init=stage1)", run.stage_dir(1) / "model.pt")
        system.model.load_fields(run.stage_dir(1) / "model.pt")
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="auto",
        devices=1,
        logger=False,
        callbacks=[
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="{step}",
                every_n_train_steps=cfg.train.checkpoint_every,
                save_last=True,
                save_top_k=1,
                monitor=None,
            ),
            StageProgressBar(stage, steps),
        ],
        gradient_clip_val=cfg.optim.grad_clip or None,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=stage_dir,
    )
    start = time.perf_counter()
    try:
        trainer.fit(system, ckpt_path=last)
        seconds = time.perf_counter() - start
        run_logger.set_summary({"seconds": round(seconds, 1), "steps": trainer.global_step})
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1): keep it an interrupt (exit 130)
            raise KeyboardInterrupt from None
        raise
    finally:
        run_logger.finish()
    if trainer.global_step < steps:
        raise KeyboardInterrupt  # fit returned early (interrupt): leave the stage unfinished to resume
    with atomic_open(stage_dir / "model.pt", "wb") as f:
        torch.save(system.model.state_dict(), f)
    try:
        mesh = system.model.extract_object_mesh(cfg.train.final_mesh_resolution)
        with atomic_open(stage_dir / "object_canonical.ply", "wb") as f:
            f.write(mesh.export(file_type="ply"))
    except EmptySurfaceError as e:
        log.warning("stage %d: no object surface to save: %s", stage, e)
    log.info("stage %d finished in %.0f s: %s", stage, seconds, stage_dir / "model.pt")
    return {"steps": steps, "seconds": round(seconds, 1)}
