"""Fixtures of the hand-model tests: Anny hands (built once per session) and fake MANO files."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from hold.config.hand import HandConfig
from hold.hand.anny_hand import AnnyHand
from hold.hand.build import build_hand_model


@pytest.fixture(scope="session")
def anny_right() -> AnnyHand:
    return build_hand_model(HandConfig(), "right")


@pytest.fixture(scope="session")
def anny_left() -> AnnyHand:
    return build_hand_model(HandConfig(), "left")


@pytest.fixture
def one_thread():
    """Fitting runs many small ops; one thread avoids OpenMP stalls on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Anny bone → MANO joint: root, wrist and metacarpals → palm (0); then the three phalanges of each
# finger in MANO's order (index 1-3, middle 4-6, little 7-9, ring 10-12, thumb 13-15).
_ANNY_TO_MANO = {0: 0, 1: 0, 5: 0, 9: 0, 13: 0, 17: 0, 2: 13, 3: 14, 4: 15, 6: 1, 7: 2, 8: 3}
_ANNY_TO_MANO |= {10: 4, 11: 5, 12: 6, 14: 10, 15: 11, 16: 12, 18: 7, 19: 8, 20: 9}
_MANO_PARENTS = [0, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
# MANO joint → the Anny bone whose head it sits on
_MANO_JOINT_BONE = [1, 6, 7, 8, 10, 11, 12, 18, 19, 20, 14, 15, 16, 2, 3, 4]


def fake_mano_arrays(hand: AnnyHand, seed: int = 0) -> dict[str, np.ndarray]:
    """A MANO-like model built from Anny's canonical hand: same mesh, 16 joints, random blend shapes."""
    rng = np.random.default_rng(seed)
    verts = hand.canonical_vertices().double().numpy()
    v = verts.shape[0]
    weights = np.zeros((v, 16))
    for bone, joint in _ANNY_TO_MANO.items():
        weights[:, joint] += hand.skinning_weights[:, bone].double().numpy()
    kp = hand.canonical_output().keypoints[0].double().numpy()
    # a regressor: each joint is the mean of the 4 vertices nearest its bone head
    head_points = {1: kp[0], 2: kp[1], 3: kp[2], 4: kp[3], 6: kp[5], 7: kp[6], 8: kp[7], 10: kp[9]}
    head_points |= {
        11: kp[10],
        12: kp[11],
        14: kp[13],
        15: kp[14],
        16: kp[15],
        18: kp[17],
        19: kp[18],
        20: kp[19],
    }
    rows, cols = [], []
    for j, bone in enumerate(_MANO_JOINT_BONE):
        near = np.argsort(np.linalg.norm(verts - head_points[bone], axis=1))[:4]
        rows += [j] * 4
        cols += near.tolist()
    regressor = scipy.sparse.csc_matrix((np.full(len(rows), 0.25), (rows, cols)), shape=(16, v))
    kintree = np.array([[2**32 - 1] + _MANO_PARENTS[1:], list(range(16))], dtype=np.int64)
    return {
        "v_template": verts,
        "f": hand.faces.numpy().astype(np.uint32),
        "weights": weights,
        "J_regressor": regressor,
        "kintree_table": kintree,
        "shapedirs": rng.normal(scale=2e-3, size=(v, 3, 10)),
        "posedirs": rng.normal(scale=2e-4, size=(v, 3, 135)),
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_mean": rng.normal(scale=0.1, size=45),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_chumpy_pickle(path: Path, arrays: dict) -> None:
    """Pickle like the official MANO files: a Python-2-style protocol-2 pickle in which some arrays
    are ``chumpy.ch.Ch`` objects (a fake chumpy module exists only while writing)."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:  # what chumpy pickles: an object whose state holds the array as ``x``
        pass

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch
    try:
        data = dict(arrays)
        for key in ("v_template", "shapedirs"):
            obj = Ch()
            obj.__dict__.update({"x": np.asarray(arrays[key]), "_dirty_vars": set()})
            data[key] = obj
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod


@pytest.fixture(scope="session")
def fake_mano_dir(tmp_path_factory, anny_right, anny_left) -> Path:
    """A folder with fake MANO_RIGHT.pkl / MANO_LEFT.pkl (chumpy-style pickles)."""
    folder = tmp_path_factory.mktemp("mano")
    write_chumpy_pickle(folder / "MANO_RIGHT.pkl", fake_mano_arrays(anny_right))
    write_chumpy_pickle(folder / "MANO_LEFT.pkl", fake_mano_arrays(anny_left))
    return folder
