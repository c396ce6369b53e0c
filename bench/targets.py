"""Acceptance targets of the benchmarks: ``{metric: (op, value)}``, checked against measured metrics."""

from __future__ import annotations

import operator

OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


def describe(targets: dict[str, tuple[str, object]]) -> dict[str, str]:
    """{metric: "op value"} for the JSON report."""
    return {k: f"{op} {v}" for k, (op, v) in targets.items()}


def check(metrics: dict, targets: dict[str, tuple[str, object]]) -> dict[str, bool]:
    """{metric: met?}; a metric that was not measured (missing or None) is not met."""
    return {k: metrics.get(k) is not None and bool(OPS[op](metrics[k], v)) for k, (op, v) in targets.items()}
