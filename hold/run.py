"""The RUN dir (docs/architecture.md): resolved config, provenance, per-stage outputs and completion state.

```
RUN/
  config.yaml        the fully resolved config; export and eval read it back
  run.json           provenance: hold version, git commit, command line, sequence, creation time
  state.json         completed stages and what each produced
  logs/              hold.log (human-readable), metrics.csv, images/, wandb/
  stage1/ stage2/ stage3/   each stage's checkpoints and artifacts
```
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import hold
from hold.config import HoldConfig, config_to_dict, from_dict, read_yaml_mapping, save_config
from hold.utils.io import write_json

RESUMABLE_KEYS = ("train.surface_check_step", "train.loss_explosion_factor")
"""Config keys a resumed run may change (guards that stop a stage, not settings that shape its result);
the new values are saved into config.yaml."""


class RunDirError(ValueError):
    """A RUN dir that cannot be created, resumed or read."""


class RunDir:
    """Paths and bookkeeping of one training run."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.changed_on_resume: list[str] = []
        """The ``RESUMABLE_KEYS`` that ``create`` found changed (``key: old → new``)."""

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def meta_path(self) -> Path:
        return self.root / "run.json"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def stage_dir(self, stage: int) -> Path:
        return self.root / f"stage{stage}"

    @classmethod
    def create(cls, root: str | Path, cfg: HoldConfig, sequence: str | Path | None = None) -> RunDir:
        """Create a run dir, or reopen it to resume when it already holds the same config.

        Raises:
            RunDirError: the dir holds a run with a different config (resuming it would mix settings);
                only the ``RESUMABLE_KEYS`` may change.
        """
        run = cls(root)
        if run.config_path.is_file():
            old = run.load_config()
            diff = _dict_diff(config_to_dict(old), config_to_dict(cfg))
            fixed = [d for d in diff if not d.startswith(tuple(f"{k}:" for k in RESUMABLE_KEYS))]
            if fixed:
                raise RunDirError(
                    f"{run.config_path}: this run dir holds a run with a different config "
                    f"({'; '.join(fixed[:5])}); use a new --out dir, or the same config to resume"
                )
            if diff:
                save_config(cfg, run.config_path)
            run.changed_on_resume = diff
            return run
        run.logs.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run.config_path)
        write_json(
            run.meta_path,
            {
                "hold_version": hold.__version__,
                "git_commit": _git_commit(),
                "command": sys.argv,
                "sequence": str(Path(sequence).resolve()) if sequence else None,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            },
        )
        return run

    def load_config(self) -> HoldConfig:
        """The resolved config saved when the run was created."""
        if not self.config_path.is_file():
            raise RunDirError(f"{self.config_path}: missing; is {self.root} a run dir made by hold-train?")
        return from_dict(HoldConfig, read_yaml_mapping(self.config_path))

    def state(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            return {"completed_stages": {}}
        try:
            return json.loads(self.state_path.read_text())
        except json.JSONDecodeError as e:
            raise RunDirError(f"{self.state_path}: not valid JSON ({e})") from None

    def completed_stages(self) -> list[int]:
        return sorted(int(k) for k in self.state()["completed_stages"])

    def mark_stage_done(self, stage: int, info: dict[str, Any] | None = None) -> None:
        """Record that ``stage`` finished; a resumed run skips it."""
        state = self.state()
        state["completed_stages"][str(stage)] = {
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **(info or {}),
        }
        write_json(self.state_path, state)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _dict_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _dict_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} → {vb!r}")
    return diffs
