"""Mask backends against the exact labels, on the static-camera suite (``configs/suites/static.yaml``).

For each clip: ``hold-synth`` (skipped when the RAW dir exists), then the preprocessing steps
``frames, hands, masks`` with the backend under test (hand estimates imported: the emulated
estimator's noise is the clip's), then per frame and label (object, hand):

- IoU over the pixels the backend labelled (its unknown, 255, pixels are left out: training ignores
  them), median and worst frame;
- the share of the true object / hand pixels the backend left unknown (what that leaving-out hides);
- where the object's labelled edges lie against its true edges, with the background and with the
  hand: pixels of object labelled as the neighbour minus pixels of the neighbour labelled as object,
  per pixel of true edge, summed over the clip (positive: the object is labelled that many pixels
  small on that side; unknown pixels count for neither);
- the same numbers for the RAW dir's emulated segmenter masks (what ``import`` would use), for scale;
- the backend's own numbers and warnings (masks.json).

The issue's targets apply to the median clip: object IoU ≥ 0.85, hand IoU ≥ 0.90.

    python bench/bench_static_masks.py --out /tmp/static --json bench/results/static_masks.json
    python bench/bench_static_masks.py --out /tmp/static --subset quick
    python bench/bench_static_masks.py --out /tmp/static --clean-plate --json bench/results/static_masks_plate.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN
from hold.suite.runner import synthesise_once
from hold.suite.spec import load_suite
from hold.utils.io import write_json
from hold.utils.logging import setup_logging
from preprocess.config import load_preprocess_config
from preprocess.pipeline import run_pipeline

TARGETS = {"object_iou": 0.85, "hand_iou": 0.90}
LABELS = {"object": LABEL_OBJECT, "hand": LABEL_RIGHT}
EDGE_NEIGHBOURS = {"background": LABEL_BACKGROUND, "hand": LABEL_RIGHT}
_EDGE_ZONE = 4  # pixels either side of a true edge in which its label errors are counted


def frame_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """IoU per label over the pixels ``pred`` labelled, and the share of each true region left unknown."""
    known = pred != LABEL_UNKNOWN
    out = {}
    for name, label in LABELS.items():
        p, g = (pred == label) & known, (gt == label) & known
        union = (p | g).sum()
        out[f"{name}_iou"] = float((p & g).sum() / union) if union else 1.0
        out[f"{name}_unknown"] = float(((gt == label) & ~known).sum() / max((gt == label).sum(), 1))
    return out


def edge_counts(pred: np.ndarray, gt: np.ndarray, neighbour: int) -> np.ndarray:
    """(true edge pixels, object pixels labelled ``neighbour``, ``neighbour`` pixels labelled object),
    within a few pixels of the object's edge with ``neighbour`` and away from any third label."""
    third = ~np.isin(gt, [LABEL_OBJECT, neighbour])
    away = ~ndimage.binary_dilation(third, iterations=_EDGE_ZONE)
    edge = (gt == LABEL_OBJECT) & ndimage.binary_dilation(gt == neighbour) & away
    zone = ndimage.binary_dilation(edge, iterations=_EDGE_ZONE) & away
    lost = zone & (gt == LABEL_OBJECT) & (pred == neighbour)
    gained = zone & (gt == neighbour) & (pred == LABEL_OBJECT)
    return np.array([edge.sum(), lost.sum(), gained.sum()])


