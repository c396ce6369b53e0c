"""Main-process side of the ``mediapipe`` hand backend: find its environment, run the worker, read back.

The main environment never imports mediapipe (it needs numpy<2 and protobuf<5). The worker
(``worker.py`` beside this file) runs in the mediapipe environment, made by ``make mediapipe-env``::

    <env>/bin/python -I worker.py work/hands/mediapipe/request.json work/hands/mediapipe/response.npz

Its stderr goes to ``worker.log`` in the same folder. A missing environment, a non-zero exit status,
a timeout or a malformed response is a ``PreprocessError`` that names the file and what to do.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np

from hold.utils.io import write_json
from preprocess.config import MediapipeConfig
from preprocess.errors import PreprocessError
from preprocess.mediapipe.tracks import Detections
from preprocess.mediapipe.worker import NUM_LANDMARKS, OPTION_KEYS, PROTOCOL

STEP = "hands"
WORKER = Path(__file__).with_name("worker.py")
ENV_VAR = "HOLD_MEDIAPIPE_PYTHON"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENV = REPO_ROOT / ".venv-mediapipe"
MAKE_COMMAND = "make mediapipe-env"
_LOG_TAIL_LINES = 15
_QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}  # mediapipe's C++ logging


def mediapipe_python(cfg: MediapipeConfig | None = None) -> Path:
    """The mediapipe environment's python: ``cfg.python``, else $HOLD_MEDIAPIPE_PYTHON, else
    ``<repo>/.venv-mediapipe/bin/python`` (whether it exists or not)."""
    configured = (cfg.python if cfg is not None else "") or os.environ.get(ENV_VAR, "")
    return Path(configured) if configured else DEFAULT_ENV / "bin" / "python"


def environment_ready(cfg: MediapipeConfig | None = None) -> bool:
    """True when the mediapipe environment exists (its python is an executable file)."""
    python = mediapipe_python(cfg)
    return python.is_file() and os.access(python, os.X_OK)


def require_environment(cfg: MediapipeConfig) -> Path:
    """The environment's python, or a ``PreprocessError`` that says how to create it."""
    python = mediapipe_python(cfg)
    if not environment_ready(cfg):
        raise PreprocessError(
            STEP,
            f"hands.backend=mediapipe runs in its own Python environment, which does not exist: create it "
            f"with `{MAKE_COMMAND}` in {REPO_ROOT} (a venv with the pinned mediapipe==0.10.21, numpy<2, "
            f"protobuf<5), or set hands.mediapipe.python (or ${ENV_VAR}) to such an environment's python",
            python,
        )
    return python


def worker_options(cfg: MediapipeConfig) -> dict:
    """The settings the worker needs, as the request's ``options``."""
    values = dataclasses.asdict(cfg)
    return {k: values[k] for k in OPTION_KEYS}


def run_worker(
    python: Path,
    frames: list[Path],
    options: dict,
    workdir: Path,
    timeout_s: float = 0.0,
    worker: Path | None = None,
) -> Path:
    """Write the request, run the worker in the mediapipe environment, return the response path.

    Args:
        python: the environment's interpreter.
        frames: image files in frame order.
        options: the request's options (``worker_options``).
        workdir: where request.json, response.npz and worker.log go.
        timeout_s: give up after this long; 0 waits.
        worker: the worker script; None: ``WORKER`` (tests pass a fake one).

    Raises:
        PreprocessError: the worker cannot start, fails, times out or writes no response.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    request, response, log = workdir / "request.json", workdir / "response.npz", workdir / "worker.log"
    response.unlink(missing_ok=True)
    write_json(
        request, {"protocol": PROTOCOL, "frames": [str(p.resolve()) for p in frames], "options": options}
    )
    cmd = [str(python), "-I", str(worker or WORKER), str(request), str(response)]
    env = os.environ | _QUIET_ENV
    try:
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout_s or None)
    except subprocess.TimeoutExpired:
        raise PreprocessError(
            STEP, f"the mediapipe worker did not finish within hands.mediapipe.timeout_s={timeout_s} s", log
        ) from None
    except OSError as e:
        raise PreprocessError(STEP, f"cannot run the mediapipe environment's python ({e}); re-create it "
                              f"with `{MAKE_COMMAND}`", python) from None  # fmt: skip
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
        hint = (
            f"; the environment lacks mediapipe: re-create it with `{MAKE_COMMAND}`"
            if "No module named" in tail
            else ""
        )
        raise PreprocessError(
            STEP, f"the mediapipe worker failed (exit status {proc.returncode}) on {request}{hint}; "
            f"the end of its log:\n{tail}", log,
        )  # fmt: skip
    if not response.is_file():
        raise PreprocessError(STEP, "the mediapipe worker exited without writing its response", response)
    return response


def _check(data: dict[str, np.ndarray], key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in data:
        raise PreprocessError(STEP, f"malformed worker response: key '{key}' is missing", path)
    value = data[key]
    if value.shape != shape:
        raise PreprocessError(
            STEP, f"malformed worker response: key '{key}' expected shape {shape}, found {value.shape}", path
        )
    return value


def read_response(path: Path, num_frames: int, max_hands: int) -> Detections:
    """Load and check a worker response of ``num_frames`` frames with ``max_hands`` slots.

    Raises:
        PreprocessError: unreadable file, wrong protocol, a missing key or a wrong shape (naming the file).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise PreprocessError(STEP, f"malformed worker response: not a readable .npz ({e})", path) from None
    protocol = _check(data, "protocol", (), path)
    if int(protocol) != PROTOCOL:
        raise PreprocessError(STEP, f"worker response of protocol {int(protocol)}, expected {PROTOCOL}", path)
    T, N, J = num_frames, max_hands, NUM_LANDMARKS
    count = _check(data, "count", (T,), path).astype(int)
    if (count < 0).any() or (count > N).any():
        raise PreprocessError(STEP, f"malformed worker response: 'count' outside 0..{N}", path)
    det = Detections(
        landmarks=_check(data, "landmarks", (T, N, J, 3), path).astype(np.float64),
        world=_check(data, "world", (T, N, J, 3), path).astype(np.float64),
        handedness=_check(data, "handedness", (T, N), path).astype(np.float64),
        score=_check(data, "score", (T, N), path).astype(np.float64),
        source=_check(data, "source", (T, N), path).astype(int),
        count=count,
        image_size=_check(data, "image_size", (T, 2), path).astype(int),
        seconds=_check(data, "seconds", (T,), path).astype(np.float64),
        version=str(_check(data, "mediapipe_version", (), path)),
    )
    present = det.present
    finite = np.isfinite(det.landmarks).all((-1, -2)) & np.isfinite(det.world).all((-1, -2))
    if not finite[present].all():
        t = int(np.flatnonzero((present & ~finite).any(1))[0])
        raise PreprocessError(STEP, f"malformed worker response: non-finite landmarks in frame {t}", path)
    return det


def detect(frames: list[Path], workdir: Path, cfg: MediapipeConfig) -> Detections:
    """Run mediapipe on the frames (in order) in its environment; returns the checked detections."""
    python = require_environment(cfg)
    response = run_worker(python, frames, worker_options(cfg), workdir, cfg.timeout_s)
    return read_response(response, len(frames), cfg.max_num_hands)
