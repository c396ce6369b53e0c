"""Range checks for config dataclasses (``__post_init__``): a ``ValueError`` naming the field, which the
config loader turns into an error naming the full key."""

from __future__ import annotations

from typing import Any


def at_least(obj: Any, minimum: float, *names: str) -> None:
    """Each named field of ``obj`` must be ≥ ``minimum``."""
    for name in names:
        value = getattr(obj, name)
        if not value >= minimum:
            raise ValueError(f"{name} must be ≥ {minimum:g}, found {value}")


def fraction(obj: Any, *names: str) -> None:
    """Each named field of ``obj`` must lie in [0, 1]."""
    for name in names:
        value = getattr(obj, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], found {value}")


def positive(obj: Any, *names: str) -> None:
    """Each named field of ``obj`` must be > 0."""
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0, found {value}")


def zero_or_above(obj: Any, minimum: float, *names: str) -> None:
    """Each named field of ``obj`` must be 0 (the feature is off) or > ``minimum``."""
    for name in names:
        value = getattr(obj, name)
        if not (value == 0 or value > minimum):
            raise ValueError(f"{name} must be 0 (off) or > {minimum:g}, found {value}")


def check(ok: bool, message: str) -> None:
    """Raise a ``ValueError`` with ``message`` unless ``ok``."""
    if not ok:
        raise ValueError(message)
