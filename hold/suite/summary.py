"""The suite's summary: every clip's row, then the median and the worst clip, as JSON and markdown."""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hold.suite.spec import SuiteSpec
from hold.utils.io import write_json, write_text


@dataclass(frozen=True)
class Column:
    """A numeric column of the table.

    Attributes:
        key: dotted path into a clip's result (``metrics.cd_cm2``).
        label: column header.
        digits: decimals shown.
        worst: ``max`` when larger is worse, ``min`` when smaller is worse.
        absolute: the worst is the largest magnitude (signed errors such as the scale error).
    """

    key: str
    label: str
    digits: int
    worst: str = "max"
    absolute: bool = False


COLUMNS = (
    Column("metrics.mpjpe_mm", "MPJPE all (mm)", 1),
    Column("metrics.mpjpe_detected_mm", "MPJPE det. (mm)", 1),
    Column("metrics.cd_cm2", "CD (cm²)", 2),
    Column("metrics.f10", "F10 (%)", 1, worst="min"),
    Column("metrics.cd_h_cm2", "CD_h (cm²)", 2),
    Column("metrics.object_scale_error_pct", "scale err. (%)", 0, absolute=True),
    Column("metrics.object_pose.rotation_hand_deg.median", "rot. vs hand (°, med.)", 1),
    Column("metrics.object_pose.rotation_rel_ref_deg.median", "rot. vs frame 0 (°, med.)", 1),
    Column("registered_pct", "SfM reg. (%)", 0, worst="min"),
    Column("hand_anchored_pct", "poses from hand (%)", 0),
    Column("hand_valid_pct", "hand fitted (%)", 0, worst="min"),
    Column("seconds", "time (s)", 0),
)


def lookup(data: dict[str, Any], key: str) -> float | None:
    """A numeric value at a dotted path, or None when any part is missing or not a number."""
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _row_values(result: dict[str, Any]) -> dict[str, Any]:
    facts = result.get("preprocess") or {}
    T = facts.get("sfm_frames") or facts.get("num_frames")
    row = dict(result)
    sources = facts.get("object_pose_sources")
    if T and sources:
        row["registered_pct"] = 100.0 * sources.get("sfm_registered", 0) / T
        row["hand_anchored_pct"] = 100.0 * sources.get("hand_anchored", 0) / T
    elif T and facts.get("sfm_registered") is not None:
        row["registered_pct"] = 100.0 * (facts["sfm_registered"] - (facts.get("sfm_pose_outliers") or 0)) / T
    valid = [v for k, v in facts.items() if k.endswith("_hand_valid") and v is not None]
    if T and valid:
        row["hand_valid_pct"] = 100.0 * min(valid) / T
    return row


def aggregate(results: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Median and worst of every column over the clips that have a value (failed clips have none)."""
    rows = [_row_values(r) for r in results]
    out: dict[str, dict[str, float | None]] = {"median": {}, "worst": {}}
    for col in COLUMNS:
        values = [v for v in (lookup(r, col.key) for r in rows) if v is not None]
        if not values:
            out["median"][col.key] = out["worst"][col.key] = None
            continue
        out["median"][col.key] = statistics.median(values)
        if col.absolute:
            out["worst"][col.key] = max(values, key=abs)
        else:
            out["worst"][col.key] = max(values) if col.worst == "max" else min(values)
    return out


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def noise_groups(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The clips by estimator-noise preset (``mild``, ``realistic``), in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(str(r.get("tags", {}).get("noise", "?")), []).append(r)
    return groups


def _stat_row(label: str, group: list[dict[str, Any]], stats: dict[str, float | None]) -> str:
    ok = sum(r["status"] == "ok" for r in group)
    cells = [f"**{label}**", "", "", "", "", "", f"{ok}/{len(group)} ok"]
    return "| " + " | ".join(cells + [_fmt(stats[c.key], c.digits) for c in COLUMNS]) + " |"


def markdown_table(results: list[dict[str, Any]], stats: dict[str, dict[str, float | None]]) -> str:
    """Per clip one row (failed clips say where and why), then the median and worst rows: over all
    clips and, when the suite mixes them, per estimator-noise preset."""
    head = ["clip", "object", "texture", "noise", "motion", "camera", "status", *(c.label for c in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for result in results:
        row = _row_values(result)
        tags = result.get("tags", {})
        status = "ok" if result["status"] == "ok" else f"**failed** at {result.get('failed_step')}"
        cells = [
            result["name"],
            *(str(tags.get(k, "")) for k in ("object", "texture", "noise", "motion", "camera")),
        ]
        cells += [status, *(_fmt(lookup(row, c.key), c.digits) for c in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    for name in ("median", "worst"):
        lines.append(_stat_row(name, results, stats[name]))
    groups = noise_groups(results)
    if len(groups) > 1:
        for noise, group in groups.items():
            group_stats = aggregate(group)
            for name in ("median", "worst"):
                lines.append(_stat_row(f"{name}, {noise} noise", group, group_stats[name]))
    return "\n".join(lines)


def write_summary(out: Path, suite: SuiteSpec, preset: str, clip_dirs: list[Path]) -> dict[str, Any]:
    """Collect the clips' result.json files (absent ones are listed as not run) into OUT/summary.*."""
    results, missing = [], []
    for path in clip_dirs:
        try:
            results.append(json.loads((path / "result.json").read_text()))
        except (OSError, ValueError):
            missing.append(path.name)
    stats = aggregate(results)
    failed = [r for r in results if r["status"] != "ok"]
    summary = {
        "suite": suite.name,
        "version": suite.version,
        "preset": preset,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "clips_run": len(results),
        "clips_ok": len(results) - len(failed),
        "clips_not_run": missing,
        "seconds_total": round(sum(r.get("seconds", 0.0) for r in results), 1),
        "median": stats["median"],
        "worst": stats["worst"],
        "by_noise": {
            noise: {"clips": [r["name"] for r in group], **aggregate(group)}
            for noise, group in noise_groups(results).items()
        },
        "failures": [{"clip": r["name"], "step": r["failed_step"], "error": r["error"]} for r in failed],
        "degraded": {r["name"]: r["degraded"] for r in results if r.get("degraded")},
        "clips": results,
    }
    text = [
        f"# Suite {suite.name} (version {suite.version}), preset `{preset}`",
        "",
        f"{summary['clips_ok']}/{len(results)} clips ok"
        + (f", not run yet: {', '.join(missing)}" if missing else "")
        + f"; {summary['seconds_total']:.0f} s of steps in all. "
        "MPJPE all / CD_h count every ground-truth frame; det. only the frames the hand estimator detected. "
        "Median and worst are over the clips that finished.",
        "",
        markdown_table(results, stats),
    ]
    if failed:
        text += ["", "Failures:", ""] + [f"- {r['name']}: {r['failed_step']}: {r['error']}" for r in failed]
    degraded = [(r["name"], line) for r in results for line in r.get("degraded", [])]
    if degraded:
        text += ["", "Degraded (filled rather than measured):", ""] + [
            f"- {n}: {line}" for n, line in degraded
        ]
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", "\n".join(text) + "\n")
    return summary
