"""Stage-1 time-to-quality on the demo sequence with ground-truth poses (issue: HOLD-Net acceptance).

Trains stage 1 with a preset on the synthetic demo's oracle SEQUENCE (exact poses), extracts the object
mesh every ``--eval-every`` steps and measures CD / F5 / F10 against the GT mesh (docs/evaluation.md
alignment). Training wall time excludes the evaluations. Writes JSON.

    python bench/bench_stage1.py --preset demo --minutes 10 --out bench/results/stage1_demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import trimesh
from demo_clip import ensure_clip  # bench/demo_clip.py

from hold.config import load_config
from hold.data.sequence import read_sequence
from hold.eval.evaluate import HandObjectSequence, evaluate
from hold.system import HoldSystem
from hold.utils.io import write_json


class _Clock(pl.Callback):
    """Stops at a wall-time budget and evaluates the object mesh periodically (off the clock)."""

    def __init__(self, gt_mesh: trimesh.Trimesh, cfg, every: int, budget_s: float, resolution: int):
        self.gt_mesh, self.cfg, self.every, self.budget = gt_mesh, cfg, every, budget_s
        self.resolution = resolution
        self.train_seconds = 0.0
        self.history: list[dict] = []
        self._t = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.train_seconds += time.perf_counter() - self._t
        step = trainer.global_step
        if step % self.every == 0 or self.train_seconds >= self.budget:
            self.history.append(
                {"step": step, "train_seconds": round(self.train_seconds, 1), **self.measure(module)}
            )
            print(json.dumps(self.history[-1]), flush=True)
        if self.train_seconds >= self.budget:
            trainer.should_stop = True

    def measure(self, module: HoldSystem) -> dict:
        try:
            mesh = module.model.extract_object_mesh(self.resolution)
        except ValueError as e:
            return {"error": str(e)}
        result = evaluate(
            HandObjectSequence(object_mesh=mesh), HandObjectSequence(object_mesh=self.gt_mesh), self.cfg.eval
        )
        d = result.to_dict()
        return {"cd_cm2": d["cd_cm2"], "f5": d["f5"], "f10": d["f10"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-time budget")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument(
        "--resolution", type=int, default=96, help="marching-cubes resolution of the evaluations"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="reuse a dir holding raw/ and seq/ of the demo"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/stage1_demo.json"))
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    data = args.data or Path(tempfile.mkdtemp(prefix="hold_bench_"))
    ensure_clip(data / "raw", data / "seq")
    cfg = load_config(args.preset, ["train.image_every=0", "train.checkpoint_every=100000", *args.overrides])
    seq = read_sequence(data / "seq")
    gt_mesh = trimesh.load(data / "seq" / "gt" / "object.ply", force="mesh")
    pl.seed_everything(cfg.seed, verbose=False)
    clock = _Clock(gt_mesh, cfg, args.eval_every, args.minutes * 60, args.resolution)
    system = HoldSystem(cfg, seq, None, cfg.train.stage1_steps)
    trainer = pl.Trainer(
        max_steps=10**9,
        logger=False,
        enable_checkpointing=False,
        callbacks=[clock],
        gradient_clip_val=cfg.optim.grad_clip or None,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(system)
    reached = {
        f"seconds_to_f10_{int(t)}": next(
            (h["train_seconds"] for h in clock.history if (h.get("f10") or 0) >= t), None
        )
        for t in (80, 90)
    }
    write_json(
        args.out,
        {
            "preset": args.preset,
            "overrides": args.overrides,
            "budget_minutes": args.minutes,
            "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, threads {torch.get_num_threads()}",
            "date": time.strftime("%Y-%m-%d"),
            "steps": trainer.global_step,
            "steps_per_second": round(trainer.global_step / max(clock.train_seconds, 1e-9), 3),
            **reached,
            "final": clock.history[-1] if clock.history else None,
            "history": clock.history,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
