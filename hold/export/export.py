"""`hold-export`: a RUN dir's final model → the EXPORT dir of docs/architecture.md.

```
EXPORT/
  object_canonical.ply   hand_canonical.ply      canonical meshes, metres (object: canonical units × scale)
  frames/00000_object.ply  frames/00000_hand.ply  per-frame posed meshes, camera frame, metres
  joints.npz             <side>.joints (T, 21, 3) camera frame, metres; valid (T,)
  scene.glb              one frame's posed meshes (glTF axes), for a browser viewer
  renders/               <frame>_{rgb,normal,mesh,panel}.png, preview.mp4
  metrics.json           when SEQ/gt exists (the numbers hold-eval writes)
  export.json            provenance, settings, the list of files
```

With two hands the hand files are named ``hand_right…`` / ``hand_left…``.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from tqdm import tqdm

import hold
from hold.config import ConfigError, HoldConfig, load_config
from hold.config.export import ExportConfig
from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT
from hold.eval.run_metrics import evaluate_reconstruction, has_ground_truth, load_ground_truth
from hold.export.renders import FrameMeshes, choose_frames, merge, render_frames, video_frame, write_video
from hold.export.scene import SceneMesh, write_scene
from hold.final.meshes import (
    ExportError,
    HandPoser,
    hand_mesh,
    hand_vertex_colors,
    object_mesh,
    object_vertex_colors,
    posed_hand,
    posed_object,
)
from hold.final.model import FinalModel, load_final_model
from hold.geometry.mesh import decimate
from hold.run import RunDir
from hold.utils.io import atomic_open, write_json, write_npz
from hold.utils.logging import get_logger
from hold.utils.visualize import CLASS_COLORS

log = get_logger("export")

OVERRIDE_SECTIONS = ("export", "eval")
"""Config sections an export may override; the rest must stay as trained (the weights depend on it)."""
EXPORT_DIR = "export"
"""Default EXPORT dir inside the RUN dir."""


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        out_dir: the EXPORT dir.
        files: every file written, in order.
        metrics: metrics.json's content, or None without ground truth.
        seconds: wall time of the export.
    """

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    seconds: float = 0.0


def run_config(run_dir: str | Path, overrides: list[str] | None = None) -> HoldConfig:
    """The run's saved config with ``key=value`` overrides of the export and eval sections.

    A bare ExportConfig field name (``hand_mesh_resolution=…``) means ``export.<name>``.

    Raises:
        ConfigError: an override outside those sections, or an unknown key / bad value.
    """
    run = RunDir(run_dir)
    run.load_config()  # a clear error when RUN is not a run dir
    export_fields = set(ExportConfig.__dataclass_fields__)
    items = []
    for item in overrides or []:
        key = item.partition("=")[0]
        if key in export_fields:
            item = f"export.{item}"
        elif key.split(".")[0] not in OVERRIDE_SECTIONS:
            raise ConfigError(
                f"override {item!r}: only {', '.join(s + '.*' for s in OVERRIDE_SECTIONS)} can change after "
                "training (the weights depend on the rest)"
            )
        items.append(item)
    return load_config(str(run.config_path), items)


def hand_file_stem(side: str, sides: list[str]) -> str:
    return "hand" if len(sides) == 1 else f"hand_{side}"


def export_run(
    run_dir: str | Path, out_dir: str | Path | None = None, cfg: HoldConfig | None = None
) -> ExportResult:
    """Export the final model of a RUN dir (see the module docstring for the layout).

    Args:
        run_dir: the RUN dir.
        out_dir: the EXPORT dir; None: RUN/export.
        cfg: the run config with overrides (``run_config``); None reads RUN/config.yaml.
    """
    start = time.perf_counter()
    final = load_final_model(run_dir, cfg)
    ecfg = final.cfg.export
    dest = Path(out_dir) if out_dir is not None else final.run.root / EXPORT_DIR
    _check_destination(dest, final)
    render_list = choose_frames(ecfg, np.asarray(final.seq.valid, bool))  # every check before any write
    # Written next to the destination and swapped in at the end: a failed export leaves the old one intact.
    out = dest.with_name(f".{dest.name}.partial")
    if out.exists():
        shutil.rmtree(out)
    result = ExportResult(out_dir=dest)
    files = result.files
    log.info("exporting stage %d of %s into %s", final.stage, final.run.root, dest)

    # Canonical meshes. The object mesh is evaluated undecimated; the files may be decimated.
    obj_full, obj_source = object_mesh(final, ecfg)
    sides = list(final.model.hands)
    hands = {side: hand_mesh(final, side, ecfg) for side in sides}
    obj = _decimated(obj_full, ecfg)
    hands = {side: _decimated(m, ecfg) for side, m in hands.items()}
    files.append(_write_ply(out / "object_canonical.ply", obj.vertices, obj.faces))
    for side, m in hands.items():
        files.append(_write_ply(out / f"{hand_file_stem(side, sides)}_canonical.ply", m.vertices, m.faces))

    joints = final.joints()
    arrays: dict[str, np.ndarray] = {f"{side}.joints": j for side, j in joints.items()}
    arrays["valid"] = np.asarray(final.seq.valid, bool)
    write_npz(out / "joints.npz", arrays)
    files.append(out / "joints.npz")

    posed = _posed_meshes(final, obj, hands, out, files)

    files += render_frames(final, render_list, posed, ecfg, out / "renders")
    if ecfg.video:
        frames = range(0, final.num_frames, ecfg.video_frame_stride)
        video = [
            video_frame(final.seq.load_image(t), posed[t], final.seq.K, ecfg)
            for t in tqdm(frames, desc="preview video", unit="frame")
        ]
        files.append(write_video(out / "renders" / "preview.mp4", video, ecfg.video_fps))

    scene_frame = ecfg.scene_frame if ecfg.scene_frame >= 0 else (render_list[0] if render_list else 0)
    files.append(_write_scene(final, obj, hands, scene_frame, out / "scene.glb"))

    if has_ground_truth(final):
        result.metrics = evaluate_reconstruction(
            final, load_ground_truth(final), obj_full, obj_source, joints
        )
        write_json(out / "metrics.json", result.metrics)
        files.append(out / "metrics.json")
    else:
        log.info("no ground truth in %s: no metrics.json", final.sequence_dir)

    result.seconds = time.perf_counter() - start
    manifest = out / "export.json"
    write_json(
        manifest,
        {
            **final.provenance(),
            "hold_version": hold.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(result.seconds, 1),
            "object_mesh": obj_source,
            "render_frames": render_list,
            "scene_frame": scene_frame,
            "config": asdict(ecfg),
            "files": [str(p.relative_to(out)) for p in files],
        },
    )
    files.append(manifest)
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    out.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    result.files = [dest / p.relative_to(out) for p in files]
    log.info("export finished in %.0f s: %d files in %s", result.seconds, len(files), dest)
    return result


