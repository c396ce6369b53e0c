from __future__ import annotations

import csv
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from hold.config import load_config
from hold.run_logger import RunLogger, resolve_wandb_mode
from hold.utils.logging import get_logger, setup_logging


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


def wandb_records(run_dir: Path, kind: str) -> list[dict[str, str]]:
    """The ``kind`` records ("summary", "history") of an offline run's .wandb file, as {key: JSON value}.

    The file is a LevelDB-style log (32 KiB blocks of CRC, length, type, data) of W&B's Record protos
    after a 7-byte header; W&B 0.31 ships no Python reader for it.
    """
    from wandb.proto import wandb_internal_pb2

    data = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    block, pos, records, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind_byte = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind_byte == 0):  # block trailer or padding
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind_byte in (1, 2):  # full record, first fragment
            pending = chunk
        else:  # middle, last fragment
            pending += chunk
        if kind_byte in (1, 4):
            records.append(pending)
    out = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == kind:
            items = getattr(record, kind).update if kind == "summary" else getattr(record, kind).item
            out.append({i.key or "/".join(i.nested_key): i.value_json for i in items})
    return out


@pytest.mark.slow
def test_offline_wandb_holds_the_meshes_the_summary_and_the_report(
    tiny_synthetic, tmp_path: Path, monkeypatch
):
    """Issue 18, part 3: the object mesh of each re-meshing as a W&B 3D object (and a .glb on disk), the
    stage timings and evaluation metrics in the summary run, the preprocessing report attached."""
    from hold.run_logger import SUMMARY_FILE, write_run_summary
    from hold.stages import run_stages

    monkeypatch.setenv("WANDB_MODE", "offline")
    seq = tmp_path / "seq"
    shutil.copytree(tiny_synthetic.oracle_dir, seq)
    (seq / "report.html").write_text('<html><body><h2 id="step-masks">masks</h2></body></html>')
    steps = ["train.stage1_steps=4", "train.checkpoint_every=2", "train.image_every=0", "train.mesh_every=2"]
    small = ["rays.frames_per_step=2", "rays.rays_per_frame=16", "train.mesh_resolution=24"]
    cfg = load_config("demo", [*small, *steps, "train.final_mesh_resolution=24"])
    run = run_stages(seq, tmp_path / "run", cfg, [1])
    write_run_summary(
        run.logs, cfg, {"metrics": {"cd_cm2": 0.5, "object_pose": {"rotation_deg": {"median": 2.0}}}}
    )

    meshes = sorted(p.name for p in (run.logs / "meshes" / "stage1").glob("*.glb"))
    assert meshes == ["object_mesh_0000002.glb", "object_mesh_0000004.glb"]
    summary = json.loads((run.logs / SUMMARY_FILE).read_text())
    assert summary["timings"]["stage1_s"] > 0 and summary["metrics"]["cd_cm2"] == 0.5

    runs = sorted((run.logs / "wandb").glob("offline-run-*"))
    summary_runs = [r for r in runs if f"-{summary['wandb_id']}" in r.name]  # "…-ID" or "…-ID-1"
    (stage_run,) = [r for r in runs if r not in summary_runs]
    assert len(summary_runs) == 2  # written by hold-train, then resumed (here by hand, as hold-eval does)
    assert len(list((stage_run / "files/media/object3D").rglob("*.glb"))) == 2
    assert any("stage1/object_mesh/_type" in h for h in wandb_records(stage_run, "history"))
    assert any("seconds" in s for s in wandb_records(stage_run, "summary"))
    train_summary = {k: v for s in wandb_records(summary_runs[0], "summary") for k, v in s.items()}
    assert float(train_summary["timings/stage1_s"]) > 0 and train_summary["completed_stages"] == '"1"'
    assert list((summary_runs[0] / "files/media/html").glob("*.html"))
    eval_summary = {k: v for s in wandb_records(summary_runs[1], "summary") for k, v in s.items()}
    assert json.loads(eval_summary["metrics/cd_cm2"]) == 0.5
    assert json.loads(eval_summary["metrics/object_pose/rotation_deg/median"]) == 2.0
    assert "timings/stage1_s" in eval_summary
