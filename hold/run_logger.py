"""A run's CSV of scalars and its W&B runs.

W&B runs offline inside the run dir unless an API key is configured; ``WANDB_MODE`` in the environment
wins over ``auto`` so tests and CI can force ``disabled``. Each stage is one W&B run (scalars, image
panels, the object mesh at each re-meshing); a ``<name>-summary`` run per RUN dir carries the stage
timings, the evaluation's metrics and the preprocessing report, with a copy in ``logs/summary.json``.
"""

from __future__ import annotations

import csv
import json
import netrc
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hold.config import HoldConfig, LoggingConfig, config_to_dict
from hold.utils.io import atomic_open, write_json, write_png
from hold.utils.logging import get_logger

if TYPE_CHECKING:
    import trimesh

_WANDB_HOST = "api.wandb.ai"
SUMMARY_FILE = "summary.json"


def wandb_api_key_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(_WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(setting: str) -> str:
    """``online`` / ``offline`` / ``disabled`` from the config setting, the environment and the API key."""
    if setting != "auto":
        return setting
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if wandb_api_key_available() else "offline"


class RunLogger:
    """Scalars to ``logs/metrics.csv`` (long format: one row per value) and W&B; images to disk and W&B.

    Args:
        logs_dir: the run's ``logs/`` folder.
        cfg: the resolved run config (sent to W&B as the run config).
        stage: label of the stage logging through this instance (``stage1`` …), a CSV column.
    """

    CSV_FIELDS = ("stage", "step", "name", "value", "wall_time")

    def __init__(self, logs_dir: str | Path, cfg: HoldConfig, stage: str):
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.stage = stage
        self.csv_path = self.logs_dir / "metrics.csv"
        new_file = not self.csv_path.exists()
        self._csv_file = open(self.csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed in finish)
        self._csv = csv.writer(self._csv_file)
        if new_file:
            self._csv.writerow(self.CSV_FIELDS)
        self._t0 = time.time()
        self.wandb_mode = resolve_wandb_mode(cfg.logging.wandb)
        self.mesh_faces = cfg.logging.mesh_faces
        self._wandb_run = self._start_wandb(cfg, cfg.logging) if self.wandb_mode != "disabled" else None

    def _start_wandb(self, cfg: HoldConfig, log_cfg: LoggingConfig) -> Any:
        return start_wandb(
            self.logs_dir, cfg, self.wandb_mode, name=f"{cfg.name}-{self.stage}", job_type="train"
        )

    @property
    def wandb_dir(self) -> Path | None:
        return Path(self._wandb_run.dir).parent if self._wandb_run is not None else None

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        wall = round(time.time() - self._t0, 3)
        for name, value in values.items():
            self._csv.writerow((self.stage, step, name, float(value), wall))
        self._csv_file.flush()
        if self._wandb_run is not None:
            self._wandb_run.log({f"{self.stage}/{k}": float(v) for k, v in values.items()}, step=step)

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> list[Path]:
        """Save uint8 images as ``logs/images/<stage>/<name>_<step>.png`` and send them to W&B."""
        paths = []
        for name, image in images.items():
            path = self.logs_dir / "images" / self.stage / f"{name}_{step:07d}.png"
            write_png(path, image)
            paths.append(path)
        if self._wandb_run is not None:
            import wandb

            self._wandb_run.log({f"{self.stage}/{k}": wandb.Image(v) for k, v in images.items()}, step=step)
        return paths

    def log_mesh(self, step: int, name: str, mesh: trimesh.Trimesh) -> Path | None:
        """Save ``mesh`` (at most ``logging.mesh_faces`` faces) as ``logs/meshes/<stage>/<name>_<step>.glb``
        and send it to W&B as a 3D object; None when ``logging.mesh_faces`` is 0."""
        if not self.mesh_faces:
            return None
        from hold.geometry.mesh import decimate

        path = self.logs_dir / "meshes" / self.stage / f"{name}_{step:07d}.glb"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            f.write(decimate(mesh, self.mesh_faces).export(file_type="glb"))
        if self._wandb_run is not None:
            import wandb

            self._wandb_run.log({f"{self.stage}/{name}": wandb.Object3D(str(path))}, step=step)
        return path

    def set_summary(self, values: dict[str, Any]) -> None:
        """Values for this stage's W&B run summary (its CSV/disk copies are the caller's)."""
        if self._wandb_run is not None:
            self._wandb_run.summary.update(values)

    def finish(self) -> None:
        self._csv_file.close()
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None


def start_wandb(logs_dir: Path, cfg: HoldConfig, mode: str, name: str, job_type: str, **kwargs: Any) -> Any:
    """A W&B run in ``logs_dir/wandb`` without W&B's console banners; one line says where it is."""
    import wandb

    run = wandb.init(
        project=cfg.logging.project,
        name=name,
        group=cfg.name,
        job_type=job_type,
        dir=str(logs_dir),
        mode=mode,
        config=config_to_dict(cfg),
        reinit="finish_previous",
        settings=wandb.Settings(silent=True),
        **kwargs,
    )
    where = Path(run.dir).parent
    hint = f" (upload with `wandb sync {where}`)" if mode == "offline" else ""
    get_logger("wandb").info("W&B %s run %s: %s%s", mode, name, where, hint)
    return run


def flat_numbers(values: dict[str, Any], prefix: str = "") -> dict[str, float | int | bool | str]:
    """Nested dict → ``a/b/c`` keys with the numbers, booleans and strings (lists and None dropped)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out |= flat_numbers(value, f"{prefix}{key}/")
        elif isinstance(value, (bool, int, float, str)):
            out[f"{prefix}{key}"] = value
    return out


def write_run_summary(
    logs_dir: str | Path, cfg: HoldConfig, updates: dict[str, Any], report: Path | None = None
) -> dict[str, Any]:
    """Merge ``updates`` into ``logs/summary.json`` and send the whole summary to the run's W&B summary run.

    The summary run (``<name>-summary``, one W&B id per RUN dir, kept in summary.json) is resumed by
    each call, so hold-train's timings and hold-eval's metrics end up in one place. ``report``: a
    preprocessing report (HTML) to attach. W&B problems are logged, never raised: the disk copy is what
    counts.
    """
    logs_dir = Path(logs_dir)
    path = logs_dir / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError) as e:
        get_logger("wandb").warning("%s: unreadable (%s); starting a new summary", path, e)
        summary = {}
    summary |= updates
    mode = resolve_wandb_mode(cfg.logging.wandb)
    if mode != "disabled" and "wandb_id" not in summary:
        summary["wandb_id"] = secrets.token_hex(4)
    write_json(path, summary)
    if mode == "disabled":
        return summary
    try:
        import wandb

        run = start_wandb(
            logs_dir,
            cfg,
            mode,
            name=f"{cfg.name}-summary",
            job_type="summary",
            id=summary["wandb_id"],
            resume="allow",
        )
        run.summary.update(flat_numbers({k: v for k, v in summary.items() if k != "wandb_id"}))
        if report is not None and report.is_file():
            run.log({"preprocessing_report": wandb.Html(report.read_text(encoding="utf-8"))})
        run.finish()
    except Exception as e:  # the summary is on disk; W&B must not turn a finished run into a failure
        get_logger("wandb").warning(
            "W&B summary run not written (%s); %s has it", str(e).splitlines()[0][:200], path
        )
    return summary
