"""The demo driver: step order, stopping at the first failure, the summary (steps stubbed)."""

from __future__ import annotations

import json
from pathlib import Path

from hold import demo
from hold.demo import DemoStep, StepTiming, demo_steps, run_steps, summarise
from hold.utils.io import write_json


def test_demo_runs_the_pipeline_in_order(tmp_path: Path):
    steps = demo_steps(tmp_path)
    assert [s.name for s in steps] == ["synthesise", "preprocess", "train", "export", "evaluate"]
    train = steps[2].argv
    assert train[train.index("--config") + 1] == "demo" and "--stages" not in train  # all three stages
    assert steps[3].argv == [str(tmp_path / "run"), "--out", str(tmp_path / "export")]


def test_hand_estimates_come_from_mediapipe_when_its_environment_exists(tmp_path: Path, monkeypatch):
    for ready, expected in ((True, "mediapipe"), (False, "import")):
        monkeypatch.setattr(demo, "environment_ready", lambda ready=ready: ready)
        assert demo.hands_backend("auto") == expected
        assert demo.hands_backend("import") == "import"
        assert f"hands.backend={expected}" in demo_steps(tmp_path, demo.hands_backend("auto"))[1].argv
    hands = {
        "backend": "mediapipe",
        "mediapipe": {"mediapipe_version": "0.10.21", "frames_with_detection": 28},
    }
    write_json(
        tmp_path / "sequence" / "work" / "hands" / "hands.json",
        hands | {"sides": ["right"], "right": {"valid": 28}},
    )
    text, facts = summarise(tmp_path, [StepTiming("synthesise", 1.0, 0), StepTiming("preprocess", 1.0, 0)])
    assert "hand estimates: mediapipe 0.10.21 hand landmarks (28 frames detected" in text
    assert facts["hands_backend"] == "mediapipe"


def test_run_steps_stops_at_the_first_failure():
    calls = []

    def step(code: int):
        return lambda argv: calls.append(argv) or code

    timings = run_steps(
        [DemoStep("a", step(0), ["1"]), DemoStep("b", step(3), ["2"]), DemoStep("c", step(0), ["3"])]
    )
    assert [(t.name, t.exit_code) for t in timings] == [("a", 0), ("b", 3)]
    assert calls == [["1"], ["2"]]


def test_summary_shows_stage_times_metrics_and_paths(tmp_path: Path):
    run, export = tmp_path / "run", tmp_path / "export"
    write_json(run / "state.json", {"completed_stages": {"1": {"seconds": 12.5}, "3": {"seconds": 30.0}}})
    write_json(
        run / "metrics.json", {"mpjpe_mm": 7.25, "cd_cm2": 0.5, "f5": 60.0, "f10": 90.0, "cd_h_cm2": 4.0}
    )
    (export / "frames").mkdir(parents=True)
    (export / "object_canonical.ply").write_text("ply")
    timings = [
        StepTiming(name, 1.0, 0) for name in ("synthesise", "preprocess", "train", "export", "evaluate")
    ]
    text, facts = summarise(tmp_path, timings)
    assert "stage 1 (pretrain)" in text and "stage 3 (retrain)" in text
    assert "MPJPE 7.2 mm" in text and "F10 90.0 %" in text
    assert (
        str(export / "object_canonical.ply") in text and "hand_canonical.ply" not in text
    )  # only what exists
    assert facts["ok"] and facts["train_stage_seconds"] == {"1": 12.5, "3": 30.0}
    assert facts["metrics"]["cd_cm2"] == 0.5 and facts["total_seconds"] == 5.0
    assert len(text.splitlines()) <= 25  # one screen


def test_main_writes_the_summary_and_returns_the_failing_code(tmp_path: Path, monkeypatch, capsys):
    def fake_steps(out: Path, hands: str):
        return [DemoStep("synthesise", lambda argv: 0, []), DemoStep("preprocess", lambda argv: 2, [])]

    monkeypatch.setattr(demo, "demo_steps", fake_steps)
    assert demo.main([str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "FAILED (exit 2)" in out and "stopped at 'preprocess'" in out
    facts = json.loads((tmp_path / "summary.json").read_text())
    assert not facts["ok"] and (tmp_path / "summary.txt").read_text().strip() == out.strip()
