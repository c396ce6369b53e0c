from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from hold.config import load_config
from hold.utils.logging import RunLogger, get_logger, resolve_wandb_mode, setup_logging


def test_wandb_mode_resolution(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with a key
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == "disabled"
    assert resolve_wandb_mode("offline") == "offline"


def test_log_file_and_csv(tmp_path: Path):
    setup_logging(tmp_path / "hold.log")
    get_logger("train").info("stage 1 starts")
    cfg = load_config("demo", ["logging.wandb=disabled"])
    logger = RunLogger(tmp_path, cfg, stage="stage1")
    logger.log_scalars(0, {"loss": 1.5, "psnr": 12.0})
    logger.log_scalars(10, {"loss": 0.5})
    paths = logger.log_images(10, {"render": np.zeros((4, 5, 3), np.uint8)})
    logger.finish()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").read_text().splitlines()))
    assert [(r["step"], r["name"], float(r["value"])) for r in rows] == [
        ("0", "loss", 1.5),
        ("0", "psnr", 12.0),
        ("10", "loss", 0.5),
    ]
    assert paths[0].is_file() and "stage1" in str(paths[0])
    assert "stage 1 starts" in (tmp_path / "hold.log").read_text()


@pytest.mark.slow
def test_wandb_offline_run_is_written_in_run_dir(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = load_config("demo", ["logging.wandb=offline"])
    logger = RunLogger(tmp_path / "logs", cfg, stage="stage1")
    logger.log_scalars(1, {"loss": 2.0})
    logger.finish()
    runs = list((tmp_path / "logs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
