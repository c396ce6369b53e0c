"""The one place where optional packages are imported (docs/architecture.md).

A missing optional package never breaks ``import hold``: :func:`optional_import` returns ``None``.
Code that *needs* one calls :func:`require`, which raises a single :class:`MissingDependencyError`
saying how to install it. Backend switches (``backend: auto | torch | tcnn`` and the like) go through
:func:`resolve_backend`: ``auto`` falls back to the PyTorch path with one warning per process.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch


class MissingDependencyError(ImportError):
    """An optional package was asked for explicitly but cannot be imported."""


class BackendFallbackWarning(UserWarning):
    """An ``auto`` backend fell back to the PyTorch implementation."""


@dataclass(frozen=True)
class OptionalPackage:
    module: str
    """Import name."""
    purpose: str
    """What hold uses it for."""
    install: str
    """How to install it."""
    needs_cuda: bool = False
    """It only works on a CUDA device."""


PACKAGES: dict[str, OptionalPackage] = {
    "tinycudann": OptionalPackage(
        module="tinycudann",
        purpose="fused CUDA hash-grid encoding",
        install=(
            "pip install git+https://github.com/NVlabs/tiny-cuda-nn/#subdirectory=bindings/torch "
            "(needs a CUDA GPU, the CUDA toolkit and a CUDA build of torch)"
        ),
        needs_cuda=True,
    ),
    "kaolin": OptionalPackage(
        module="kaolin",
        purpose="DIB-R silhouette rasteriser and GPU mesh distances",
        install="see https://kaolin.readthedocs.io/en/latest/notes/installation.html (match your torch/CUDA)",
        needs_cuda=True,
    ),
    "hloc": OptionalPackage(
        module="hloc",
        purpose="learned SfM features and matching (SuperPoint + SuperGlue / LightGlue)",
        install="pip install git+https://github.com/cvg/Hierarchical-Localization",
    ),
    "segment_anything": OptionalPackage(
        module="segment_anything",
        purpose="SAM segmentation backend",
        install="pip install 'hold[sam]' (or pip install segment-anything) and give a checkpoint path",
    ),
    "sam2": OptionalPackage(
        module="sam2",
        purpose="SAM 2 video segmentation backend",
        install="make sam2 (SAM 2 without torchvision, which would replace the pinned torch)",
    ),
}

_cache: dict[str, ModuleType | None] = {}
_import_errors: dict[str, str] = {}
_warned: set[str] = set()


def optional_import(name: str) -> ModuleType | None:
    """Import an optional package once; ``None`` when it is missing or fails to import.

    Any exception during import (not only ``ImportError``: CUDA extensions can fail with ``OSError``
    or ``RuntimeError``) counts as missing; the reason is kept for :func:`require`'s message.
    """
    if name not in _cache:
        try:
            _cache[name] = importlib.import_module(PACKAGES[name].module if name in PACKAGES else name)
        except Exception as e:  # noqa: BLE001 - a broken optional package must not break hold
            _cache[name] = None
            _import_errors[name] = f"{type(e).__name__}: {e}"
    return _cache[name]


def is_available(name: str) -> bool:
    """Whether an optional package imports."""
    return optional_import(name) is not None


def require(
    name: str, feature: str, alternative: str = "Or choose the PyTorch backend (backend: torch)."
) -> ModuleType:
    """Import an optional package that ``feature`` needs, or raise one clear error on how to get it
    (ending with ``alternative``, what to choose instead)."""
    module = optional_import(name)
    if module is not None:
        return module
    pkg = PACKAGES.get(name)
    how = pkg.install if pkg else f"pip install {name}"
    reason = _import_errors.get(name, "not installed")
    raise MissingDependencyError(
        f"{feature} needs the optional package '{name}', which cannot be imported ({reason}). "
        f"Install it with: {how}. {alternative}"
    )


def resolve_backend(
    requested: str,
    *,
    feature: str,
    setting: str,
    fallback: str,
    accelerated: str,
    package: str,
    blocker: Callable[[], str | None] = lambda: None,
) -> str:
    """Turn a ``setting: auto | <fallback> | <accelerated>`` choice into the implementation to run.

    ``accelerated`` runs when ``package`` imports and ``blocker()`` finds nothing in its way (it returns
    the reason, e.g. no CUDA device). Asked for explicitly where it cannot run, it raises
    :class:`MissingDependencyError` naming the reason; ``auto`` falls back to ``fallback`` with one
    :class:`BackendFallbackWarning` per feature and process.
    """
    if requested == fallback:
        return fallback
    if requested not in ("auto", accelerated):
        raise ValueError(f"{setting}: {requested!r} is not one of 'auto', '{fallback}', '{accelerated}'")
    reason = None if is_available(package) else f"{package} is not installed"
    if reason is None:
        reason = blocker()
    if reason is None:
        return accelerated
    if requested == accelerated:
        if not is_available(package):
            require(package, f"{feature} with {setting}={accelerated}")
        raise MissingDependencyError(
            f"{feature} with {setting}={accelerated} cannot run: {reason}. "
            f"Use {setting}: {fallback} (or auto) on this machine."
        )
    name = "the PyTorch implementation" if fallback == "torch" else fallback
    warn_once(
        f"fallback:{feature}",
        f"{feature}: {setting}=auto uses {name} because {reason} (set {setting}: {fallback} to silence "
        "this warning).",
    )
    return fallback


def no_cuda() -> str | None:
    """Why CUDA code cannot run here, or None when it can."""
    return None if torch.cuda.is_available() else "no CUDA device is available"


def resolve_device(setting: str) -> str:
    """``auto`` → ``cuda`` when a CUDA device is available, else ``cpu``; anything else unchanged."""
    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def warn_once(key: str, message: str) -> None:
    """Emit a :class:`BackendFallbackWarning` the first time ``key`` is seen in this process."""
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(message, BackendFallbackWarning, stacklevel=3)


def _reset_for_tests() -> None:
    """Forget imports and warnings (tests only)."""
    _cache.clear()
    _import_errors.clear()
    _warned.clear()
