"""The object-pose bounds of a suite run, clip by clip: a finished hold-suite summary checked against
the accuracy bar for object poses (rotation, scale, hand-relative object error) per noise level.

Usage: python bench/suite_pose_check.py SUITE_OUT/summary.json [--levels object_level.json --level 1.75|masks]
       [--out bench/results/suite_pose_check.json]

With ``--levels`` the mesh-dependent metrics (CD_h, scale error) come from ``bench_object_level.py``'s
re-score at ``--level`` (in β, or ``masks``) instead of the exported mesh's; rotations do not depend on the mesh.

Bounds, mild noise: every clip finishes, rotation relative to frame 0 median ≤ 5° and 95th percentile
≤ 15°, |scale error| ≤ 10 %, median CD_h ≤ 3 cm² and none above 20 cm². Realistic noise: every clip
finishes and the median CD_h is ≤ 8 cm².
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hold.utils.io import write_json  # noqa: E402

BOUNDS = {
    "mild": {
        "rot_median_deg": 5.0,
        "rot_p95_deg": 15.0,
        "abs_scale_pct": 10.0,
        "cd_h_median": 3.0,
        "cd_h_max": 20.0,
    },
    "realistic": {"cd_h_median": 8.0},
}


def clip_row(clip: dict, rescored: dict | None) -> dict:
    """The pose metrics of one clip (None where it did not finish)."""
    metrics = clip.get("metrics") or {}
    rotation = (metrics.get("object_pose") or {}).get("rotation_rel_ref_deg") or {}
    mesh = rescored if rescored is not None else metrics
    return {
        "clip": clip["name"],
        "noise": clip["tags"]["noise"],
        "ok": clip["status"] == "ok",
        "rot_median_deg": rotation.get("median"),
        "rot_p95_deg": rotation.get("p95"),
        "scale_pct": mesh.get("object_scale_error_pct"),
        "cd_h_cm2": mesh.get("cd_h_cm2"),
    }


def check_group(rows: list[dict], bounds: dict) -> dict:
    """Which bounds a noise group meets; each failure names the clips or the value."""
    failures = [f"{r['clip']}: did not finish" for r in rows if not r["ok"]]
    done = [r for r in rows if r["ok"]]
    per_clip = (
        ("rot_median_deg", "rot_median_deg"),
        ("rot_p95_deg", "rot_p95_deg"),
        ("scale_pct", "abs_scale_pct"),
    )
    for key, bound in per_clip:
        if bound in bounds:
            failures += [
                f"{r['clip']}: {key} {r[key]:.1f} beyond {bounds[bound]:g}"
                for r in done
                if r[key] is None or abs(r[key]) > bounds[bound]
            ]
    cd_h = [r["cd_h_cm2"] for r in done if r["cd_h_cm2"] is not None]
    median = statistics.median(cd_h) if cd_h else None
    if median is None or median > bounds["cd_h_median"]:
        failures.append(f"median CD_h {median} above {bounds['cd_h_median']:g}")
    if "cd_h_max" in bounds:
        failures += [
            f"{r['clip']}: CD_h {r['cd_h_cm2']:.2f} above {bounds['cd_h_max']:g}"
            for r in done
            if r["cd_h_cm2"] is not None and r["cd_h_cm2"] > bounds["cd_h_max"]
        ]
    return {"clips": len(rows), "finished": len(done), "cd_h_median": median, "failures": failures}


def _read(path: Path, key: str) -> dict:
    """A JSON file holding ``key``, or exit with a message naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"suite_pose_check: cannot read {path}: {e}") from None
    if not isinstance(data, dict) or key not in data:
        raise SystemExit(
            f"suite_pose_check: {path} has no '{key}' field (not a suite summary / level re-score)"
        )
    return data


def _level(text: str) -> str:
    """``masks`` or a level in β, written as bench_object_level.py keys it."""
    return text if text == "masks" else f"{float(text):g}"


def _rescored(clips: dict, path: Path | None, name: str, level: str | None) -> dict | None:
    """One clip's re-scored metrics at ``level`` (None without ``--levels``), with a clear error if absent."""
    if path is None:
        return None
    scores = clips.get(name, {}).get(level)
    if scores is None:
        raise SystemExit(f"suite_pose_check: {path} holds no score of clip {name} at level {level}")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="SUITE_OUT/summary.json of hold-suite run")
    parser.add_argument(
        "--levels", type=Path, help="bench_object_level.py output to take CD_h and scale from"
    )
    parser.add_argument(
        "--level", type=_level, help="the re-scored level (in β, or 'masks') to use, with --levels"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if (args.levels is None) != (args.level is None):
        parser.error("--levels and --level go together")
    summary = _read(args.summary, "clips")
    rescored = _read(args.levels, "clips")["clips"] if args.levels else {}
    rows = [clip_row(c, _rescored(rescored, args.levels, c["name"], args.level)) for c in summary["clips"]]
    result = {"summary": str(args.summary), "level": args.level, "bounds": BOUNDS, "clips": rows}
    for noise, bounds in BOUNDS.items():
        result[noise] = check_group([r for r in rows if r["noise"] == noise], bounds)
    print("| clip | noise | rot. median (°) | rot. p95 (°) | scale (%) | CD_h (cm²) |")
    print("| --- | --- | --- | --- | --- | --- |")
    fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
    for r in rows:
        cells = (r["rot_median_deg"], r["rot_p95_deg"], r["scale_pct"], r["cd_h_cm2"])
        print(f"| {r['clip']} | {r['noise']} | " + " | ".join(fmt(v) for v in cells) + " |")
    for noise in BOUNDS:
        group = result[noise]
        verdict = "all bounds met" if not group["failures"] else "; ".join(group["failures"])
        print(
            f"{noise}: {group['finished']}/{group['clips']} finished, median CD_h {fmt(group['cd_h_median'])}: {verdict}"
        )
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
