"""Run suite clips through the whole pipeline, one clip and one step at a time, resumably.

Layout of a suite output dir::

    OUT/suite.json                 the suite, the training preset and the extra settings of this dir
    OUT/clips/NAME/clip.json       the clip's spec and fingerprint
    OUT/clips/NAME/steps.json      exit status and time of every step that ran
    OUT/clips/NAME/logs/STEP.log   everything the step printed
    OUT/clips/NAME/{raw,sequence,run,export}/
    OUT/clips/NAME/result.json     the clip's row: status, times, metrics, what degraded
    OUT/summary.json  OUT/summary.md

A step that exited 0 is never run again; a step that was interrupted runs again and resumes by itself
(``hold-preprocess`` skips finished steps, ``hold-train`` resumes from its last checkpoint). A failed
step ends its clip: the clip becomes a failed row and the suite goes on with the next clip.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hold.suite.result import clip_result
from hold.suite.spec import ClipSpec, SuiteSpec
from hold.suite.steps import CLIP_FILE
from hold.utils.io import write_json

STEPS = ("synthesise", "preprocess", "train", "export", "evaluate")
SUITE_FILE = "suite.json"
STEPS_FILE = "steps.json"
RESULT_FILE = "result.json"


class SuiteRunError(RuntimeError):
    """The output dir cannot be used for this run (another preset, changed clips, a run in progress)."""


@dataclass
class RunOptions:
    """How every clip is run.

    Attributes:
        preset: training preset (``hold-train --config``).
        preprocess: extra ``key=value`` settings of ``hold-preprocess``.
        train: extra ``key=value`` settings of ``hold-train``.
        export: extra ``key=value`` settings of ``hold-export``.
        step_timeout_s: a step running longer than this is stopped and its clip fails.
        retry_failed: run the failed step of a failed clip again instead of keeping its row.
    """

    preset: str = "demo"
    preprocess: list[str] = field(default_factory=list)
    train: list[str] = field(default_factory=list)
    export: list[str] = field(default_factory=list)
    step_timeout_s: float = 3600.0
    retry_failed: bool = False

    def settings(self) -> dict[str, Any]:
        """What shapes the results (not the timeout or the retry choice)."""
        return {
            k: v for k, v in dataclasses.asdict(self).items() if k not in ("step_timeout_s", "retry_failed")
        }


def clip_dir(out: Path, name: str) -> Path:
    return out / "clips" / name


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def step_argv(clip_path: Path, opts: RunOptions) -> dict[str, list[str]]:
    """The arguments of each step for the clip in ``clip_path``."""
    raw, seq, run, export = (clip_path / d for d in ("raw", "sequence", "run", "export"))
    return {
        "synthesise": [str(clip_path / CLIP_FILE), str(raw)],
        "preprocess": [str(raw), str(seq), "hands.backend=import", *opts.preprocess],
        "train": [str(seq), "--out", str(run), "--config", opts.preset, *opts.train],
        "export": [str(run), "--out", str(export), *opts.export],
        "evaluate": [str(run)],
    }


def prepare_output(out: Path, suite: SuiteSpec, opts: RunOptions) -> None:
    """Create ``out`` or check that it holds a run of the same suite and settings.

    Raises:
        SuiteRunError: ``out`` holds another suite's or another preset's results.
    """
    meta = {"suite": suite.name, "version": suite.version, "suite_file": str(suite.path), **opts.settings()}
    existing = _read_json(out / SUITE_FILE)
    if existing is not None:
        differ = [
            k
            for k in ("suite", "version", "preset", "preprocess", "train", "export")
            if existing.get(k) != meta[k]
        ]
        if differ:
            raise SuiteRunError(
                f"{out}: holds results of another run ({', '.join(f'{k}={existing.get(k)!r}' for k in differ)}); "
                "choose a new output dir to keep both"
            )
    elif out.exists() and any(p.name != "suite.log" for p in out.iterdir()):  # the background run's log
        raise SuiteRunError(
            f"{out}: exists, is not empty and holds no {SUITE_FILE}; choose an empty or new dir"
        )
    write_json(out / SUITE_FILE, meta)


def _check_clip_file(path: Path, clip: ClipSpec) -> None:
    data = {**dataclasses.asdict(clip), "fingerprint": clip.fingerprint()}
    existing = _read_json(path / CLIP_FILE)
    if existing is not None and existing.get("fingerprint") != data["fingerprint"]:
        raise SuiteRunError(
            f"{path / CLIP_FILE}: clip {clip.name} was made with other generator settings; "
            "its results would not match the suite file: choose a new output dir"
        )
    if existing is None:
        write_json(path / CLIP_FILE, data)


def run_step(name: str, argv: list[str], log_path: Path, timeout_s: float) -> tuple[int, float]:
    """Run one step in a child process, its output appended to ``log_path``; returns (exit code, s)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("WANDB_MODE", "disabled")  # a suite of runs needs no W&B; set WANDB_MODE to keep them
    start = time.perf_counter()
    with open(log_path, "a") as log:
        log.write(f"\n=== {_dt.datetime.now().isoformat(timespec='seconds')} {name}: {' '.join(argv)}\n")
        log.flush()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "hold.suite.steps", name, *argv],
                stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout_s, check=False,
            )  # fmt: skip
            code = proc.returncode
        except subprocess.TimeoutExpired:
            log.write(
                f"\nhold-suite: error: {name} ran past the {timeout_s:.0f} s step timeout and was stopped\n"
            )
            code = -9
    return code, time.perf_counter() - start