def _check_destination(dest: Path, final: FinalModel) -> None:
    """The EXPORT dir replaces whatever is at ``dest``: refuse the RUN dir, the SEQUENCE dir, a folder
    holding either, one inside the SEQUENCE dir, and the RUN dir's own folders."""
    d, run, seq = dest.resolve(), final.run.root.resolve(), Path(final.sequence_dir).resolve()
    inside = lambda a, b: a == b or b in a.parents  # noqa: E731  (a inside b)
    run_parts = [run / p.name for p in run.iterdir() if p.name != EXPORT_DIR] if run.is_dir() else []
    if inside(run, d) or inside(seq, d) or inside(d, seq) or any(inside(d, p) for p in run_parts):
        raise ExportError(
            f"--out {dest}: the export would replace the run's or the sequence's files; "
            f"choose a new folder (default: {final.run.root / EXPORT_DIR})"
        )


def _decimated(mesh: trimesh.Trimesh, cfg: ExportConfig) -> trimesh.Trimesh:
    return decimate(mesh, cfg.max_faces) if cfg.max_faces else mesh


def _write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    mesh = trimesh.Trimesh(np.asarray(vertices), np.asarray(faces), process=False)
    with atomic_open(path, "wb") as f:
        f.write(mesh.export(file_type="ply"))
    return path


def _posed_meshes(
    final: FinalModel, obj: trimesh.Trimesh, hands: dict[str, trimesh.Trimesh], out: Path, files: list[Path]
) -> dict[int, FrameMeshes]:
    """Write frames/<t>_object.ply and frames/<t>_hand.ply for every frame; return each frame's merged meshes."""
    R, t, _ = final.object_poses()
    sides = list(hands)
    posers = {side: HandPoser(final, side, mesh) for side, mesh in hands.items()}
    posed: dict[int, FrameMeshes] = {}
    for frame in tqdm(range(final.num_frames), desc="posed meshes", unit="frame"):
        parts = []
        v_obj = posed_object(obj, R[frame], t[frame])
        files.append(_write_ply(out / "frames" / f"{frame:05d}_object.ply", v_obj, obj.faces))
        parts.append((v_obj, obj.faces))
        for side, mesh in hands.items():
            v_hand = posers[side](frame)
            stem = hand_file_stem(side, sides)
            files.append(_write_ply(out / "frames" / f"{frame:05d}_{stem}.ply", v_hand, mesh.faces))
            parts.append((v_hand, mesh.faces))
        posed[frame] = merge(parts)
    return posed


def _write_scene(
    final: FinalModel, obj: trimesh.Trimesh, hands: dict[str, trimesh.Trimesh], frame: int, path: Path
) -> Path:
    """scene.glb: the posed meshes of ``frame``, coloured by the colour networks or by class."""
    R, t, _ = final.object_poses()
    colored = final.cfg.export.vertex_colors
    v_obj = posed_object(obj, R[frame], t[frame])
    meshes = [
        SceneMesh(
            "object",
            v_obj,
            np.asarray(obj.faces),
            object_vertex_colors(final, obj, frame) if colored else CLASS_COLORS[LABEL_OBJECT],
        )
    ]
    for side, mesh in hands.items():
        v_hand = posed_hand(final, side, mesh, frame)
        label = LABEL_RIGHT if side == "right" else LABEL_LEFT
        colors = hand_vertex_colors(final, side, mesh, v_hand) if colored else CLASS_COLORS[label]
        meshes.append(SceneMesh(f"hand_{side}", v_hand, np.asarray(mesh.faces), colors))
    return write_scene(path, meshes)
