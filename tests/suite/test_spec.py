"""Suite files: the shipped suite is complete and every malformed file fails with the clip and field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hold.suite.spec import SuiteSpecError, load_suite


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_the_shipped_suite_spans_the_hard_cases():
    suite = load_suite("v1")
    assert len(suite.clips) >= 12
    tags = [c.tags() for c in suite.clips]
    assert len({t["object"] for t in tags}) >= 8
    assert {t["texture"] for t in tags} == {"rich", "medium", "low", "plain_label"}
    assert {t["noise"] for t in tags} == {"mild", "realistic"}
    assert {t["camera"] for t in tags} == {"static", "orbit"}
    assert 4 <= len(suite.select("quick")) <= 5
    assert len({c.seed for c in suite.clips}) == len(suite.clips)


def test_selection_by_subset_and_name(tmp_path: Path):
    path = write(tmp_path / "s.yaml", {"clips": [{"name": "a"}, {"name": "b"}], "subsets": {"one": ["b"]}})
    suite = load_suite(path)
    assert [c.name for c in suite.select()] == ["a", "b"]
    assert [c.name for c in suite.select("one")] == ["b"]
    assert [c.name for c in suite.select(names=["b", "a"])] == ["b", "a"]
    with pytest.raises(SuiteSpecError, match="no subset 'two'"):
        suite.select("two")
    with pytest.raises(SuiteSpecError, match=r"unknown clip\(s\) \['c'\]"):
        suite.select(names=["c"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"clips": [{"name": "a", "sede": 1}]}, r"clips\[0\]: unknown key\(s\) \['sede'\]"),
        ({"clips": [{"name": "a"}, {"name": "a"}]}, "clip a: duplicate clip name"),
        ({"clips": [{"name": "A b"}]}, "name: expected lowercase"),
        ({"clips": [{"name": "a", "seed": -1}]}, "clip a: seed: expected a non-negative integer"),
        (
            {"clips": [{"name": "a", "synth": {"rotation_degs": 90}}]},
            "clip a: synth: unknown SynthConfig field",
        ),
        ({"clips": [{"name": "a"}], "subsets": {"q": ["b"]}}, r"subsets.q: unknown clip\(s\) \['b'\]"),
        ({"clips": []}, "expected a non-empty list"),
        (
            {"clips": [{"name": "a"}], "defaults": {"preset": "demo"}},
            r"defaults: unknown key\(s\) \['preset'\]",
        ),
    ],
)
def test_malformed_suite_files_name_the_clip_and_field(tmp_path: Path, data: dict, message: str):
    path = write(tmp_path / "s.yaml", data)
    with pytest.raises(SuiteSpecError, match=message) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_clip_settings_merge_over_defaults_and_shape_the_fingerprint(tmp_path: Path):
    data = {
        "defaults": {"synth": {"num_frames": 8, "texture": {"cell_size_m": 0.02}}},
        "clips": [{"name": "a", "synth": {"texture": {"spot_spacing_m": 0.0}}}, {"name": "b"}],
    }
    a, b = load_suite(write(tmp_path / "s.yaml", data)).clips
    cfg = a.synth_config()
    assert cfg.num_frames == 8 and cfg.texture.cell_size_m == 0.02 and cfg.texture.spot_spacing_m == 0.0
    assert a.fingerprint() != b.fingerprint()
