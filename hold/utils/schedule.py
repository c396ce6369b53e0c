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
