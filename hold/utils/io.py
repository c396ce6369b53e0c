"""Atomic file writes: a crash never leaves a half-written file under its final name."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Uncompressed npz (fast to read, keys may contain dots such as ``right.pose``)."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG."""
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: PNG data must be uint8, got {image.dtype}")
    with atomic_open(path, "wb") as f:
        Image.fromarray(image).save(f, format="PNG")


def describe_os_error(error: OSError) -> str:
    """One line for a filesystem error: the path(s) and the problem (no traceback)."""
    paths = " → ".join(str(p) for p in (error.filename, error.filename2) if p)
    problem = error.strerror or str(error)
    return f"{paths}: {problem}" if paths else problem
