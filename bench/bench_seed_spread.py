"""How far one suite clip's metrics move between training seeds: the noise a "worse than before" claim
is judged against.

Runs the clip through ``hold-suite run`` once per seed (``--train seed=K``), each in its own suite dir
OUT/head/seedK; with ``--base REV`` also through that commit's whole pipeline (unpacked with ``git
archive`` into OUT/base/tree, synthesis to evaluation) at ``--base-seeds``, in OUT/base/seedK. With
``--preprocessed SUITE_OUT`` this tree's seeds start from the clip's synthesis and preprocessing in a
finished suite dir, so only training varies. A seed dir that already holds a result is collected, not
run again: an interrupted benchmark resumes.

    python bench/bench_seed_spread.py /tmp/spread --clip mug_rich_orbit --seeds 0,1,2,3,4 \\
        --base 12a9b76 --base-seeds 0,1,2 --out bench/results/seed_spread_mug_rich_orbit.json

Writes each run's object and hand metrics, and per tree their median, min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_speedup import git, unpack  # bench/bench_speedup.py

from hold.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("cd_cm2", "f10", "cd_h_cm2", "object_scale_error_pct", "mpjpe_mm")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"bench_seed_spread: {path}: missing; --preprocessed must be a finished suite dir"
        ) from None
    except json.JSONDecodeError as e:
        raise SystemExit(f"bench_seed_spread: {path}: not valid JSON ({e})") from None


def seed_from_suite(src: Path, dest: Path, clip: str, preset: str, train: list[str]) -> None:
    """Copy ``clip``'s synthesis and preprocessing from the suite dir ``src`` into a new suite dir
    ``dest`` (made whole or not at all: an interrupted copy leaves no half-seeded dir behind)."""
    meta = _read_json(src / "suite.json")
    if meta.get("preset") != preset or meta.get("train"):
        raise SystemExit(f"bench_seed_spread: {src}/suite.json: trained with {meta.get('preset')!r} "
                         f"{meta.get('train')}, not {preset!r} without extra settings")  # fmt: skip
    steps = _read_json(src / "clips" / clip / "steps.json")
    if any(steps.get(k, {}).get("exit_code") != 0 for k in ("synthesise", "preprocess")):
        raise SystemExit(f"bench_seed_spread: {src}/clips/{clip}: synthesis or preprocessing did not finish")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    clip_dir = partial / "clips" / clip
    (clip_dir / "logs").mkdir(parents=True)
    shutil.copy2(src / "clips" / clip / "clip.json", clip_dir)
    for sub in ("raw", "sequence"):
        shutil.copytree(src / "clips" / clip / sub, clip_dir / sub)
    write_json(clip_dir / "steps.json", {k: steps[k] for k in ("synthesise", "preprocess")})
    write_json(partial / "suite.json", {**meta, "train": train})
    partial.rename(dest)


def run_seed(tree: Path, out: Path, clip: str, preset: str, seed: int, preprocessed: Path | None) -> dict:
    """The clip's result.json after a suite run with ``seed=SEED`` (run only when missing)."""
    result = out / "clips" / clip / "result.json"
    train = [f"seed={seed}"]
    if not result.is_file():
        if preprocessed is not None and not out.exists():
            seed_from_suite(preprocessed, out, clip, preset, train)
        env = {**os.environ, "PYTHONPATH": str(tree), "WANDB_MODE": "disabled"}
        cmd = [sys.executable, "-m", "hold.suite.cli", "run", str(out), "--preset", preset,
               "--clips", clip, "--train", *train]  # fmt: skip
        print(f"{out}: {' '.join(cmd[1:])}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f"{out.name}.log", "w") as log:
            subprocess.run(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if not result.is_file():
        raise SystemExit(f"bench_seed_spread: {out}: the suite run wrote no {result.name} (see {out}.log)")
    return json.loads(result.read_text())


def row(result: dict) -> dict:
    metrics = result.get("metrics") or {}
    level = (metrics.get("reconstruction") or {}).get("object_mesh", {}).get("level", {})
    return {
        "status": result["status"],
        **{k: metrics.get(k) for k in KEYS},
        "level_beta": level.get("beta"),
        "seconds": result.get("seconds"),  # the clip's steps, when they ran
    }


def spread(rows: dict[int, dict]) -> dict:
    out = {}
    for k in KEYS:
        values = [r[k] for r in rows.values() if r.get(k) is not None]
        if values:
            out[k] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="one suite dir per tree and seed goes here")
    parser.add_argument("--clip", required=True, help="a clip of the v1 suite")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds of this tree")
    parser.add_argument(
        "--preprocessed", type=Path, help="a finished suite dir to take the clip's inputs from"
    )
    parser.add_argument("--base", help="also run this older commit's whole pipeline")
    parser.add_argument("--base-seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        base_seeds = [int(s) for s in args.base_seeds.split(",")]
    except ValueError:
        parser.error("--seeds and --base-seeds are comma-separated integers, e.g. 0,1,2")
    start = time.perf_counter()
    head = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "hold", "configs", "preprocess"))
    head += " (with uncommitted changes)" if dirty else ""
    trees = {"head": (ROOT, head, seeds, args.preprocessed)}
    if args.base:
        base_tree = args.out_dir / "base" / "tree"
        if not base_tree.is_dir():
            base_tree.mkdir(parents=True)
            unpack(args.base, base_tree)
        trees["base"] = (base_tree, git("rev-parse", args.base), base_seeds, None)
    result: dict = {
        "what": f"{args.clip}, {args.preset} preset: the same clip trained with several seeds",
        "date": time.strftime("%Y-%m-%d"),
        "clip": args.clip,
        "preset": args.preset,
    }
    for name, (tree, commit, tree_seeds, preprocessed) in trees.items():
        rows = {s: row(run_seed(tree, args.out_dir / name / f"seed{s}", args.clip, args.preset, s, preprocessed))
                for s in tree_seeds}  # fmt: skip
        result[name] = {
            "commit": commit,
            "inputs": f"synthesis and preprocessing of {preprocessed}" if preprocessed else "its own",
            "runs": {str(s): r for s, r in rows.items()},
            "spread": spread(rows),
        }
        cd, f10 = result[name]["spread"].get("cd_cm2"), result[name]["spread"].get("f10")
        if cd and f10:
            print(f"{name}: CD median {cd['median']:.2f} ({cd['min']:.2f}–{cd['max']:.2f}) cm², "
                  f"F10 median {f10['median']:.1f} ({f10['min']:.1f}–{f10['max']:.1f}) %")  # fmt: skip
    result["seconds_this_call"] = round(time.perf_counter() - start)  # runs collected, not run, cost ~0
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
