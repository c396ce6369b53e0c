"""Hostile inputs across the commands: each gives a non-zero exit, one message naming the file or the key,
no traceback, and leaves every file that existed before exactly as it was.

Each case copies the tiny synthetic RAW and oracle SEQUENCE dirs into its own folder, breaks one thing,
runs one command in-process and checks the above.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hold.cli import eval_main, export_main, train_main
from preprocess.cli import main as preprocess_main


@dataclass(frozen=True)
class Case:
    """One malformed input: ``breaks(root)`` damages the copies under ``root`` (``raw/``, ``seq/``);
    ``argv(root)`` is the command line; ``names`` must appear in the message."""

    name: str
    breaks: Callable[[Path], None]
    command: str
    argv: Callable[[Path], list[str]]
    names: tuple[str, ...]


def _npz(path: Path, **changes) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


def _json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def nothing(root: Path) -> None:
    """No damage: the command line itself is the bad input."""


PRE = ["--steps", "frames,masks,hands"]
TRAIN = ["--config", "demo", "logging.wandb=disabled"]


def pre(root: Path, *extra: str) -> list[str]:
    return [str(root / "raw"), str(root / "out"), *PRE, *extra]


def train(root: Path, *extra: str) -> list[str]:
    return [str(root / "seq"), "--out", str(root / "run"), *TRAIN, *extra]


def kp(root: Path) -> np.ndarray:
    with np.load(root / "raw" / "hands.npz") as f:
        return f["right.kp2d"]


RAW_CASES = [
    Case("camera_not_json", lambda r: _write(r / "raw/camera.json", b"{fx: "), "pre", pre, ("camera.json",)),
    Case("camera_missing_fx", lambda r: _json(r / "raw/camera.json", fx=None), "pre", pre, ("camera.json",)),
    Case(
        "camera_negative_focal",
        lambda r: _json(r / "raw/camera.json", fx=-5),
        "pre",
        pre,
        ("camera.json", "fx"),
    ),
    Case(
        "camera_cx_outside",
        lambda r: _json(r / "raw/camera.json", cx=1e4),
        "pre",
        pre,
        ("camera.json", "principal point"),
    ),
    Case("camera_focal_text", lambda r: _json(r / "raw/camera.json", fy="abc"), "pre", pre, ("camera.json",)),
    Case(
        "camera_focal_nan",
        lambda r: _write(r / "raw/camera.json", b'{"fx": NaN, "fy": 1, "cx": 1, "cy": 1}'),
        "pre",
        pre,
        ("camera.json",),
    ),
    Case("no_frames", lambda r: shutil.rmtree(r / "raw/frames"), "pre", pre, ("raw",)),
    Case(
        "frame_garbage", lambda r: _write(r / "raw/frames/00001.png", b"garbage"), "pre", pre, ("00001.png",)
    ),
    Case(
        "frame_other_size",
        lambda r: _png(r / "raw/frames/00002.png", np.zeros((10, 10, 3), np.uint8)),
        "pre",
        pre,
        ("frame 2",),
    ),
    Case("mask_missing", lambda r: (r / "raw/masks/00003.png").unlink(), "pre", pre, ("masks",)),
    Case(
        "mask_label_7",
        lambda r: _png(r / "raw/masks/00001.png", np.full(_size(r), 7, np.uint8)),
        "pre",
        pre,
        ("00001.png", "label"),
    ),
    Case(
        "mask_rgb",
        lambda r: _png(r / "raw/masks/00001.png", np.zeros((*_size(r), 3), np.uint8)),
        "pre",
        pre,
        ("00001.png", "single-channel"),
    ),
    Case(
        "mask_other_size",
        lambda r: _png(r / "raw/masks/00001.png", np.zeros((7, 9), np.uint8)),
        "pre",
        pre,
        ("00001.png", "mask size"),
    ),
    Case("mask_garbage", lambda r: _write(r / "raw/masks/00001.png", b"garbage"), "pre", pre, ("00001.png",)),
    Case("hands_garbage", lambda r: _write(r / "raw/hands.npz", b"garbage"), "pre", pre, ("hands.npz",)),
    Case(
        "hands_no_kp2d",
        lambda r: _npz(r / "raw/hands.npz", **{"right.kp2d": None}),
        "pre",
        pre,
        ("hands.npz", "right.kp2d"),
    ),
    Case(
        "hands_kp2d_shape",
        lambda r: _npz(r / "raw/hands.npz", **{"right.kp2d": np.zeros((6, 20, 3))}),
        "pre",
        pre,
        ("right.kp2d", "(T, 21, 3)"),
    ),
    Case(
        "hands_kp2d_complex",
        lambda r: _npz(r / "raw/hands.npz", **{"right.kp2d": kp(r).astype(complex)}),
        "pre",
        pre,
        ("right.kp2d", "real"),
    ),
    Case(
        "hands_valid_float",
        lambda r: _npz(r / "raw/hands.npz", **{"right.valid": np.full(len(kp(r)), 0.5)}),
        "pre",
        pre,
        ("right.valid",),
    ),
    Case(
        "hands_frame_count",
        lambda r: _npz(r / "raw/hands.npz", **{"right.kp2d": kp(r)[:2]}),
        "pre",
        pre,
        ("right.kp2d", "frame counts"),
    ),
    Case(
        "hands_kp3d_shape",
        lambda r: _npz(r / "raw/hands.npz", **{"right.kp3d": np.zeros((2, 21, 3))}),
        "pre",
        pre,
        ("right.kp3d",),
    ),
]


def _size(root: Path) -> tuple[int, int]:
    with Image.open(root / "raw/frames/00000.png") as im:
        return im.height, im.width


PREPROCESS_ARG_CASES = [
    Case("six_fingers", nothing, "pre", lambda r: pre(r, "align.contact_fingers=6"), ("contact_fingers",)),
    Case("fov_180", nothing, "pre", lambda r: pre(r, "camera.default_fov_deg=180"), ("default_fov_deg",)),
    Case("max_size_negative", nothing, "pre", lambda r: pre(r, "frames.max_size=-5"), ("max_size",)),
    Case("stride_zero", nothing, "pre", lambda r: pre(r, "frames.stride=0"), ("stride",)),
    Case("unknown_key", nothing, "pre", lambda r: pre(r, "sfm.bogus=1"), ("sfm.bogus",)),
    Case("illegal_choice", nothing, "pre", lambda r: pre(r, "sfm.crop=maybe"), ("sfm.crop",)),
    Case(
        "fraction_above_one",
        nothing,
        "pre",
        lambda r: pre(r, "sfm.min_registered_fraction=2"),
        ("min_registered_fraction",),
    ),
    Case("hull_too_coarse", nothing, "pre", lambda r: pre(r, "sfm.hull_resolution=3"), ("hull_resolution",)),
    Case("wrong_type", nothing, "pre", lambda r: pre(r, "align.iterations=many"), ("align.iterations",)),
    Case(
        "unknown_step",
        nothing,
        "pre",
        lambda r: [str(r / "raw"), str(r / "out"), "--steps", "frames,bogus"],
        ("--steps",),
    ),
    Case("seq_is_raw", nothing, "pre", lambda r: [str(r / "raw"), str(r / "raw")], ("overlaps the RAW dir",)),
    Case(
        "seq_in_raw_masks",
        nothing,
        "pre",
        lambda r: [str(r / "raw"), str(r / "raw/masks/seq")],
        ("overlaps the RAW dir",),
    ),
    Case("raw_missing", nothing, "pre", lambda r: [str(r / "nowhere"), str(r / "out")], ("nowhere",)),
    Case(
        "seq_is_a_file",
        lambda r: _write(r / "file", b"x"),
        "pre",
        lambda r: [str(r / "raw"), str(r / "file")],
        ("file",),
    ),
    Case(
        "seq_name_too_long",
        nothing,
        "pre",
        lambda r: [str(r / "raw"), str(r / ("s" * 300))],
        ("File name too long",),
    ),
]

TRAIN_CASES = [
    Case(
        "negative_loss_weight", nothing, "train", lambda r: train(r, "refine.loss.contact=-1"), ("contact",)
    ),
    Case("zero_beta", nothing, "train", lambda r: train(r, "render.density.beta_init=0"), ("beta_init",)),
    Case(
        "percentile_zero",
        nothing,
        "train",
        lambda r: train(r, "eval.pose_error_percentile=0"),
        ("pose_error_percentile",),
    ),
    Case(
        "no_samples",
        nothing,
        "train",
        lambda r: train(r, "render.sampler.bounded.num_coarse=0"),
        ("num_coarse",),
    ),
    Case("negative_steps", nothing, "train", lambda r: train(r, "train.stage1_steps=-1"), ("stage1_steps",)),
    Case("zero_rays", nothing, "train", lambda r: train(r, "rays.rays_per_frame=0"), ("rays_per_frame",)),
    Case(
        "surface_check_negative",
        nothing,
        "train",
        lambda r: train(r, "train.surface_check_step=-1"),
        ("surface_check_step",),
    ),
    Case(
        "explosion_factor_below_one",
        nothing,
        "train",
        lambda r: train(r, "train.loss_explosion_factor=0.5"),
        ("loss_explosion_factor",),
    ),
    Case("nan_lr", nothing, "train", lambda r: train(r, "optim.lr=.nan"), ("optim.lr",)),
    Case(
        "missing_preset",
        nothing,
        "train",
        lambda r: [str(r / "seq"), "--out", str(r / "run"), "--config", str(r / "no.yaml")],
        ("no.yaml",),
    ),
    Case("bad_stages", nothing, "train", lambda r: train(r, "--stages", "4"), ("--stages",)),
    Case("unknown_model_key", nothing, "train", lambda r: train(r, "model.bogus=1"), ("model.bogus",)),
    Case(
        "no_sequence_json", lambda r: (r / "seq/sequence.json").unlink(), "train", train, ("sequence.json",)
    ),
    Case(
        "sequence_json_garbage",
        lambda r: _write(r / "seq/sequence.json", b"{"),
        "train",
        train,
        ("sequence.json",),
    ),
    Case(
        "sequence_npz_no_rot",
        lambda r: _npz(r / "seq/sequence.npz", **{"object.rot": None}),
        "train",
        train,
        ("sequence.npz", "object.rot"),
    ),
    Case(
        "sequence_source_code",
        lambda r: _npz(r / "seq/sequence.npz", **{"object.source": np.full(_frames(r), 9, np.uint8)}),
        "train",
        train,
        ("object.source",),
    ),
    Case(
        "sequence_all_invalid",
        lambda r: _npz(r / "seq/sequence.npz", valid=np.zeros(_frames(r), bool)),
        "train",
        train,
        ("'valid'",),
    ),
    Case(
        "sequence_nan_transl",
        lambda r: _npz(
            r / "seq/sequence.npz", **{"object.transl": np.full((_frames(r), 3), np.nan, np.float32)}
        ),
        "train",
        train,
        ("object.transl", "finite"),
    ),
    Case(
        "sequence_mask_missing",
        lambda r: (r / "seq/masks/00001.png").unlink(),
        "train",
        train,
        ("seq/masks", "found 5 PNGs"),
    ),
    Case(
        "sequence_principal_point",
        lambda r: _npz(r / "seq/sequence.npz", K=np.array([[100.0, 0, 1e4], [0, 100, 10], [0, 0, 1]])),
        "train",
        train,
        ("'K'", "principal point"),
    ),
    Case("run_is_a_file", lambda r: _write(r / "run", b"x"), "train", train, ("run",)),
]


def _frames(root: Path) -> int:
    return json.loads((root / "seq" / "sequence.json").read_text())["num_frames"]


RUN_CASES = [
    Case(
        "run_is_the_sequence",
        nothing,
        "train",
        lambda r: [str(r / "seq"), "--out", str(r / "seq"), *TRAIN],
        ("overlap",),
    ),
    Case(
        "run_inside_the_sequence",
        nothing,
        "train",
        lambda r: [str(r / "seq"), "--out", str(r / "seq/run"), *TRAIN],
        ("overlap",),
    ),
    Case("export_no_run", nothing, "export", lambda r: [str(r / "norun")], ("norun",)),
    Case(
        "export_empty_dir",
        lambda r: (r / "emptyrun").mkdir(),
        "export",
        lambda r: [str(r / "emptyrun")],
        ("emptyrun",),
    ),
    Case("eval_no_run", nothing, "eval", lambda r: [str(r / "norun")], ("norun",)),
    Case(
        "eval_config_garbage",
        lambda r: ((r / "badrun").mkdir(), _write(r / "badrun/config.yaml", b"{[")),
        "eval",
        lambda r: [str(r / "badrun")],
        ("badrun",),
    ),  # fmt: skip
]

COMMANDS = {"pre": preprocess_main, "train": train_main, "export": export_main, "eval": eval_main}
CASES = RAW_CASES + PREPROCESS_ARG_CASES + TRAIN_CASES + RUN_CASES


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def pristine(tiny_synthetic, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    shutil.copytree(tiny_synthetic.raw_dir, root / "raw")
    shutil.copytree(tiny_synthetic.oracle_dir, root / "seq")
    return root


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_malformed_input_is_one_clear_error_and_loses_nothing(
    case: Case, pristine: Path, tmp_path: Path, capsys
):
    root = tmp_path / "case"
    shutil.copytree(pristine, root)
    case.breaks(root)
    before = _snapshot(root)
    code = COMMANDS[case.command](case.argv(root))
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code != 0, (code, err)
    assert "Traceback" not in captured.err + captured.out
    last = err.splitlines()[-1] if err else ""
    assert "error" in last, err
    for name in case.names:
        assert name in last, (name, last)
    changed = [p for p, data in before.items() if not p.is_file() or p.read_bytes() != data]
    assert not changed, changed
