"""RAW/prompts.json: targets, several frames, the mapping to output frames and pixels, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo
from preprocess.prompts import read_prompts

# 20 input frames of 64×64 kept every 5th (0, 5, 10, 15) and halved to 32×32.
INFO = FramesInfo(4, (32, 32), (64, 64), 20, [0, 5, 10, 15], "video.mp4")


def _read(tmp_path: Path, data) -> dict:
    path = tmp_path / "prompts.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return read_prompts(path, INFO)


def test_one_prompt_is_frame_zero_and_lists_map_input_frames_to_output_frames(tmp_path: Path):
    prompts = _read(
        tmp_path,
        {
            "object": {"box": [12, 18, 36, 42]},
            "right": [
                {"frame": 5, "points": [[50, 50], [10, 10]], "labels": [1, 0]},
                {"frame": 15, "points": [[20, 30]]},
            ],
        },
    )
    assert sorted(prompts) == ["object", "right"]
    assert list(prompts["object"]) == [0] and sorted(prompts["right"]) == [1, 3]
    obj = prompts["object"][0]
    assert obj.points is None and obj.labels is None
    np.testing.assert_allclose(obj.box, [5.75, 8.75, 17.75, 20.75])  # pixel centres: (x + 0.5) / 2 - 0.5
    right = prompts["right"][1]
    np.testing.assert_allclose(right.points, [[24.75, 24.75], [4.75, 4.75]])
    assert right.labels.tolist() == [1, 0] and right.box is None
    assert prompts["right"][3].labels.tolist() == [1]  # labels default to foreground


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({"cup": {"box": [0, 0, 5, 5]}}, r"unknown target\(s\) \['cup'\]"),
        ({"object": {"bbox": [0, 0, 5, 5]}}, r"'object': unknown key\(s\) \['bbox'\]"),
        ({"object": {}}, "give 'points', 'box' or both"),
        ({"object": 3}, "expected an object with points, box and frame"),
        ({"object": {"frame": 3, "box": [0, 0, 5, 5]}}, r"frame 3 is not one of the 4 input frames kept"),
        ({"object": {"frame": -1, "box": [0, 0, 5, 5]}}, "frame must be an input frame number"),
        ({"object": {"frame": "0", "box": [0, 0, 5, 5]}}, "frame must be an input frame number"),
        ({"right": {"points": [[1, 2]], "labels": [2]}}, "labels must be 1 .foreground. or 0"),
        ({"right": {"points": [[1, 2], [3, 4]], "labels": [1]}}, "2 points but 1 labels"),
        ({"right": {"points": [[1, 2, 3]]}}, r"points must be \[\[x, y\]"),
        ({"object": {"box": [10, 0, 5, 5]}}, "x0 < x1 and y0 < y1"),
        ({"object": {"box": [0, 0, 5]}}, r"box \[x0, y0, x1, y1\]"),
        ({"object": {"points": [[70, 10]]}}, "outside the 64×64 input frame"),
        (
            {"object": [{"frame": 5, "box": [0, 0, 5, 5]}, {"frame": 5, "points": [[1, 1]]}]},
            "'object' entry 1: a second prompt for frame 5",
        ),
    ],
)
def test_malformed_prompt_files_name_the_file_target_and_problem(tmp_path: Path, data, message):
    with pytest.raises(PreprocessError, match=message) as raised:
        _read(tmp_path, data)
    assert "prompts.json" in str(raised.value) and "masks" in str(raised.value)


def test_a_missing_prompt_file_is_named(tmp_path: Path):
    with pytest.raises(PreprocessError, match="absent.json: prompt file not found"):
        read_prompts(tmp_path / "absent.json", INFO)
