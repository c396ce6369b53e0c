"""The object mesh's level set (``export.object_level_beta``) on a finished suite: re-meshes and re-scores
every clip that finished, at each level, without training or writing into the suite's runs.

Usage: python bench/bench_object_level.py SUITE_OUT [--levels 0,1,2,masks] [--final-stage last|masks]
       [--out bench/results/object_level.json]

A level is a multiple of β (``export.object_level_beta``) or ``masks`` (``export.object_level=masks``:
the level whose silhouettes fit the object masks best, chosen per clip). ``--final-stage masks`` scores
the stage ``export.final_stage=masks`` picks (1 or 3, by the same silhouette fit) instead of stage 3.

Each clip's scores are kept in SUITE_OUT/object_level/<clip>.json (keyed by the levels and the clip's
result.json), so a rerun while the suite goes on only scores the clips finished since.

Writes, per clip and level, the metrics that depend on the object mesh (CD, F5, F10, CD_h, scale error)
and their median and worst over the clips; prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from hold.eval.run_metrics import evaluate_reconstruction, load_ground_truth  # noqa: E402
from hold.final.meshes import ExportError, object_mesh  # noqa: E402
from hold.final.model import load_final_model  # noqa: E402
from hold.run import RunDir  # noqa: E402
from hold.utils.io import write_json  # noqa: E402
from hold.utils.logging import setup_logging  # noqa: E402

KEYS = ("cd_cm2", "f5", "f10", "cd_h_cm2", "object_scale_error_pct")


def _export_config(base, level: str):
    if level == "masks":
        return dataclasses.replace(base, object_level="masks", object_mesh_resolution=0)
    return dataclasses.replace(
        base, object_level="beta", object_level_beta=float(level), object_mesh_resolution=0
    )


def score_clip(run_dir: Path, levels: list[str], final_stage: str = "last") -> dict[str, dict]:
    """Metrics of one run's final model (chosen as ``export.final_stage`` says) with its object meshed at
    each level (in β, or ``masks``)."""
    cfg = RunDir(run_dir).load_config()
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, final_stage=final_stage))
    final = load_final_model(run_dir, cfg)
    gt = load_ground_truth(final)
    out = {}
    for level in levels:
        try:
            mesh, source = object_mesh(final, _export_config(final.cfg.export, level))
        except ExportError as e:
            out[level] = {"error": str(e)}
            continue
        metrics = evaluate_reconstruction(final, gt, mesh, source)
        out[level] = {k: metrics.get(k) for k in KEYS} | {
            "level_beta": source["level"]["beta"],
            "level_mm": 1e3 * source["level"]["metres"],
            "stage": final.stage,
            "stage_iou": (final.stage_fit or {}).get("iou_by_stage"),
        }
    return out


def summarise(clips: dict[str, dict], levels: list[str]) -> dict[str, dict]:
    """Median and worst (largest magnitude for the scale error, lowest F-score, highest CD) per level."""
    out = {}
    for level in levels:
        rows = [c[level] for c in clips.values() if "error" not in c[level]]
        med, worst = {}, {}
        for k in KEYS:
            values = np.array([r[k] for r in rows if r[k] is not None], float)
            if not len(values):
                continue
            med[k] = float(np.median(values))
            if k == "object_scale_error_pct":
                worst[k] = float(values[np.argmax(np.abs(values))])
            else:
                worst[k] = float(values.min() if k.startswith("f") else values.max())
        out[level] = {"clips": len(rows), "median": med, "worst": worst}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite_out", type=Path, help="a hold-suite output dir with finished clips")
    parser.add_argument("--levels", default="0,1,2", help="levels in β or 'masks', comma-separated")
    parser.add_argument("--final-stage", choices=("last", "masks"), default="last", help="export.final_stage")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "object_level.json")
    args = parser.parse_args(argv)
    setup_logging(console_level="warning")
    levels = [v if v == "masks" else f"{float(v):g}" for v in args.levels.split(",")]
    clips: dict[str, dict] = {}
    start = time.perf_counter()
    for result in sorted((args.suite_out / "clips").glob("*/result.json")):
        r = json.loads(result.read_text())
        if r.get("status") != "ok":
            continue
        cache = args.suite_out / "object_level" / f"{r['name']}.json"
        key = {"levels": levels, "final_stage": args.final_stage, "result_mtime": result.stat().st_mtime}
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        if cached.get("key") == key:
            clips[r["name"]] = cached["scores"]
        else:
            clips[r["name"]] = score_clip(result.parent / "run", levels, args.final_stage)
            write_json(cache, {"key": key, "scores": clips[r["name"]]})
        print(
            r["name"],
            {
                lv: {k: round(v, 2) for k, v in m.items() if isinstance(v, float)}
                for lv, m in clips[r["name"]].items()
            },
        )
    summary = summarise(clips, levels)
    for level, s in summary.items():
        med = " ".join(f"{k} {v:.2f}" for k, v in s["median"].items())
        print(f"level {level}: {s['clips']} clips; median {med}")
    write_json(
        args.out,
        {
            "what": "object mesh level set (export.object_level_beta / object_level) re-scored on a finished suite",
            "suite": str(args.suite_out.resolve()),
            "levels": levels,
            "final_stage": args.final_stage,
            "clips": clips,
            "summary": summary,
            "seconds": round(time.perf_counter() - start, 1),
            "machine": platform.platform(),
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
