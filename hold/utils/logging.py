"""One logging module for every stage: a human-readable log file, a CSV of scalars, and W&B.

W&B runs offline inside the run dir unless an API key is configured (DESIGN.md §7); ``WANDB_MODE`` in
the environment wins over ``auto`` so tests and CI can force ``disabled``.
"""

from __future__ import annotations

import csv
import logging
import netrc
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hold.config import HoldConfig, LoggingConfig, config_to_dict
from hold.utils.io import write_png

LOGGER_NAME = "hold"
_WANDB_HOST = "api.wandb.ai"


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest and tqdm swap it after set-up)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def get_logger(name: str | None = None) -> logging.Logger:
    """The ``hold`` logger or one of its children (``hold.train``, ``hold.preprocess.sfm`` …)."""
    return logging.getLogger(LOGGER_NAME if name is None else f"{LOGGER_NAME}.{name}")


def setup_logging(log_file: str | Path | None = None, console_level: str = "info") -> logging.Logger:
    """Send ``hold`` log records to stderr and, when given, to ``log_file`` (info and above)."""
    logger = get_logger()
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    console = _CurrentStderrHandler()
    console.setLevel(console_level.upper())
    console.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    logger.addHandler(console)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    logger.propagate = False
    return logger


def wandb_api_key_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(_WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(setting: str) -> str:
    """``online`` / ``offline`` / ``disabled`` from the config setting, the environment and the API key."""
    if setting != "auto":
        return setting
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if wandb_api_key_available() else "offline"


class RunLogger:
    """Scalars to ``logs/metrics.csv`` (long format: one row per value) and W&B; images to disk and W&B.

    Args:
        logs_dir: the run's ``logs/`` folder.
        cfg: the resolved run config (sent to W&B as the run config).
        stage: label of the stage logging through this instance (``stage1`` …), a CSV column.
    """

    CSV_FIELDS = ("stage", "step", "name", "value", "wall_time")

    def __init__(self, logs_dir: str | Path, cfg: HoldConfig, stage: str):
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.stage = stage
        self.csv_path = self.logs_dir / "metrics.csv"
        new_file = not self.csv_path.exists()
        self._csv_file = open(self.csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed in finish)
        self._csv = csv.writer(self._csv_file)
        if new_file:
            self._csv.writerow(self.CSV_FIELDS)
        self._t0 = time.time()
        self.wandb_mode = resolve_wandb_mode(cfg.logging.wandb)
        self._wandb_run = self._start_wandb(cfg, cfg.logging) if self.wandb_mode != "disabled" else None

    def _start_wandb(self, cfg: HoldConfig, log_cfg: LoggingConfig) -> Any:
        import wandb

        return wandb.init(
            project=log_cfg.project,
            name=f"{cfg.name}-{self.stage}",
            group=cfg.name,
            dir=str(self.logs_dir),
            mode=self.wandb_mode,
            config=config_to_dict(cfg),
            reinit="finish_previous",
        )

    @property
    def wandb_dir(self) -> Path | None:
        return Path(self._wandb_run.dir).parent if self._wandb_run is not None else None

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        wall = round(time.time() - self._t0, 3)
        for name, value in values.items():
            self._csv.writerow((self.stage, step, name, float(value), wall))
        self._csv_file.flush()
        if self._wandb_run is not None:
            self._wandb_run.log({f"{self.stage}/{k}": float(v) for k, v in values.items()}, step=step)

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> list[Path]:
        """Save uint8 images as ``logs/images/<stage>/<name>_<step>.png`` and send them to W&B."""
        paths = []
        for name, image in images.items():
            path = self.logs_dir / "images" / self.stage / f"{name}_{step:07d}.png"
            write_png(path, image)
            paths.append(path)
        if self._wandb_run is not None:
            import wandb

            self._wandb_run.log({f"{self.stage}/{k}": wandb.Image(v) for k, v in images.items()}, step=step)
        return paths

    def finish(self) -> None:
        self._csv_file.close()
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None
