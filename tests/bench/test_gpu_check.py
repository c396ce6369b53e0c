"""Argument handling of bench/gpu_check.py (the GPU check itself needs a GPU; these run anywhere)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error(gpu_check, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        gpu_check.parse_args(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_defaults(gpu_check):
    args = gpu_check.parse_args([])
    assert (args.steps, args.preset, args.device, args.skip_tests, args.sequence) == (
        200,
        "fast",
        "cuda",
        False,
        None,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "--steps must be ≥ 1, got 0"),
        (["--steps", "-3"], "--steps must be ≥ 1, got -3"),
        (["--steps", "ten"], "--steps must be an integer, got 'ten'"),
        (["--profile-steps", "0"], "--profile-steps must be ≥ 1"),
        (["--warmup", "-1"], "--warmup must be ≥ 0"),
        (["--preset", "turbo"], "--preset 'turbo': not a preset (demo, fast, paper"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
    ],
)
def test_bad_values_are_refused(gpu_check, capsys, argv, message):
    assert message in _error(gpu_check, argv, capsys)


def test_bad_paths_are_refused(gpu_check, capsys, tmp_path):
    err = _error(gpu_check, ["--sequence", str(tmp_path / "missing")], capsys)
    assert "not a SEQUENCE dir (no sequence.json in it)" in err
    assert "is a folder; give a JSON file path" in _error(gpu_check, ["--out", str(tmp_path)], capsys)


def test_no_cuda_is_a_clear_error(gpu_check, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu.json"
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--out", str(out), "--skip-tests"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "gpu_check: error: CUDA is not available" in err and "--device cpu" in err
    assert not out.exists()  # refused before any work


def test_wrapper_reports_errors_and_no_cuda(tmp_path):
    """The shell wrapper passes the arguments through and keeps the exit status and message."""
    env = os.environ | {"PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    script = str(ROOT / "bench" / "gpu_check.sh")
    bad = subprocess.run([script, "--steps", "0"], env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--steps must be ≥ 1" in bad.stderr
    out = tmp_path / "gpu.json"
    none = subprocess.run([script, "--out", str(out)], env=env, capture_output=True, text=True, check=False)
    assert none.returncode == 2 and "CUDA is not available" in none.stderr, none.stderr
    assert not out.exists()


def test_junit_counts(gpu_check, tmp_path):
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="a" name="ok"/>'
        '<testcase classname="a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="a" name="broken"><error message="y"/></testcase>'
        '<testcase classname="a" name="later"><skipped message="needs a CUDA GPU"/></testcase>'
        "</testsuite></testsuites>"
    )
    counts = gpu_check.junit_counts(report)
    assert (counts["passed"], counts["failed"], counts["errors"], counts["skipped"]) == (1, 1, 1, 1)
    assert counts["failing"] == ["a::bad", "a::broken"]
    assert gpu_check.junit_counts(tmp_path / "none.xml")["errors"] == 1


def test_gpu_test_files_are_found(gpu_check):
    files = gpu_check.gpu_test_files()
    assert "tests/test_cuda.py" in files and "tests/fields/test_tcnn.py" in files
