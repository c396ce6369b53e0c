"""SEQ/report.html and report.json: the verdicts on a clip with half its masks empty (and a step that
fails), on a clip whose SfM registers nothing, a page with no external references, and a report that
can neither hide the real error nor fail a run."""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT
from hold.utils.io import write_png
from preprocess.config import load_preprocess_config
from preprocess.errors import PreprocessError
from preprocess.pipeline import run_pipeline
from preprocess.report import REPORT_HTML, REPORT_JSON

pytestmark = pytest.mark.slow  # `make test` runs it, `make test-quick` does not

FAST = ["hand.fit.iterations=100", "align.iterations=100", "build.overlay_fps=5"]
ROOT = Path(__file__).resolve().parents[2]


def _steps(seq: Path) -> dict[str, dict]:
    report = json.loads((seq / REPORT_JSON).read_text())
    return {s["step"]: s for s in report["steps"]}


@pytest.fixture(scope="module")
def hand_only(tiny_synthetic, tmp_path_factory) -> Path:
    """The tiny synthetic clip preprocessed with SfM forced to register nothing (no pair reaches the
    match threshold): every object pose comes from the hand."""
    seq = tmp_path_factory.mktemp("report") / "seq"
    cfg = load_preprocess_config(FAST + ["sfm.min_num_matches=100000"])
    run_pipeline(tiny_synthetic.raw_dir, seq, cfg=cfg)
    return seq


@pytest.mark.skipif(importlib.util.find_spec("hloc") is not None, reason="needs hloc absent")
def test_half_empty_masks_warn_and_a_failing_step_is_reported(tiny_synthetic, tmp_path: Path):
    """Masks without object pixels in half the frames, and SfM asked for hloc, which is not installed:
    masks warns naming those frames, sfm fails with the error the pipeline raises, the later steps did
    not run."""
    raw, seq = tmp_path / "raw", tmp_path / "seq"
    shutil.copytree(tiny_synthetic.raw_dir, raw)
    masks = sorted((raw / "masks").glob("*.png"))
    emptied = list(range(0, len(masks), 2))
    for t in emptied:
        labels = np.asarray(Image.open(masks[t])).copy()
        labels[labels == LABEL_OBJECT] = LABEL_BACKGROUND
        write_png(masks[t], labels)
    with pytest.raises(PreprocessError, match="hloc") as raised:
        run_pipeline(raw, seq, cfg=load_preprocess_config(FAST + ["sfm.backend=hloc"]))
    report = json.loads((seq / REPORT_JSON).read_text())
    steps = _steps(seq)
    assert report["overall"] == "failed" and report["failure"]["step"] == "sfm"
    assert steps["frames"]["status"] in ("ok", "warning")
    assert steps["hands"]["status"] in ("ok", "warning")
    m = steps["masks"]
    assert m["status"] == "warning", m
    assert m["numbers"]["frames_without_object"] == emptied
    assert f"none in {len(emptied)}" in m["summary"] and any(
        "check the segmentation" in a for a in m["advice"]
    )
    s = steps["sfm"]
    assert s["status"] == "failed" and str(raised.value).rstrip(".") in s["summary"]
    assert [steps[s]["status"] for s in ("align", "build")] == ["not run"] * 2
    page = (seq / REPORT_HTML).read_text()
    assert "Step sfm failed" in page and "masks_area" in {p["name"] for p in report["plots"]}


def test_sfm_that_registers_nothing_warns_with_the_hand_fallback(hand_only: Path):
    steps = _steps(hand_only)
    sfm = steps["sfm"]
    recorded = json.loads((hand_only / "work" / "sfm" / "sfm.json").read_text())["warnings"]
    assert sfm["status"] == "warning", sfm
    assert sfm["numbers"]["mode"] == "hand" and sfm["numbers"]["registered"] == 0
    assert sfm["numbers"]["sources"]["hand_anchored"] > 0
    assert "object poses from the hand" in sfm["summary"]
    assert any("rotation track" in a for a in sfm["advice"])
    assert recorded and sfm["warnings"] == recorded  # every recorded warning, verbatim
    page = (hand_only / REPORT_HTML).read_text()
    assert all(html.escape(w) in page for w in recorded)
    for step in ("masks", "hands", "build"):
        assert steps[step]["status"] == "ok", steps[step]
    assert steps["align"]["status"] in ("ok", "warning")
    assert "median_mm" in steps["align"]["numbers"]["right_contact"]
    plots = {p["name"] for p in json.loads((hand_only / REPORT_JSON).read_text())["plots"]}
    assert {
        "contact_sheet",
        "masks_area",
        "hands_fit",
        "sfm_frames",
        "object_rotation",
        "align_contact",
    } <= plots


def test_the_page_is_self_contained_and_embeds_every_plot(hand_only: Path):
    page = (hand_only / REPORT_HTML).read_text()
    report = json.loads((hand_only / REPORT_JSON).read_text())
    lowered = page.lower()
    for external in (
        "http://",
        "https://",
        "<script",
        "<link",
        "<iframe",
        "url(",
        "@import",
        'src="/',
        'src="file',
    ):
        assert external not in lowered, external
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == len(report["plots"]) >= 6
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and im.width >= 200


def test_a_redo_refreshes_the_report(hand_only: Path, tiny_synthetic, tmp_path: Path):
    seq = tmp_path / "seq"
    shutil.copytree(hand_only, seq)
    (seq / REPORT_JSON).unlink()
    cfg = load_preprocess_config(FAST + ["sfm.min_num_matches=100000"])
    run_pipeline(tiny_synthetic.raw_dir, seq, steps=["build"], redo=True, cfg=cfg)
    assert _steps(seq)["build"]["status"] == "ok"


def test_a_broken_report_never_hides_the_error_nor_fails_the_run(
    tiny_synthetic, tmp_path: Path, monkeypatch, caplog
):
    import preprocess.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("no space for plots")

    monkeypatch.setattr(report, "build_report", broken)
    with caplog.at_level(logging.WARNING, logger="hold.preprocess.report"):
        run_pipeline(tiny_synthetic.raw_dir, tmp_path / "ok", steps=["frames"])  # finishes regardless
        raw = tmp_path / "raw"
        shutil.copytree(tiny_synthetic.raw_dir, raw)
        (raw / "hands.npz").unlink()
        with pytest.raises(PreprocessError, match="hands.npz"):
            run_pipeline(raw, tmp_path / "failed", steps=["frames", "hands"])
    lines = [r.getMessage() for r in caplog.records if r.name == "hold.preprocess.report"]
    assert lines == ["report: not written (RuntimeError: no space for plots)"] * 2
    assert not (tmp_path / "ok" / REPORT_HTML).exists()


@pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="no Chromium to render the page",
)
def test_the_page_renders_in_headless_chromium(hand_only: Path, tmp_path: Path):
    out = tmp_path / "shot.png"
    subprocess.run(
        [str(ROOT / "bench" / "report_screenshot.sh"), str(hand_only), str(out), "--size", "1200,1600"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (1600, 1200)
    assert (pixels < 250).any(axis=-1).mean() > 0.05  # text, tables and the contact sheet, not a blank page