def synthesise_once(clip: ClipSpec, path: Path, timeout_s: float = 900) -> bool:
    """The clip's RAW dir in ``path/raw``, synthesised unless it is there (benchmarks that stop after
    preprocessing); False when synthesis failed (its log: ``path/logs/synth.log``)."""
    path.mkdir(parents=True, exist_ok=True)
    _check_clip_file(path, clip)
    if (path / "raw" / "gt" / "gt.npz").exists():
        return True
    code, _ = run_step(
        "synthesise", [str(path / CLIP_FILE), str(path / "raw")], path / "logs" / "synth.log", timeout_s
    )
    return code == 0


def run_clip(
    clip: ClipSpec, out: Path, opts: RunOptions, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run (or resume) every step of one clip and write its ``result.json``; returns the result."""
    path = clip_dir(out, clip.name)
    path.mkdir(parents=True, exist_ok=True)
    _check_clip_file(path, clip)
    done = _read_json(path / RESULT_FILE)
    if done is not None and (done.get("status") == "ok" or not opts.retry_failed):
        say(f"{clip.name}: already {done.get('status')}, kept")
        return done
    steps: dict[str, Any] = _read_json(path / STEPS_FILE) or {}
    for name, argv in step_argv(path, opts).items():
        if steps.get(name, {}).get("exit_code") == 0:
            continue
        say(f"{clip.name}: {name} (log {path / 'logs' / f'{name}.log'})")
        code, seconds = run_step(name, argv, path / "logs" / f"{name}.log", opts.step_timeout_s)
        steps[name] = {"exit_code": code, "seconds": round(seconds, 1)}
        write_json(path / STEPS_FILE, steps)
        if code != 0:
            say(f"{clip.name}: {name} FAILED (exit {code}) after {seconds:.0f} s")
            break
    result = clip_result(clip, path, steps, STEPS)
    write_json(path / RESULT_FILE, result)
    return result


def run_suite(
    suite: SuiteSpec,
    clips: list[ClipSpec],
    out: Path,
    opts: RunOptions,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the clips one after the other, rewriting the summary after each; returns their results."""
    from hold.suite.summary import write_summary

    prepare_output(out, suite, opts)
    lock = out / "suite.lock"
    pid = _read_json(lock)
    if pid is not None and _alive(pid.get("pid", -1)) and pid.get("pid") != os.getpid():
        raise SuiteRunError(f"{out}: another hold-suite run (pid {pid['pid']}) is writing here")
    write_json(lock, {"pid": os.getpid()})
    try:
        start = time.perf_counter()
        results = []
        for i, clip in enumerate(clips, 1):
            say(f"[{i}/{len(clips)}] {clip.name}")
            results.append(run_clip(clip, out, opts, say))
            write_summary(out, suite, opts.preset, [clip_dir(out, c.name) for c in clips])
        say(f"suite done in {time.perf_counter() - start:.0f} s: {out / 'summary.md'}")
        return results
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
