from __future__ import annotations

from pathlib import Path

import pytest

from hold.config import load_config
from hold.run import RunDir, RunDirError


def test_create_saves_config_and_provenance(tmp_path: Path, sequence_dir: Path):
    cfg = load_config("demo", ["seed=5"])
    run = RunDir.create(tmp_path / "run", cfg, sequence_dir)
    assert run.load_config() == cfg
    assert (run.root / "run.json").is_file() and run.logs.is_dir()
    assert run.completed_stages() == []


def test_resume_with_same_config_and_stage_state(tmp_path: Path):
    cfg = load_config("demo")
    run = RunDir.create(tmp_path / "run", cfg)
    run.mark_stage_done(1, {"steps": 10})
    again = RunDir.create(tmp_path / "run", cfg)
    assert again.completed_stages() == [1]
    assert again.state()["completed_stages"]["1"]["steps"] == 10


def test_resume_with_other_config_is_refused(tmp_path: Path):
    RunDir.create(tmp_path / "run", load_config("demo"))
    with pytest.raises(RunDirError, match=r"different config.*seed: 0 → 9"):
        RunDir.create(tmp_path / "run", load_config("demo", ["seed=9"]))


def test_not_a_run_dir(tmp_path: Path):
    with pytest.raises(RunDirError, match="config.yaml: missing"):
        RunDir(tmp_path).load_config()
