from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hold.utils.io import write_png
from preprocess.config import FramesConfig, MasksConfig, SamConfig
from preprocess.errors import PreprocessError
from preprocess.frames import FramesInfo, run_frames
from preprocess.masks import load_mask, run_masks
from preprocess.sam import first_frame_prompts, prompt_from_mask

HAVE_SAM = importlib.util.find_spec("segment_anything") is not None
needs_sam = pytest.mark.skipif(
    not HAVE_SAM, reason="segment-anything is not installed (optional extra 'sam')"
)


def _raw(root: Path, n: int = 2, size: int = 64) -> None:
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        rgb = np.full((size, size, 3), 40, np.uint8)
        rgb[(xx - 24 - i) ** 2 + (yy - 30) ** 2 < 120] = (220, 60, 60)
        write_png(root / "frames" / f"{i:05d}.png", rgb)
    prompts = {
        "object": {"points": [[24, 30]], "box": [12, 18, 36, 42]},
        "right": {"points": [[50, 50]], "labels": [1]},
    }
    (root / "prompts.json").write_text(json.dumps(prompts))


def test_sam_without_checkpoint_says_where_to_put_it(tmp_path: Path):
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw)
    run_frames(raw, work / "frames", FramesConfig())
    with pytest.raises(
        PreprocessError, match=r"needs a segment-anything checkpoint: download .*masks.sam.checkpoint="
    ):
        run_masks(raw, work, work / "masks", MasksConfig(backend="sam"))
    cfg = MasksConfig(backend="sam", sam=SamConfig(checkpoint=str(tmp_path / "sam_vit_b.pth")))
    with pytest.raises(PreprocessError, match="sam_vit_b.pth: checkpoint not found"):
        run_masks(raw, work, work / "masks", cfg)


def test_prompts_are_read_and_rescaled(tmp_path: Path):
    _raw(tmp_path)
    info = FramesInfo(1, (32, 32), (64, 64), 1, [0], "x")
    prompts = first_frame_prompts(tmp_path / "prompts.json", info)
    np.testing.assert_allclose(prompts["object"].points, [[11.75, 14.75]])
    np.testing.assert_allclose(prompts["object"].box, [5.75, 8.75, 17.75, 20.75])
    (tmp_path / "bad.json").write_text(json.dumps({"object": {}}))
    with pytest.raises(PreprocessError, match="give 'points', 'box' or both"):
        first_frame_prompts(tmp_path / "bad.json", info)


def test_prompt_from_previous_mask():
    mask = np.zeros((50, 50), bool)
    mask[10:30, 20:40] = True
    p = prompt_from_mask(mask, None, SamConfig(box_margin=0.1, num_points=2))
    np.testing.assert_allclose(p.box, [18, 8, 41, 31])
    assert len(p.points) == 2 and all(mask[int(y), int(x)] for x, y in p.points)
    assert prompt_from_mask(np.zeros((5, 5), bool), None, SamConfig()) is None


@needs_sam
def test_torchvision_shim_is_removed_after_import():
    from preprocess.sam import import_segment_anything

    had = "torchvision" in sys.modules
    sa = import_segment_anything()
    assert hasattr(sa, "SamPredictor")
    assert ("torchvision" in sys.modules) == had


@needs_sam
def test_sam_backend_runs_with_a_random_checkpoint(tmp_path: Path, monkeypatch):
    """A random-init SAM (no weights exist offline) exercises loading, prompting, propagation and
    labelling. Its image encoder is shrunk to one narrow block (same interface, 256-d embeddings):
    a real vit_b embedding takes ~40 s per frame on two shared CPU cores."""
    from functools import partial

    import torch

    from preprocess.sam import import_segment_anything

    sa = import_segment_anything()
    from segment_anything.build_sam import _build_sam

    tiny = partial(
        _build_sam, encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=1, encoder_global_attn_indexes=[]
    )
    monkeypatch.setitem(sa.sam_model_registry, "vit_b", tiny)
    torch.manual_seed(0)
    ckpt = tmp_path / "sam_vit_b_random.pth"
    torch.save(tiny().state_dict(), ckpt)
    raw, work = tmp_path / "raw", tmp_path / "work"
    _raw(raw, n=3)
    run_frames(raw, work / "frames", FramesConfig())
    cfg = MasksConfig(
        backend="sam", min_frames_with_object=0.0, sam=SamConfig(checkpoint=str(ckpt), device="cpu")
    )
    summary = run_masks(raw, work, work / "masks", cfg)
    assert summary["backend"] == "sam"
    for t in range(3):
        m = load_mask(work / "masks", t)
        assert m.shape == (64, 64) and set(np.unique(m).tolist()) <= {0, 1, 2, 255}
    with pytest.raises(PreprocessError, match="not a vit_b segment-anything checkpoint"):
        torch.save({"junk": torch.zeros(1)}, ckpt)
        run_masks(raw, work, work / "masks", cfg)
