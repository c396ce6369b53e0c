"""The ``sam2`` mask backend: model files, prompts from the hand, overlaps, and a run end to end with the
smallest SAM 2 model on random weights (no checkpoint can be downloaded here)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN, MASK_LABELS
from preprocess.config import Sam2Config, load_preprocess_config
from preprocess.errors import PreprocessError
from preprocess.hand_views import FINGERTIPS, PALM_KEYPOINTS, HandView
from preprocess.masks import load_mask
from preprocess.pipeline import run_pipeline
from preprocess.report import REPORT_JSON
from preprocess.sam2_masks import combine, hand_prompts, model_config, object_prompt_near_fingertips

HAVE_SAM2 = importlib.util.find_spec("sam2") is not None
needs_sam2 = pytest.mark.skipif(not HAVE_SAM2, reason="sam2 is not installed (make sam2)")
STEPS = ["frames", "hands", "masks"]
FAST = ["hand.fit.iterations=100"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sam2.1_hiera_tiny.pt", "configs/sam2.1/sam2.1_hiera_t.yaml"),
        ("sam2.1_hiera_base_plus.pt", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
        ("sam2_hiera_large.pt", "configs/sam2/sam2_hiera_l.yaml"),
    ],
)
def test_the_model_config_is_read_from_the_checkpoint_name(name: str, expected: str):
    assert model_config(Sam2Config(), Path(name)) == expected
    assert model_config(Sam2Config(model_cfg="mine.yaml"), Path(name)) == "mine.yaml"


def test_an_unrecognised_checkpoint_name_asks_for_the_model_config():
    with pytest.raises(
        PreprocessError, match="my_model.pt: cannot tell the SAM 2 model.*masks.sam2.model_cfg"
    ):
        model_config(Sam2Config(), Path("my_model.pt"))


def _view(T: int = 6) -> HandView:
    """A right hand whose keypoints sit on a grid; the thumb tip at (20, 40), fingertips at x = 40."""
    kp = np.zeros((T, 21, 3))
    kp[..., 0] = 10 + 2 * np.arange(21)
    kp[..., 1] = 30
    kp[:, FINGERTIPS[0], :2] = (20, 40)
    kp[:, list(FINGERTIPS[1:]), 0] = 40
    kp[:, list(FINGERTIPS[1:]), 1] = (34, 38, 42, 46)
    kp[..., 2] = 0.9
    kp[1, :, 2] = 0.1  # frame 1: the estimator was unsure
    valid = np.ones(T, bool)
    valid[0] = False  # frame 0: filled from its neighbours
    return HandView("right", kp, kp[..., :2].copy(), valid, np.zeros((T, 3, 3)), np.zeros((1, 3), int))


def test_hands_are_prompted_on_the_first_well_fitted_frame_and_then_every_n():
    prompts = hand_prompts(_view(), Sam2Config(hand_prompt_every=2, box_margin=0.0), (64, 64))
    assert sorted(prompts) == [2, 4]
    p = prompts[2]
    assert p.labels.tolist() == [1] * len(PALM_KEYPOINTS)
    np.testing.assert_allclose(p.points, _view().kp2d[2, list(PALM_KEYPOINTS), :2])
    np.testing.assert_allclose(p.box, [10, 30, 48, 46])  # keypoint 19 (x 48) is rightmost
    assert sorted(hand_prompts(_view(), Sam2Config(hand_prompt_every=0), (64, 64))) == [2]


def test_the_object_is_prompted_where_the_fingertips_hold_something_that_is_not_hand():
    view = _view()
    hand = np.zeros((64, 64), bool)
    hand[25:35, 5:55] = True  # the palm row of keypoints
    prompt, free = object_prompt_near_fingertips(view, 2, hand)
    positives, negatives = prompt.points[prompt.labels == 1], prompt.points[prompt.labels == 0]
    assert (
        free
        and len(positives) > 0
        and not hand[positives[:, 1].astype(int), positives[:, 0].astype(int)].any()
    )
    np.testing.assert_allclose(negatives, view.fitted_kp2d[2, list(PALM_KEYPOINTS)])
    prompt, free = object_prompt_near_fingertips(view, 2, np.ones((64, 64), bool))
    assert not free and (prompt.labels == 1).sum() == len(
        FINGERTIPS
    )  # every candidate, the caller re-prompts


def test_pixels_claimed_by_two_targets_are_unknown():
    obj, hand = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    obj[:2, :2] = True
    hand[1:3, 1:3] = True
    labels = combine({1: obj, 2: hand}, (4, 4))
    assert labels[0, 0] == LABEL_OBJECT and labels[2, 2] == LABEL_RIGHT and labels[3, 3] == LABEL_BACKGROUND
    assert labels[1, 1] == LABEL_UNKNOWN and (labels == LABEL_UNKNOWN).sum() == 1


def test_sam2_without_a_checkpoint_says_where_to_put_it(tiny_synthetic, tmp_path: Path):
    raw = tiny_synthetic.raw_dir
    cfg = load_preprocess_config(FAST + ["masks.backend=sam2"])
    with pytest.raises(PreprocessError, match=r"needs a SAM 2 checkpoint: download .*masks.sam2.checkpoint="):
        run_pipeline(raw, tmp_path / "seq", STEPS, cfg=cfg)
    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    cfg = load_preprocess_config(FAST + ["masks.backend=sam2", f"masks.sam2.checkpoint={missing}"])
    with pytest.raises(PreprocessError, match="sam2.1_hiera_tiny.pt: checkpoint not found; download"):
        run_pipeline(raw, tmp_path / "seq", ["masks"], cfg=cfg)


@pytest.fixture(scope="module")
def random_tiny_checkpoint(tmp_path_factory) -> Path:
    """The smallest SAM 2.1 model (Hiera-T) with random weights, saved the way the released files are."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    model = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def _run(raw: Path, seq: Path, checkpoint: Path, *extra: str) -> dict:
    cfg = load_preprocess_config(
        FAST
        + [
            "masks.backend=sam2",
            f"masks.sam2.checkpoint={checkpoint}",
            "masks.sam2.image_size=256",  # 1024 by default; random weights need no detail
            "masks.sam2.device=cpu",
            "masks.min_frames_with_object=0",  # random weights may find no object anywhere
            *extra,
        ]
    )
    run_pipeline(raw, seq, STEPS, cfg=cfg)
    return json.loads((seq / "work" / "masks" / "masks.json").read_text())


