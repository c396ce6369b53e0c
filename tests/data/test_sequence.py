from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hold.data.sequence import (
    GroundTruth,
    SequenceError,
    pose_keys,
    read_ground_truth,
    read_sequence,
    sequence_arrays,
    validate_sequence,
    with_poses,
    write_ground_truth,
    write_sequence,
)
from tests.conftest import random_frames, random_sequence


def test_round_trip(sequence_dir: Path):
    written = random_sequence()
    seq = read_sequence(sequence_dir)
    assert seq.num_frames == 4 and seq.image_size == (12, 16) and seq.hand_model == "anny"
    np.testing.assert_allclose(seq.hands["right"].pose, written.hands["right"].pose, rtol=1e-6)
    np.testing.assert_allclose(seq.object.points, written.object.points, rtol=1e-6)
    assert seq.object.colors.dtype == np.uint8
    assert seq.K.dtype == np.float64 and seq.valid.dtype == bool
    assert seq.load_image(2).shape == (12, 16, 3)
    assert set(np.unique(seq.load_mask(1))) <= {0, 1, 2, 255}
    assert json.loads((sequence_dir / "sequence.json").read_text())["source"] == {"made_by": "tests"}


def test_no_temporary_files_left(sequence_dir: Path):
    assert not [p for p in sequence_dir.rglob("*") if p.name.endswith(".tmp")]


def test_mano_sequence_round_trip(tmp_path: Path):
    seq = random_sequence(hand_model="mano")
    write_sequence(tmp_path / "s", seq, *random_frames(seq))
    assert read_sequence(tmp_path / "s").hands["right"].pose.shape == (4, 15, 3)


def test_ground_truth_round_trip(sequence_dir: Path):
    T = 4
    gt = GroundTruth(
        joints={"right": np.zeros((T, 21, 3))},
        object_R=np.tile(np.eye(3), (T, 1, 1)),
        object_t=np.zeros((T, 3)),
        valid=np.ones(T, bool),
    )
    write_ground_truth(sequence_dir / "gt", gt, b"ply\n")
    validate_sequence(sequence_dir)
    assert read_ground_truth(sequence_dir / "gt", num_frames=T).joints["right"].shape == (T, 21, 3)
    with pytest.raises(SequenceError, match=r"valid.*expected shape \(5,\)"):
        read_ground_truth(sequence_dir / "gt", num_frames=5)


# ------------------------------------------------------------------------------------ malformed sequences


def _edit_npz(root: Path, edit) -> None:
    path = root / "sequence.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    edit(arrays)
    np.savez(path, **arrays)


def _edit_json(root: Path, edit) -> None:
    path = root / "sequence.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


def _pop(key):
    return lambda d: d.pop(key)


def _nan_at(key, index):
    def edit(arrays):
        a = arrays[key].copy()
        a[index] = np.nan
        arrays[key] = a

    return edit


def _write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


