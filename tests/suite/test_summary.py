"""The summary table: median and worst over finished clips, failures as rows, per-noise groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hold.suite.runner import RunOptions, SuiteRunError, prepare_output
from hold.suite.spec import load_suite
from hold.suite.summary import aggregate, write_summary


def result(name: str, noise: str, status: str = "ok", **metrics: float) -> dict:
    return {
        "name": name,
        "tags": {"object": "can", "texture": "low", "noise": noise, "motion": "90°", "camera": "static"},
        "status": status,
        "failed_step": None if status == "ok" else "preprocess",
        "error": None if status == "ok" else "sfm: SfM registered only 0 of 32 frames",
        "seconds": 10.0,
        "preprocess": {"sfm_registered": 16, "sfm_frames": 32, "sfm_pose_outliers": 0},
        "degraded": [],
        "metrics": metrics or None,
    }


def test_worst_is_per_column_and_signed_errors_by_magnitude():
    rows = [
        result("a", "mild", cd_cm2=0.5, f10=90.0, object_scale_error_pct=-60.0),
        result("b", "mild", cd_cm2=2.0, f10=95.0, object_scale_error_pct=10.0),
        result("c", "mild", status="failed"),
    ]
    stats = aggregate(rows)
    assert stats["median"]["metrics.cd_cm2"] == pytest.approx(1.25)
    assert stats["worst"]["metrics.cd_cm2"] == 2.0
    assert stats["worst"]["metrics.f10"] == 90.0  # smaller is worse
    assert stats["worst"]["metrics.object_scale_error_pct"] == -60.0
    assert stats["median"]["registered_pct"] == 50.0


def test_summary_lists_failures_and_groups_by_noise(tmp_path: Path):
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(json.dumps({"clips": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}))
    suite = load_suite(suite_file)
    rows = [
        result("a", "mild", cd_cm2=0.5),
        result("b", "realistic", cd_cm2=3.0),
        result("c", "realistic", status="failed"),
    ]
    dirs = []
    for row in rows:
        (tmp_path / row["name"]).mkdir()
        (tmp_path / row["name"] / "result.json").write_text(json.dumps(row))
        dirs.append(tmp_path / row["name"])
    summary = write_summary(tmp_path, suite, "demo", [*dirs, tmp_path / "missing"])
    assert summary["clips_ok"] == 2 and summary["clips_not_run"] == ["missing"]
    assert summary["by_noise"]["realistic"]["clips"] == ["b", "c"]
    assert summary["by_noise"]["realistic"]["median"]["metrics.cd_cm2"] == 3.0
    table = (tmp_path / "summary.md").read_text()
    assert "| **median, realistic noise** |" in table and "1/2 ok" in table
    assert "- c: preprocess: sfm: SfM registered only 0 of 32 frames" in table


def test_an_output_dir_holds_one_kind_of_run(tmp_path: Path):
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(json.dumps({"clips": [{"name": "a"}]}))
    suite = load_suite(suite_file)
    out = tmp_path / "out"
    out.mkdir()
    (out / "suite.log").write_text("the background run's log\n")
    prepare_output(out, suite, RunOptions(preset="demo"))
    prepare_output(out, suite, RunOptions(preset="demo"))
    with pytest.raises(SuiteRunError, match="preset='demo'"):
        prepare_output(out, suite, RunOptions(preset="fast"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("user data")
    with pytest.raises(SuiteRunError, match="holds no suite.json"):
        prepare_output(foreign, suite, RunOptions())


def test_object_pose_sources_fill_the_columns_and_the_degraded_list(tmp_path: Path):
    from hold.suite.result import degradations, preprocess_facts

    sfm = tmp_path / "work" / "sfm"
    sfm.mkdir(parents=True)
    warning = "object poses: SfM registered 8/32 frames reliably; 24 anchored to the hand, 0 interpolated"
    (sfm / "sfm.json").write_text(
        json.dumps({
            "registered": 10, "num_frames": 32, "pose_outliers": 2, "mode": "sfm", "warnings": [warning],
            "sources": {"sfm_registered": 8, "interpolated": 0, "hand_anchored": 24, "other_fallback": 0},
        })
    )  # fmt: skip
    facts = preprocess_facts(tmp_path)
    assert degradations(facts) == [warning]
    stand_in = "stage 3 ended without an object surface (no stage3/object_canonical.ply): stage 1 is used"
    assert degradations(facts, {"reconstruction": {"fallback": stand_in}}) == [
        f"final model: {stand_in}",
        warning,
    ]
    level = {"object_mesh": {"level_fit": {"fallback": "no object pixels; export.object_level_beta used"}}}
    assert degradations(facts, {"reconstruction": level}) == [
        "object mesh level: no object pixels; export.object_level_beta used",
        warning,
    ]
    row = result("a", "mild", cd_cm2=1.0) | {"preprocess": facts}
    stats = aggregate([row])
    assert stats["median"]["registered_pct"] == 25.0 and stats["median"]["hand_anchored_pct"] == 75.0