def score(pred_dir: Path, gt_dir: Path) -> dict:
    """Median and worst frame of ``frame_scores`` over the clip, and the object's edge offsets."""
    frames = []
    edges = {name: np.zeros(3, int) for name in EDGE_NEIGHBOURS}
    for p in sorted(pred_dir.glob("[0-9]*.png")):
        pred, gt = np.asarray(Image.open(p)), np.asarray(Image.open(gt_dir / p.name))
        frames.append(frame_scores(pred, gt))
        for name, label in EDGE_NEIGHBOURS.items():
            edges[name] += edge_counts(pred, gt, label)
    out = {}
    for key in frames[0]:
        values = [f[key] for f in frames]
        worst = min(values) if key.endswith("iou") else max(values)
        out[key] = {"median": round(statistics.median(values), 4), "worst": round(worst, 4)}
    for name, (edge, lost, gained) in edges.items():
        out[f"object_edge_inward_px_{name}"] = round(float((lost - gained) / max(edge, 1)), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working dir (OUT/clips/NAME/…)")
    parser.add_argument("--suite", default="static")
    parser.add_argument("--subset", default=None)
    parser.add_argument("--clips", default=None, help="comma-separated clip names")
    parser.add_argument("--backend", default="static", help="masks.backend under test")
    parser.add_argument("--preprocess", action="append", default=[], help="extra KEY=VALUE for preprocessing")
    parser.add_argument(
        "--clean-plate", action="store_true",
        help="static backend: give it the generator's clean plate (RAW/synth/background.png)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args()
    setup_logging()
    suite = load_suite(args.suite)
    clips = suite.select(args.subset, args.clips.split(",") if args.clips else None)
    results = {}
    for clip in clips:
        path = args.out / "clips" / clip.name
        if not synthesise_once(clip, path, 900):
            results[clip.name] = {"status": "failed", "step": "synthesise"}
            continue
        plate = (
            [f"masks.static.background={path / 'raw' / 'synth' / 'background.png'}"]
            if args.clean_plate
            else []
        )
        cfg = load_preprocess_config([f"masks.backend={args.backend}", *args.preprocess, *plate])
        start = time.perf_counter()
        run = run_pipeline(path / "raw", path / "sequence", ["frames", "hands", "masks"], redo=True, cfg=cfg)
        labels = path / "raw" / "synth" / "labels"
        backend_report = json.loads((path / "sequence" / "work" / "masks" / "masks.json").read_text()).get(
            args.backend, {}
        )
        results[clip.name] = {
            "status": "ok",
            "seconds": round(time.perf_counter() - start, 1),
            "masks_seconds": round(run.ran["masks"], 1),
            args.backend: score(path / "sequence" / "work" / "masks", labels),
            "import": score(path / "raw" / "masks", labels),
            "report": {k: v for k, v in backend_report.items() if not isinstance(v, list)},
            "warnings": backend_report.get("warnings", []),
        }
        print(clip.name, json.dumps(results[clip.name][args.backend]), flush=True)
    ok = [r for r in results.values() if r["status"] == "ok"]
    summary = {
        "backend": args.backend,
        "clips": len(results),
        "ok": len(ok),
        "preprocess_args": args.preprocess,
        "clean_plate": args.clean_plate,
        "clips_with_warnings": sorted(name for name, r in results.items() if r.get("warnings")),
    }
    for key, target in TARGETS.items():
        median_clip = statistics.median(r[args.backend][key]["median"] for r in ok) if ok else None
        summary[f"{key}_median_clip"] = None if median_clip is None else round(median_clip, 4)
        summary[f"{key}_target"] = target
        summary[f"{key}_met"] = median_clip is not None and median_clip >= target
        summary[f"{key}_import_median_clip"] = (
            round(statistics.median(r["import"][key]["median"] for r in ok), 4) if ok else None
        )
    for key in ("object_unknown", "hand_unknown"):
        summary[f"{key}_median_clip"] = (
            round(statistics.median(r[args.backend][key]["median"] for r in ok), 4) if ok else None
        )
    for key in (f"object_edge_inward_px_{n}" for n in EDGE_NEIGHBOURS):
        for source in (args.backend, "import"):
            summary[f"{key}_import_median_clip" if source == "import" else f"{key}_median_clip"] = (
                round(statistics.median(r[source][key] for r in ok), 3) if ok else None
            )
    summary["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    print(json.dumps(summary, indent=1))
    if args.json:
        write_json(args.json, {"summary": summary, "clips": results})


if __name__ == "__main__":
    main()
