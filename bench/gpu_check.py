"""GPU check: the CUDA tests, a fixed number of training steps of a preset, and where a step's time goes.

On a CUDA machine with the project's dependencies (only torch needs to be its CUDA build):

1. tests (unless ``--skip-tests``), each group in its own pytest process, counted from JUnit XML:
   ``gpu``: every test marked ``@pytest.mark.gpu`` (those needing tinycudann or kaolin skip without
   them); ``on_cuda``: the CPU tests that train through Lightning with ``accelerator="auto"``, which
   therefore take the CUDA path here (``tests/test_system.py``: every preset, two steps, meshing,
   panels, checkpoints, resume); ``cpu_units``: the fields, render, model and loss unit tests (they
   build CPU tensors: a check of this machine's torch and numpy, not of CUDA).
2. ``--steps`` training steps of ``--preset`` (default ``fast``) on a SEQUENCE dir (default: the demo
   clip's oracle sequence, made by ``bench/demo_clip.py``), after ``--warmup`` steps: steps/s and
   samples/s (every point the nodes and the background evaluate for rendering, as
   ``bench_throughput.py`` counts them), peak GPU memory (``torch.cuda.max_memory_allocated``).
3. ``--profile-steps`` more steps with every component timed between ``torch.cuda.synchronize`` calls
   (``bench/step_profile.py``).
4. the same preset through ``hold-train``'s stage 1 (Lightning, checkpoint, one mesh extraction and one
   panel at the last step) for ``--steps`` steps: the real training path, and its wall time.

Writes one JSON file (``--out``). Exits non-zero when CUDA is missing (unless ``--device cpu``, a
rehearsal mode for machines without a GPU), when a test failed, or when a step failed.

    bench/gpu_check.sh --steps 200 --out bench/results/gpu_check.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ siblings: demo_clip, step_profile

NO_CUDA = (
    "CUDA is not available (torch {version}, torch.cuda.is_available() is False). "
    "Run it on a machine with an NVIDIA GPU and the CUDA build of torch, or pass --device cpu to "
    "rehearse the script on the CPU."
)

TEST_GROUPS = {
    "on_cuda": ["tests/test_system.py"],
    "cpu_units": ["tests/fields", "tests/render", "tests/model", "tests/test_losses.py"],
}


def fail(message: str) -> NoReturn:
    """Print ``message`` and exit with status 2 (a bad argument or a missing prerequisite)."""
    print(f"gpu_check: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _positive(name: str, minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be ≥ {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu_check",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--steps", type=_positive("--steps", 1), default=200, help="timed training steps")
    parser.add_argument("--warmup", type=_positive("--warmup", 0), default=5, help="untimed steps first")
    parser.add_argument(
        "--profile-steps", type=_positive("--profile-steps", 1), default=20, help="steps timed per component"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_check.json")
    parser.add_argument("--preset", default="fast", help="config preset name or YAML file (default: fast)")
    parser.add_argument("--sequence", type=Path, default=None, help="a prebuilt SEQUENCE dir")
    parser.add_argument(
        "--data", type=Path, default=None, help="where the demo clip is made when --sequence is not given"
    )
    parser.add_argument("--skip-tests", action="store_true", help="skip the pytest groups")
    parser.add_argument("--skip-fit", action="store_true", help="skip the Lightning stage-1 run")
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: rehearse without a GPU (no GPU numbers)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the arguments; a bad value exits with status 2 and a message naming it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from hold.config import list_presets

    preset = Path(args.preset)
    if args.preset not in list_presets() and not (preset.suffix in (".yaml", ".yml") and preset.is_file()):
        parser.error(
            f"--preset {args.preset!r}: not a preset ({', '.join(list_presets())}) nor an existing YAML file"
        )
    if args.sequence is not None and not (args.sequence / "sequence.json").is_file():
        parser.error(f"--sequence {args.sequence}: not a SEQUENCE dir (no sequence.json in it)")
    if args.out.exists() and args.out.is_dir():
        parser.error(f"--out {args.out}: is a folder; give a JSON file path")
    return args


def require_device(kind: str):
    """The torch device to measure on; exits with status 2 and a message when CUDA is asked for but missing."""
    import torch

    if kind == "cuda" and not torch.cuda.is_available():
        fail(NO_CUDA.format(version=torch.__version__))
    return torch.device(kind)


# ----------------------------------------------------------------------------------------- tests
def gpu_test_files() -> list[str]:
    """Test files holding a ``pytest.mark.gpu`` mark (collecting only these keeps optional imports out)."""
    return sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if "mark.gpu" in p.read_text()
    )


def junit_counts(path: Path) -> dict:
    """Passed / failed / errors / skipped and the failing test ids of a pytest JUnit XML report."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failing": [], "skip_reasons": []}
    if not path.is_file():
        return counts | {"errors": 1, "failing": ["pytest wrote no report"]}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag: child for child in case}
        if "failure" in tags:
            counts["failed"] += 1
            counts["failing"].append(name)
        elif "error" in tags:
            counts["errors"] += 1
            counts["failing"].append(name)
        elif "skipped" in tags:
            counts["skipped"] += 1
            counts["skip_reasons"].append(f"{name}: {tags['skipped'].get('message', '')}"[:200])
        else:
            counts["passed"] += 1
    return counts


def run_tests(device: str, workdir: Path) -> dict:
    groups = {"gpu": (gpu_test_files(), "gpu"), **{k: (v, "not gpu") for k, v in TEST_GROUPS.items()}}
    results = {}
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else dict(os.environ)
    for name, (paths, marks) in groups.items():
        report = workdir / f"junit_{name}.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marks]
        cmd += ["--continue-on-collection-errors", f"--junitxml={report}", *paths]
        print(f"== tests [{name}]: {' '.join(cmd[3:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        results[name] = {
            "paths": paths,
            "marks": marks,
            "exit_code": proc.returncode,
            "seconds": round(time.perf_counter() - start, 1),
            **junit_counts(report),
        }
    return results