MALFORMED = {
    "missing sequence.json": (lambda r: (r / "sequence.json").unlink(), ["sequence.json", "missing"]),
    "json not parseable": (lambda r: (r / "sequence.json").write_text("{oops"), ["sequence.json", "JSON"]),
    "unknown version": (lambda r: _edit_json(r, _set("version", 2)), ["'version'", "2"]),
    "wrong format name": (lambda r: _edit_json(r, _set("format", "nerf")), ["'format'", "nerf"]),
    "unknown hand model": (lambda r: _edit_json(r, _set("hand_model", "smpl")), ["'hand_model'", "smpl"]),
    "bad hands list": (lambda r: _edit_json(r, _set("hands", ["middle"])), ["'hands'", "middle"]),
    "num_frames vs arrays": (lambda r: _edit_json(r, _set("num_frames", 5)), ["'valid'", "(5,)", "(4,)"]),
    "missing npz": (lambda r: (r / "sequence.npz").unlink(), ["sequence.npz", "missing"]),
    "hand arrays missing": (lambda r: _edit_npz(r, _pop("right.pose")), ["'right'", "right.pose", "missing"]),
    "left hand listed but absent": (
        lambda r: _edit_json(r, _set("hands", ["right", "left"])),
        ["'left'", "left.global_orient", "missing"],
    ),
    "wrong pose joints": (
        lambda r: _edit_npz(r, _set("right.pose", np.zeros((4, 15, 3), np.float32))),
        ["right.pose", "(4, 20, 3)", "(4, 15, 3)"],
    ),
    "T mismatch in transl": (
        lambda r: _edit_npz(r, _set("right.transl", np.zeros((3, 3), np.float32))),
        ["right.transl", "(4, 3)", "(3, 3)"],
    ),
    "wrong betas size": (
        lambda r: _edit_npz(r, _set("right.betas", np.zeros(10, np.float32))),
        ["right.betas", "(6,)", "(10,)"],
    ),
    "valid not bool": (
        lambda r: _edit_npz(r, _set("valid", np.ones(4, np.float32))),
        ["'valid'", "bool", "float32"],
    ),
    "nan in transl": (
        lambda r: _edit_npz(r, _nan_at("object.transl", (2, 1))),
        ["object.transl", "finite", "(2, 1)"],
    ),
    "inf in pose": (
        lambda r: _edit_npz(
            r, lambda a: a.__setitem__("right.pose", np.full((4, 20, 3), np.inf, np.float32))
        ),
        ["right.pose", "finite"],
    ),
    "K negative focal": (
        lambda r: _edit_npz(r, _set("K", np.diag([-20.0, 20.0, 1.0]))),
        ["'K'", "focal"],
    ),
    "K not pinhole": (
        lambda r: _edit_npz(r, _set("K", np.array([[20.0, 0, 8], [0, 20, 6], [1, 0, 1]]))),
        ["'K'", "pinhole"],
    ),
    "K wrong shape": (lambda r: _edit_npz(r, _set("K", np.eye(4))), ["'K'", "(3, 3)", "(4, 4)"]),
    "scale not positive": (
        lambda r: _edit_npz(r, _set("object.scale", np.array(-1.0, np.float32))),
        ["object.scale", "positive"],
    ),
    "points outside unit sphere": (
        lambda r: _edit_npz(r, _set("object.points", np.full((5, 3), 2.0, np.float32))),
        ["object.points", "unit sphere"],
    ),
    "colors wrong dtype": (
        lambda r: _edit_npz(r, _set("object.colors", np.zeros((50, 3), np.float32))),
        ["object.colors", "uint8"],
    ),
    "missing frame": (lambda r: (r / "images" / "00002.png").unlink(), ["images", "4 frames", "found 3"]),
    "gap in frame numbers": (
        lambda r: (r / "masks" / "00001.png").rename(r / "masks" / "00009.png"),
        ["masks", "00001.png", "missing"],
    ),
    "unreadable image": (
        lambda r: (r / "images" / "00001.png").write_bytes(b"not a png"),
        ["00001.png", "unreadable"],
    ),
    "image of another size": (
        lambda r: _write_png(r / "images" / "00003.png", np.zeros((12, 17, 3), np.uint8)),
        ["00003.png", "(12, 16)", "(12, 17)"],
    ),
    "undefined mask label": (
        lambda r: _write_png(r / "masks" / "00000.png", np.full((12, 16), 7, np.uint8)),
        ["masks/00000.png", "label", "[7]"],
    ),
    "rgb mask": (
        lambda r: _write_png(r / "masks" / "00002.png", np.zeros((12, 16, 3), np.uint8)),
        ["masks/00002.png", "single-channel"],
    ),
    "corrupt npz": (
        lambda r: (r / "sequence.npz").write_bytes(b"PK garbage"),
        ["sequence.npz", "unreadable"],
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_sequence_is_named(sequence_dir: Path, case: str):
    breaker, expected = MALFORMED[case]
    breaker(sequence_dir)
    with pytest.raises(SequenceError) as info:
        read_sequence(sequence_dir)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_write_rejects_bad_arrays_before_writing(tmp_path: Path):
    seq = random_sequence()
    seq.object.transl = seq.object.transl[:3]
    with pytest.raises(SequenceError, match="object.transl"):
        write_sequence(tmp_path / "s", seq, *random_frames(random_sequence()))
    assert not (tmp_path / "s").exists()


def test_write_rejects_wrong_frame_count(tmp_path: Path):
    seq = random_sequence()
    images, masks = random_frames(seq)
    with pytest.raises(SequenceError, match="expected 4 images"):
        write_sequence(tmp_path / "s", seq, images[:3], masks)
    assert not (tmp_path / "s" / "sequence.json").exists()


def test_write_rejects_undefined_labels(tmp_path: Path):
    seq = random_sequence()
    images, masks = random_frames(seq)
    masks[1] = masks[1].copy()
    masks[1][0, 0] = 9
    with pytest.raises(SequenceError, match=r"masks\[1\].*\[9\]"):
        write_sequence(tmp_path / "s", seq, images, masks)


def test_object_source_round_trip_and_undefined_codes(tmp_path: Path):
    from hold.data.sequence import SequenceError, read_sequence, write_sequence

    seq = random_sequence(T=4)
    seq.object.source = np.array([0, 2, 2, 1], np.uint8)
    images, masks = random_frames(seq)
    out = read_sequence(write_sequence(tmp_path / "ok", seq, images, masks))
    assert out.object.source.tolist() == [0, 2, 2, 1]
    seq.object.source = np.array([0, 2, 7, 1], np.uint8)
    with pytest.raises(SequenceError, match=r"key 'object.source': undefined code\(s\) \[7\]"):
        write_sequence(tmp_path / "bad", seq, images, masks)
    assert not (tmp_path / "bad" / "sequence.npz").exists()


def test_a_sequence_without_a_valid_frame_or_with_the_principal_point_outside_is_refused(tmp_path: Path):
    from hold.data.sequence import SequenceError, write_sequence

    seq = random_sequence(T=4)
    images, masks = random_frames(seq)
    seq.valid = np.zeros(4, bool)
    with pytest.raises(SequenceError, match="key 'valid': every frame is invalid"):
        write_sequence(tmp_path / "a", seq, images, masks)
    seq = random_sequence(T=4)
    seq.K[0, 2] = 40.0  # 16 px wide
    with pytest.raises(SequenceError, match="principal point must be inside the 16x12 image"):
        write_sequence(tmp_path / "b", seq, images, masks)


def test_poses_laid_over_a_sequence_are_checked_like_sequence_npz(sequence_dir: Path):
    """Stage 3 trains on stage 2's refined.npz laid over the sequence (``with_poses``)."""
    seq = read_sequence(sequence_dir)
    arrays = sequence_arrays(seq)
    poses = {k: arrays[k] for k in pose_keys(seq)}
    poses["object.transl"] = poses["object.transl"] + 0.01
    moved = with_poses(seq, poses, "refined.npz")
    np.testing.assert_allclose(moved.object.transl, seq.object.transl + 0.01)
    assert moved.object.points is not None and moved.root == seq.root
    with pytest.raises(SequenceError, match="refined.npz: key 'right.pose' is missing"):
        with_poses(seq, {k: v for k, v in poses.items() if k != "right.pose"}, "refined.npz")
    with pytest.raises(SequenceError, match="refined.npz.*'object.rot'"):
        with_poses(seq, poses | {"object.rot": poses["object.rot"][:2]}, "refined.npz")
