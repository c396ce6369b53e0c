"""One clip's row of the suite: status, step times, metrics and what degraded on the way."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hold.suite.spec import ClipSpec

_ERROR_LINE = re.compile(r"error|exception|traceback|killed|timeout", re.IGNORECASE)
_MAX_ERROR_CHARS = 400


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def error_line(log_path: Path) -> str:
    """The most telling line of a failed step's last attempt: its last error line, else its last line."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return f"{log_path}: no log"
    attempt = text.rsplit("\n=== ", 1)[-1].splitlines()[1:]
    lines = [line.strip() for line in attempt if line.strip()]
    if not lines:
        return "the step printed nothing"
    errors = [line for line in lines if _ERROR_LINE.search(line)]
    return (errors or lines)[-1][:_MAX_ERROR_CHARS]


def preprocess_facts(seq: Path) -> dict[str, Any]:
    """What the preprocessing steps recorded about the clip: SfM registration, hand detection."""
    facts: dict[str, Any] = {}
    sfm = _read_json(seq / "work" / "sfm" / "sfm.json")
    if sfm is not None:
        facts |= {
            "sfm_registered": sfm.get("registered"),
            "sfm_frames": sfm.get("num_frames"),
            "sfm_pose_outliers": sfm.get("pose_outliers", 0),
            "sfm_mode": sfm.get("mode"),
            "object_pose_sources": sfm.get("sources"),
            "sfm_warnings": sfm.get("warnings"),
        }
    hands = _read_json(seq / "work" / "hands" / "hands.json")
    if hands is not None:
        for side in hands.get("sides", []):
            facts[f"{side}_hand_valid"] = hands.get(side, {}).get("valid")
    frames = _read_json(seq / "work" / "frames" / "frames.json")
    if frames is not None and "num_frames" in frames:
        facts["num_frames"] = frames["num_frames"]
    return facts


def degradations(facts: dict[str, Any], metrics: dict[str, Any] | None = None) -> list[str]:
    """One line per part of the output that was filled in rather than measured (or, for the final model,
    taken from an earlier stage: ``reconstruction.fallback`` of metrics.json; the object mesh's level
    when the masks could not choose it)."""
    lines = []
    reconstruction = (metrics or {}).get("reconstruction") or {}
    if reconstruction.get("fallback"):
        lines.append(f"final model: {reconstruction['fallback']}")
    level_fallback = ((reconstruction.get("object_mesh") or {}).get("level_fit") or {}).get("fallback")
    if level_fallback:
        lines.append(f"object mesh level: {level_fallback}")
    T = facts.get("sfm_frames") or facts.get("num_frames")
    reg, outliers = facts.get("sfm_registered"), facts.get("sfm_pose_outliers") or 0
    if facts.get("object_pose_sources") is not None:  # the sfm step said what it filled, with the numbers
        lines += list(facts.get("sfm_warnings") or [])
    elif T and reg is not None and reg - outliers < T:
        lines.append(
            f"object poses: SfM registered {reg}/{T} frames ({outliers} rejected as outliers); "
            f"{T - reg + outliers} frames interpolated or extrapolated"
        )
    for key, value in facts.items():
        if key.endswith("_hand_valid") and T and value is not None and value < T:
            side = key.removesuffix("_hand_valid")
            lines.append(f"{side} hand: fitted in {value}/{T} frames; {T - value} filled from neighbours")
    return lines


def clip_result(clip: ClipSpec, path: Path, steps: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """The clip's result.json from its step records and the files its steps wrote."""
    failed = next((s for s in order if s in steps and steps[s]["exit_code"] != 0), None)
    metrics = (
        _read_json(path / "run" / "metrics.json") if steps.get("evaluate", {}).get("exit_code") == 0 else None
    )
    if failed is not None:
        status, error = "failed", error_line(path / "logs" / f"{failed}.log")
    elif metrics is None:
        status, failed, error = "failed", "evaluate", "no metrics.json after the evaluation"
    else:
        status, error = "ok", None
    facts = preprocess_facts(path / "sequence")
    return {
        "name": clip.name,
        "about": clip.about,
        "seed": clip.seed,
        "fingerprint": clip.fingerprint(),
        "tags": clip.tags(),
        "status": status,
        "failed_step": failed,
        "error": error,
        "seconds": round(sum(s["seconds"] for s in steps.values()), 1),
        "steps": steps,
        "preprocess": facts,
        "degraded": degradations(facts, metrics),
        "metrics": metrics,
    }
