"""bench/bench_seed_spread.py without training: seeding a suite dir from a finished one, the spread."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spread_bench():
    sys.path.insert(0, str(ROOT / "bench"))  # it imports its sibling bench_speedup
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_seed_spread", ROOT / "bench" / "bench_seed_spread.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def _finished_suite(path: Path, train: list[str], preprocess_exit: int = 0) -> Path:
    clip = path / "clips" / "mug"
    for sub in ("raw", "sequence", "run"):
        (clip / sub).mkdir(parents=True)
        (clip / sub / "x.txt").write_text(sub)
    (clip / "clip.json").write_text('{"name": "mug"}')
    steps = {
        "synthesise": {"exit_code": 0},
        "preprocess": {"exit_code": preprocess_exit},
        "train": {"exit_code": 0},
    }
    (clip / "steps.json").write_text(json.dumps(steps))
    (path / "suite.json").write_text(
        json.dumps({"suite": "v1", "version": 1, "preset": "demo", "train": train})
    )
    return path


def test_seed_from_suite_copies_inputs_only(spread_bench, tmp_path):
    src = _finished_suite(tmp_path / "src", [])
    dest = tmp_path / "dest"
    spread_bench.seed_from_suite(src, dest, "mug", "demo", ["seed=3"])
    clip = dest / "clips" / "mug"
    assert (clip / "raw" / "x.txt").read_text() == "raw"
    assert (clip / "sequence" / "x.txt").read_text() == "sequence"
    assert not (clip / "run").exists()  # training runs again
    assert set(json.loads((clip / "steps.json").read_text())) == {"synthesise", "preprocess"}
    assert json.loads((dest / "suite.json").read_text())["train"] == ["seed=3"]
    assert not (tmp_path / "dest.partial").exists()


def test_seed_from_suite_names_a_missing_file(spread_bench, tmp_path):
    src = _finished_suite(tmp_path / "src", [])
    with pytest.raises(SystemExit, match=r"clips/pear/steps\.json: missing"):
        spread_bench.seed_from_suite(src, tmp_path / "dest", "pear", "demo", ["seed=1"])
    (src / "suite.json").write_text("{")
    with pytest.raises(SystemExit, match=r"suite\.json: not valid JSON"):
        spread_bench.seed_from_suite(src, tmp_path / "dest", "mug", "demo", ["seed=1"])
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    ("preset", "train", "exit_code", "message"),
    [
        ("fast", [], 0, "not 'fast'"),
        ("demo", ["seed=1"], 0, "without extra settings"),
        ("demo", [], 1, "did not finish"),
    ],
)
def test_seed_from_suite_refuses_other_inputs(spread_bench, tmp_path, preset, train, exit_code, message):
    src = _finished_suite(tmp_path / "src", train, exit_code)
    with pytest.raises(SystemExit, match=message):
        spread_bench.seed_from_suite(src, tmp_path / "dest", "mug", preset, ["seed=1"])


def test_spread_skips_missing_values(spread_bench):
    rows = {
        0: {"cd_cm2": 0.9, "f10": 90.0, "cd_h_cm2": None},
        1: {"cd_cm2": 0.6, "f10": 94.0, "cd_h_cm2": None},
        2: {"cd_cm2": 0.7, "f10": 92.0, "cd_h_cm2": None},
    }
    out = spread_bench.spread(rows)
    assert out["cd_cm2"] == {"median": 0.7, "min": 0.6, "max": 0.9}
    assert out["f10"]["median"] == 92.0
    assert "cd_h_cm2" not in out
