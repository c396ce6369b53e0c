"""A two-clip mini-suite end to end on tiny clips, its resume, and a failing clip as a row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hold.suite.cli import main as suite_main
from hold.suite.runner import RunOptions, run_suite
from hold.suite.spec import load_suite
from tests.export.conftest import TINY_EVAL, TINY_TRAIN

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

# Sized like the preprocessing chain test: SfM registers every frame of a 12-frame 160 px clip.
TINY_CLIP = {
    "num_frames": 12, "image_size": [160, 160], "rotation_deg": 90.0, "object_voxel_m": 0.003,
    "fill_fraction": 1.4, "supersample": 2, "texture": {"cell_size_m": 0.02, "fine_cell_size_m": 0.007},
}  # fmt: skip
TINY_OPTIONS = RunOptions(
    preset="demo",
    preprocess=["hand.fit.iterations=100", "align.iterations=100", "build.overlay_fps=5"],
    train=["--stages", "1", *TINY_TRAIN, *TINY_EVAL],
    export=["hand_mesh_resolution=24", "render_stride=8", "num_render_frames=1", *TINY_EVAL],
)


def write_suite(path: Path, clips: list[dict]) -> Path:
    suite = {
        "name": "mini",
        "version": 1,
        "defaults": {"synth_preset": "tiny", "synth": TINY_CLIP},
        "subsets": {"first": [clips[0]["name"]]},
        "clips": clips,
    }
    path.write_text(json.dumps(suite))  # JSON is YAML
    return path


def test_mini_suite_runs_every_step_writes_rows_and_resumes(tmp_path: Path):
    suite = load_suite(
        write_suite(
            tmp_path / "mini.yaml",
            [{"name": "bottle", "seed": 1}, {"name": "can", "seed": 2, "synth": {"object": "can"}}],
        )
    )
    out = tmp_path / "out"
    messages: list[str] = []
    results = run_suite(suite, suite.clips, out, TINY_OPTIONS, messages.append)
    assert [r["status"] for r in results] == ["ok", "ok"], [r["error"] for r in results]
    for r in results:
        assert set(r["steps"]) == {"synthesise", "preprocess", "train", "export", "evaluate"}
        assert r["metrics"]["mpjpe_mm"] is not None and r["metrics"]["cd_cm2"] is not None
        assert r["preprocess"]["sfm_frames"] == 12
        assert (out / "clips" / r["name"] / "result.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clips_ok"] == 2 and summary["median"]["metrics.cd_cm2"] is not None
    cds = [r["metrics"]["cd_cm2"] for r in results]
    assert summary["worst"]["metrics.cd_cm2"] == pytest.approx(max(cds))
    table = (out / "summary.md").read_text()
    assert "| bottle |" in table and "| **median** |" in table and "| **worst** |" in table

    # A second run keeps both clips: no step runs again.
    steps_before = (out / "clips" / "can" / "steps.json").read_text()
    messages.clear()
    run_suite(suite, suite.clips, out, TINY_OPTIONS, messages.append)
    assert sum("already ok, kept" in m for m in messages) == 2
    assert (out / "clips" / "can" / "steps.json").read_text() == steps_before

    # Another preset in the same dir would mix results: refused.
    assert suite_main(["run", str(out), "--suite", str(suite.path), "--preset", "fast"]) == 2


def test_a_failing_clip_is_a_row_and_the_suite_goes_on(tmp_path: Path):
    broken = tmp_path / "broken.ply"
    broken.write_text("not a mesh")
    suite = load_suite(
        write_suite(
            tmp_path / "mini.yaml",
            [
                {"name": "broken", "synth": {"object": str(broken)}},
                {"name": "broken2", "synth": {"object": str(broken)}},
            ],
        )
    )
    out = tmp_path / "out"
    results = run_suite(suite, suite.clips, out, TINY_OPTIONS, lambda _: None)
    assert [(r["status"], r["failed_step"]) for r in results] == [("failed", "synthesise")] * 2
    assert "cannot read mesh" in results[0]["error"] and "Traceback" not in results[0]["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clips_ok"] == 0 and len(summary["failures"]) == 2
    assert "**failed** at synthesise" in (out / "summary.md").read_text()
