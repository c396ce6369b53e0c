"""Loss-weight ramps (threestudio style): ``[start_step, start_value, end_value, end_step]``."""

from __future__ import annotations

from collections.abc import Sequence


def ramp(spec: float | Sequence[float], step: int) -> float:
    """Value of a weight at ``step``.

    Args:
        spec: a constant, or ``[start_step, start_value, end_value, end_step]``: ``start_value`` until
            ``start_step``, linear to ``end_value`` at ``end_step``, constant after.
        step: the global optimisation step.
    """
    if isinstance(spec, (int, float)):
        return float(spec)
    if len(spec) != 4:
        raise ValueError(f"a ramp is [start_step, start_value, end_value, end_step], got {list(spec)}")
    start_step, start_value, end_value, end_step = spec
    if end_step <= start_step or step >= end_step:
        return float(end_value if step >= start_step else start_value)
    if step <= start_step:
        return float(start_value)
    t = (step - start_step) / (end_step - start_step)
    return float(start_value + t * (end_value - start_value))


def check_ramp(spec: float | Sequence[float], name: str) -> None:
    """A ``ValueError`` naming ``name`` unless ``spec`` is a weight ≥ 0 or a ramp ``[start_step,
    start_value, end_value, end_step]`` with 0 ≤ start_step ≤ end_step and both values ≥ 0."""
    if isinstance(spec, (int, float)):
        if not spec >= 0:
            raise ValueError(f"{name}: a loss weight must be ≥ 0, found {spec}")
        return
    if len(spec) != 4:
        raise ValueError(
            f"{name}: a ramp is [start_step, start_value, end_value, end_step], found {list(spec)}"
        )
    start_step, start_value, end_value, end_step = spec
    if not 0 <= start_step <= end_step:
        raise ValueError(f"{name}: a ramp needs 0 ≤ start_step ≤ end_step, found {list(spec)}")
    if not (start_value >= 0 and end_value >= 0):
        raise ValueError(f"{name}: a ramp's weights must be ≥ 0, found {list(spec)}")