@needs_sam2
@pytest.mark.slow
def test_sam2_runs_end_to_end_prompted_from_the_hand(tiny_synthetic, random_tiny_checkpoint, tmp_path: Path):
    """Prompts from the hands step's keypoints, the object next to the fingertips, propagation through
    the clip, and label maps of the frame size with the mask labels only."""
    summary = _run(tiny_synthetic.raw_dir, tmp_path / "seq", random_tiny_checkpoint)
    report = summary["sam2"]
    T = len(list((tiny_synthetic.raw_dir / "frames").glob("*.png")))
    assert summary["backend"] == "sam2" and report["prompted_frames"]["right"]
    assert report["object_prompt"].startswith("next to the right fingertips on frame ")
    assert len(report["prompted_frames"]["object"]) == 1 and len(report["claimed_twice_fraction"]) == T
    frame = np.asarray(Image.open(sorted((tmp_path / "seq" / "work" / "frames").glob("*.png"))[0]))
    page = {s["step"]: s for s in json.loads((tmp_path / "seq" / REPORT_JSON).read_text())["steps"]}["masks"]
    assert "SAM 2, object prompt: next to the right fingertips" in page["summary"]
    for t in range(T):
        labels = load_mask(tmp_path / "seq" / "work" / "masks", t)
        assert labels.shape == frame.shape[:2] and set(np.unique(labels).tolist()) <= set(MASK_LABELS)


@needs_sam2
@pytest.mark.slow
def test_sam2_takes_the_object_from_the_prompt_file(tiny_synthetic, random_tiny_checkpoint, tmp_path: Path):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_synthetic.raw_dir, raw)
    (raw / "prompts.json").write_text(json.dumps({"object": [{"frame": 0, "box": [10, 10, 40, 40]}]}))
    report = _run(raw, tmp_path / "seq", random_tiny_checkpoint)["sam2"]
    assert report["object_prompt"] == "prompt file" and report["prompted_frames"]["object"] == [0]
    (raw / "prompts.json").write_text(json.dumps({"object": {"frame": 999, "box": [10, 10, 40, 40]}}))
    with pytest.raises(PreprocessError, match="prompts.json: 'object': frame 999 is not one of"):
        _run(raw, tmp_path / "seq2", random_tiny_checkpoint)


@needs_sam2
def test_a_file_that_is_not_a_sam2_checkpoint_is_named(tiny_synthetic, tmp_path: Path):
    bad = tmp_path / "sam2.1_hiera_tiny.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(
        PreprocessError, match=r"sam2.1_hiera_tiny.pt: not a SAM 2 checkpoint for configs/sam2.1"
    ):
        _run(tiny_synthetic.raw_dir, tmp_path / "seq", bad)
