"""Reading the user's MANO files without chumpy.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (https://mano.is.tue.mpg.de, licence required) are
Python-2 pickles whose arrays are partly ``chumpy`` objects, and chumpy no longer builds. We unpickle
them with stand-in classes for every chumpy class, keep their pickled state, and turn it back into
numpy arrays. A ``.npz`` with the same keys (e.g. written by ``convert_mano_to_npz``) works too.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

MANO_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
    "hands_components",
    "hands_mean",
)
"""Arrays of a MANO model file that the adapter needs."""
MANO_URL = "https://mano.is.tue.mpg.de"
CONTACT_ZONES_FILE = "contact_zones.pkl"
"""ObMan's contact zones of the MANO mesh (Hasson et al., CVPR 2019), the vertex ids HOLD's stage 2 uses."""


def mano_file_stem(side: str) -> str:
    """``MANO_RIGHT`` or ``MANO_LEFT``."""
    return "MANO_RIGHT" if side == "right" else "MANO_LEFT"


def find_mano_file(mano_dir: str | Path, side: str) -> Path:
    """The MANO file of one side in ``mano_dir`` (``.pkl`` preferred, else ``.npz``).

    Raises:
        FileNotFoundError: naming the expected files and where to get them.
    """
    stem = mano_file_stem(side)
    hint = (
        f"MANO is licensed and not shipped: register at {MANO_URL}, download 'Models & Code', and set "
        f"hand.mano_dir to the folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl (from mano_v*/models/), "
        f"or converted MANO_RIGHT.npz / MANO_LEFT.npz. Or use the open default, hand.model=anny."
    )
    if not str(mano_dir):
        raise FileNotFoundError(f"hand.model=mano needs hand.mano_dir, which is not set. {hint}")
    folder = Path(mano_dir).expanduser()
    for ext in (".pkl", ".npz"):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    raise FileNotFoundError(f"MANO model file not found: expected {folder / stem}.pkl (or .npz). {hint}")


class _ChumpyStandIn:
    """Replaces a chumpy class while unpickling; keeps the pickled state as attributes."""

    chumpy_class = "chumpy.Ch"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"_state": state})


class _ManoUnpickler(pickle.Unpickler):
    _stand_ins: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            key = f"{module}.{name}"
            if key not in self._stand_ins:
                self._stand_ins[key] = type(name, (_ChumpyStandIn,), {"chumpy_class": key})
            return self._stand_ins[key]
        if module.startswith("scipy.sparse"):  # old private module paths (scipy.sparse.csc, …)
            import scipy.sparse

            return getattr(scipy.sparse, name)
        return super().find_class(module, name)


def _to_numpy(value: Any, key: str) -> Any:
    """A chumpy stand-in, sparse matrix or array-like → numpy; other values unchanged."""
    if isinstance(value, _ChumpyStandIn):
        state = value.__dict__
        cls = value.chumpy_class.rsplit(".", 1)[-1]
        if "x" in state:  # a plain chumpy.Ch wraps its array in x
            return np.asarray(_to_numpy(state["x"], key))
        if cls == "Select" and "a" in state and "idxs" in state:
            a = np.asarray(_to_numpy(state["a"], key))
            out = a.ravel()[np.asarray(state["idxs"])]
            shape = state.get("preferred_shape")
            return out.reshape(shape) if shape is not None else out
        if cls == "reshape" and "a" in state and "newshape" in state:
            return np.asarray(_to_numpy(state["a"], key)).reshape(state["newshape"])
        raise ValueError(
            f"MANO file: key {key!r} holds a {value.chumpy_class} object that cannot be read without "
            f"chumpy; convert the file to .npz where chumpy is installed (np.asarray(value.r) per key)"
        )
    if hasattr(value, "toarray") and hasattr(value, "tocsr"):  # scipy sparse
        return np.asarray(value.toarray())
    return value


def load_mano_data(path: str | Path) -> dict[str, Any]:
    """Read a MANO ``.pkl`` (without chumpy) or ``.npz`` into numpy arrays.

    Raises:
        ValueError: naming the file and the missing keys when it is not a MANO model.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            data: dict[str, Any] = {k: z[k] for k in z.files}
    else:
        with open(path, "rb") as fh:
            data = _ManoUnpickler(fh, encoding="latin1").load()
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a pickled dict of MANO arrays, found {type(data).__name__}")
        data = {k: _to_numpy(v, k) for k, v in data.items()}
    missing = [k for k in MANO_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: not a MANO model file, missing keys {missing}")
    return data


def convert_mano_to_npz(src: str | Path, dst: str | Path) -> None:
    """Write the arrays ``ManoHand`` needs from a MANO ``.pkl`` to a chumpy-free ``.npz``."""
    data = load_mano_data(src)
    np.savez(dst, **{k: np.asarray(data[k]) for k in MANO_KEYS})


def load_contact_zones(mano_dir: str | Path, num_vertices: int) -> list[np.ndarray]:
    """The vertex ids of each of ObMan's contact zones, from ``contact_zones.pkl`` in ``mano_dir``.

    That file (``assets/contact_zones.pkl`` of github.com/hassony2/obman_train; HOLD's setup puts it in
    ``body_models/`` beside the MANO files) is a pickled dict whose ``contact_zones`` maps a zone to
    MANO vertex ids.

    Raises:
        FileNotFoundError: the file is missing, naming where it is expected and where to get it.
        ValueError: the file is not such a dict, or an id is outside the ``num_vertices`` of the mesh.
    """
    path = Path(mano_dir).expanduser() / CONTACT_ZONES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"refine.contact_regions 'zones' needs {path}: ObMan's contact zones of the MANO mesh "
            "(assets/contact_zones.pkl of github.com/hassony2/obman_train, also installed by HOLD's setup "
            "in body_models/); put it beside MANO_RIGHT.pkl, or use the regions 'tips', 'pads', 'palm'"
        )
    with open(path, "rb") as fh:
        data = pickle.load(fh, encoding="latin1")
    zones = data.get("contact_zones") if isinstance(data, dict) else None
    if not isinstance(zones, dict) or not zones:
        raise ValueError(f"{path}: expected a pickled dict with a non-empty 'contact_zones' mapping")
    ids = [np.asarray(zones[k], dtype=np.int64).reshape(-1) for k in sorted(zones)]
    for key, zone in zip(sorted(zones), ids):
        if len(zone) == 0 or zone.min() < 0 or zone.max() >= num_vertices:
            raise ValueError(
                f"{path}: contact zone {key!r} holds ids outside the {num_vertices} vertices of the MANO mesh"
            )
    return ids
