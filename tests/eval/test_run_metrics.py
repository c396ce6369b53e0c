"""RUN-level helpers of hold-eval: the SfM fraction of the object track and the summary line."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hold.eval.run_metrics import read_object_track_sources, summary_line
from hold.utils.io import write_npz

T = 8


def _write_sfm(seq, **arrays):
    (seq / "work" / "sfm").mkdir(parents=True, exist_ok=True)
    write_npz(seq / "work" / "sfm" / "sfm.npz", {"K": np.eye(3), **arrays})


def test_sfm_fraction_prefers_reliable_over_registered(tmp_path):
    registered = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    reliable = registered & np.array([1, 1, 0, 1, 1, 1, 1, 1], bool)
    _write_sfm(tmp_path, registered=registered, reliable=reliable)
    sources = read_object_track_sources(tmp_path, T)
    assert sources.origin == "work/sfm/sfm.npz:reliable"
    assert sources.sfm_registered == 5 and sources.sfm_registered_fraction == pytest.approx(5 / T)
    assert sources.to_dict()["counts"] == {"registered": 6, "reliable": 5}


def test_sfm_fraction_from_registered_alone(tmp_path):
    _write_sfm(tmp_path, registered=np.array([1, 0, 0, 0, 1, 1, 1, 1], bool))
    sources = read_object_track_sources(tmp_path, T)
    assert sources.origin == "work/sfm/sfm.npz:registered" and sources.sfm_registered_fraction == 5 / T


def test_object_source_wins_over_sfm_npz(tmp_path):
    _write_sfm(tmp_path, registered=np.ones(T, bool), reliable=np.ones(T, bool))
    codes = np.array([0, 0, 1, 1, 2, 3, 0, 7], np.uint8)
    sources = read_object_track_sources(tmp_path, T, codes)
    assert sources.origin == "sequence.npz:object.source" and sources.sfm_registered == 3
    assert sources.counts == {
        "sfm_registered": 3,
        "interpolated": 2,
        "hand_anchored": 1,
        "other_fallback": 1,
        "unknown_7": 1,
    }
    # Stored in SEQ/sequence.npz rather than passed in: read from there.
    write_npz(tmp_path / "sequence.npz", {"valid": np.ones(T, bool), "object.source": codes})
    assert read_object_track_sources(tmp_path, T).sfm_registered == 3


def test_nothing_recorded_or_wrong_length_gives_none(tmp_path, caplog):
    assert read_object_track_sources(tmp_path, T) is None
    write_npz(tmp_path / "sequence.npz", {"valid": np.ones(T, bool)})  # no object.source
    assert read_object_track_sources(tmp_path, T) is None
    _write_sfm(tmp_path, registered=np.ones(T + 1, bool))
    logger = logging.getLogger("hold")  # may not propagate to the root logger (setup_logging)
    logger.addHandler(caplog.handler)
    try:
        assert read_object_track_sources(tmp_path, T) is None
    finally:
        logger.removeHandler(caplog.handler)
    assert "expected shape (8,), found (9,)" in caplog.text


def test_summary_line_shows_the_signed_scale_error():
    metrics = {"mpjpe_mm": 7.25, "cd_cm2": 0.5, "f5": 60.0, "f10": 90.0, "cd_h_cm2": 4.0}
    line = summary_line({**metrics, "object_scale_error_pct": 12.4})
    assert line.endswith("| scale +12 %") and "\n" not in line
    assert summary_line({**metrics, "object_scale_error_pct": -50.0}).endswith("scale -50 %")
    assert summary_line(metrics).endswith("scale —")