# -------------------------------------------------------------------------------------- training
def measure_steps(cfg, seq, device, steps: int, warmup: int, profile_steps: int) -> dict:
    """Unprofiled steps/s and samples/s, peak memory, then a per-component profile."""
    import statistics

    import torch
    from step_profile import profile_steps as profile
    from step_profile import samples_per_step, train_step

    from hold.system import HoldSystem

    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    system = HoldSystem(cfg, seq, None, warmup + steps + profile_steps).to(device)
    system.train()
    optimizer = system.configure_optimizers()["optimizer"]
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(warmup):
        train_step(system, optimizer, step)
    sync()
    samples, losses = [], []
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        batch, out, loss = train_step(system, optimizer, step)
        samples.append(samples_per_step(out, len(batch), cfg.model.background.num_samples))
        losses.append(loss.detach())
    sync()
    elapsed = time.perf_counter() - start
    finite = bool(torch.isfinite(torch.stack(losses)).all())
    per_step = statistics.median(samples)
    result = {
        "steps": steps,
        "warmup_steps": warmup,
        "seconds": round(elapsed, 3),
        "steps_per_second": round(steps / elapsed, 2),
        "rays_per_step": cfg.rays.frames_per_step * cfg.rays.rays_per_frame,
        "samples_per_step": int(per_step),
        "samples_per_second": round(sum(samples) / elapsed, 1),
        "loss_first": round(float(losses[0]), 5),
        "loss_last": round(float(losses[-1]), 5),
        "losses_finite": finite,
    }
    if cuda:
        result["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        result["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    result["profile"] = profile(system, optimizer, profile_steps, first_step=warmup + steps)
    return result


def lightning_fit(preset: str, seq_dir: Path, steps: int, workdir: Path, device) -> dict:
    """Stage 1 of ``hold-train`` for ``steps`` steps, with one mesh extraction and one panel at the end."""
    import torch

    from hold.config import load_config
    from hold.stages import run_stages

    overrides = [f"train.stage1_steps={steps}", f"train.mesh_every={steps}", f"train.image_every={steps}"]
    overrides += [f"train.checkpoint_every={steps}", "logging.wandb=disabled"]
    cfg = load_config(preset, overrides)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    run = run_stages(seq_dir, workdir / "run", cfg, [1])
    seconds = time.perf_counter() - start
    stage = run.stage_dir(1)
    result = {
        "steps": steps,
        "overrides": overrides,
        "seconds": round(seconds, 2),
        "steps_per_second_incl_overheads": round(steps / seconds, 2),
        "wrote_model": (stage / "model.pt").is_file(),
        "wrote_object_mesh": (stage / "object_canonical.ply").is_file(),
        "wrote_panel": bool(list((run.logs / "images").rglob("*.png"))),
    }
    if device.type == "cuda":
        result["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return result


def machine(device) -> dict:
    import platform

    import numpy
    import pytorch_lightning
    import torch

    info = {
        "device": str(device),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "lightning": pytorch_lightning.__version__,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "device_name": torch.cuda.get_device_name(device),
            "device_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
        }
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def _attempt(result: dict, key: str, failures: list[str], fn, *args) -> None:
    """``result[key] = fn(*args)``; an exception is recorded (and printed) instead of stopping the check."""
    try:
        result[key] = fn(*args)
    except Exception as e:  # noqa: BLE001 - every failure goes into the JSON
        traceback.print_exc()
        result[key] = {"error": f"{type(e).__name__}: {e}"[:2000]}
        failures.append(key)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("WANDB_SILENT", "true")
    device = require_device(args.device)
    from hold.config import load_config
    from hold.data.sequence import read_sequence
    from hold.utils.io import write_json

    workdir = Path(tempfile.mkdtemp(prefix="hold_gpu_check_"))
    if args.sequence is None:
        from demo_clip import ensure_clip

        data = args.data or workdir / "data"
        ensure_clip(data / "raw", data / "seq")
        seq_dir = data / "seq"
    else:
        seq_dir = args.sequence
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "script": "bench/gpu_check.py",
        "preset": Path(args.preset).stem,
        "sequence": str(seq_dir),
        "machine": machine(device),
    }
    failures: list[str] = []

    def save() -> None:
        result.pop("status", None)  # kept last in the file
        result["status"] = "ok" if not failures else "failed: " + ", ".join(failures)
        write_json(args.out, result)

    cfg = load_config(args.preset, ["logging.wandb=disabled"])
    print(f"== train: {args.steps} steps of {args.preset} on {device} ({seq_dir})", flush=True)
    _attempt(
        result, "train", failures, measure_steps, cfg, read_sequence(seq_dir), device, args.steps,
        args.warmup, args.profile_steps,
    )  # fmt: skip
    if result["train"].get("losses_finite") is False:
        failures.append("non-finite loss")
    save()
    if not args.skip_fit:
        print(f"== fit: hold-train stage 1, {args.steps} steps", flush=True)
        _attempt(result, "fit", failures, lightning_fit, args.preset, seq_dir, args.steps, workdir, device)
        save()
    if not args.skip_tests:
        _attempt(result, "tests", failures, run_tests, args.device, workdir)
        if "error" not in result["tests"]:
            keys = ("passed", "failed", "errors", "skipped")
            result["test_totals"] = {k: sum(g[k] for g in result["tests"].values()) for k in keys}
            if result["test_totals"]["failed"] or result["test_totals"]["errors"]:
                failures.append("tests")
    save()
    print(f"wrote {args.out}: {result['status']}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
