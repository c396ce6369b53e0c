"""The synthetic generator end to end: object → grasp → motion → rendering → RAW dir (+ oracle SEQUENCE)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from scipy.spatial.transform import Rotation

from hold.config.hand import HandConfig, JointLimitsConfig
from hold.data.synthetic.backdrop import photo_backdrop
from hold.data.synthetic.config import SynthConfig
from hold.data.synthetic.estimators import emulate_hand_estimates, noisy_masks
from hold.data.synthetic.grasp import Grasp, optimise_grasp
from hold.data.synthetic.objects import ObjectModel, load_object, sample_faces, sample_surface
from hold.data.synthetic.presets import make_config
from hold.data.synthetic.raw import RenderedSequence, contact_sheet, write_oracle, write_raw
from hold.data.synthetic.render import Lighting, RenderMesh, light_disc, render
from hold.data.synthetic.scene import (
    Trajectory,
    distractor_mesh,
    finger_motion_weights,
    intrinsics,
    make_trajectory,
    wall_mesh,
)
from hold.data.synthetic.texture import PlaneAlbedo, ProceduralAlbedo, ProceduralTexture, VertexColorAlbedo
from hold.hand.build import build_hand_model
from hold.hand.model import HandModel
from hold.utils.io import write_png

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONTACT_SHEET = "contact_sheet.png"
# New streams go last: SeedSequence children are numbered, so the earlier streams stay as they were.
# New streams go last: spawned children do not depend on how many follow, so older clips stay identical.
_STREAMS = ("object", "grasp", "motion", "background", "skin", "masks", "hands", "oracle", "sensor", "plate")
_SKIN_WAVES = 6  # random plane waves summed into the skin's low-frequency albedo variation
_SKIN_FREQ = 40.0  # their spatial frequency, radians per metre
_BACKGROUND_SAMPLES = 20000  # wall samples that seed its texture cells
_FLEXING = ("mcp", "pip", "dip")  # finger joints that ``finger_motion`` opens


@dataclass
class SynthResult:
    """What ``generate`` wrote and how the grasp turned out."""

    raw_dir: Path
    oracle_dir: Path | None
    contact_sheet: Path
    grasp_ok: bool
    seconds: float


def generate(
    out_dir: str | Path,
    preset: str = "demo",
    seed: int = 0,
    object: str | None = None,  # noqa: A002 - mirrors the CLI's --object
    oracle: str | Path | None = None,
    cfg: SynthConfig | None = None,
    overrides: dict[str, Any] | None = None,
) -> SynthResult:
    """Render a synthetic hand–object sequence into a RAW dir with gt/ (and optionally an oracle SEQUENCE).

    Same arguments → byte-identical files.

    Args:
        out_dir: RAW dir to write.
        preset: ``tiny`` or ``demo`` (ignored when ``cfg`` is given).
        seed: seed of every random choice.
        object: procedural shape name or mesh path; None keeps the config's.
        oracle: also write an oracle SEQUENCE dir here.
        cfg: a full config instead of a preset.
        overrides: ``make_config`` overrides of the preset's fields (dotted keys reach nested
            configs; ``noise`` may name a noise preset); not with ``cfg``.

    Raises:
        ValueError: an unknown setting, or both ``cfg`` and ``overrides``.
    """
    start = time.perf_counter()
    if cfg is not None and overrides:
        raise ValueError("give either a full cfg or preset overrides, not both")
    preset_name = "custom" if cfg is not None else preset
    cfg = copy.deepcopy(cfg) if cfg is not None else make_config(preset, **(overrides or {}))
    if object is not None:
        cfg.object = str(object)
    rngs = dict(
        zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS))))
    )
    obj = load_object(cfg.object, cfg, rngs["object"])
    hand = build_hand_model(HandConfig(), side="right")
    grasp = optimise_grasp(hand, obj, cfg.grasp, rngs["grasp"])
    grasp_info = _grasp_report(grasp, cfg)
    if not grasp_info["accepted"]:
        log.warning("grasp of %s misses the acceptance thresholds: %s", obj.name, grasp_info)
    # Spin about the object→palm axis: the palm stays beside the object instead of passing in front.
    palm = grasp.vertices[hand.contact_vertex_ids().palm.numpy()].mean(0)
    poses = finger_poses(hand, grasp, cfg)
    moved = [] if poses is None else [_hand_vertices(hand, grasp, poses).reshape(-1, 3)]
    points = np.concatenate([obj.vertices, grasp.vertices, *moved])  # frame the opened fingers too
    traj = make_trajectory(cfg, palm / np.linalg.norm(palm), points, rngs["motion"])
    seq = _render_sequence(cfg, obj, hand, grasp, traj, rngs, poses)
    masks = noisy_masks(seq.labels, cfg.noise, rngs["masks"])
    hands = emulate_hand_estimates(seq.joints, seq.K, seq.labels, seq.depth, cfg.noise, rngs["hands"])
    meta = {
        "generator": "hold.data.synthetic",
        "version": FORMAT_VERSION,
        "preset": preset_name,
        "seed": seed,
        "object": cfg.object,
        "hand_model": seq.hand_model,
        "pixel_convention": "pixel (i, j) covers [i, i+1) x [j, j+1): its centre is at (i + 0.5, j + 0.5)",
        "noise_preset": cfg.noise_preset,
        "noise": dataclasses.asdict(cfg.noise),
        "grasp": grasp_info,
        "config": dataclasses.asdict(cfg),
    }
    out_dir = Path(out_dir)
    write_raw(out_dir, seq, masks, hands, meta)
    sheet = out_dir / CONTACT_SHEET
    write_png(sheet, contact_sheet(seq.images, masks, hands.kp2d, cfg.contact_sheet_columns))
    oracle_dir = None
    if oracle is not None:
        points, colors = sample_surface(obj, cfg.oracle_num_points, rngs["oracle"])
        source = {"kind": "synthetic-oracle", "raw": out_dir.name, "seed": seed, "object": cfg.object}
        oracle_dir = write_oracle(Path(oracle), seq, points, colors, obj.radius, source)
    return SynthResult(out_dir, oracle_dir, sheet, bool(grasp_info["accepted"]), time.perf_counter() - start)


def _grasp_report(grasp: Grasp, cfg: SynthConfig) -> dict[str, Any]:
    g = cfg.grasp
    touching = int((np.abs(grasp.tip_distance) <= g.contact_tolerance_m).sum())
    deepest = max(grasp.hand_penetration, grasp.object_penetration)
    return {
        "tip_distance_mm": [round(float(d) * 1e3, 3) for d in grasp.tip_distance],
        "fingertips_touching": touching,
        "hand_penetration_mm": round(grasp.hand_penetration * 1e3, 3),
        "object_penetration_mm": round(grasp.object_penetration * 1e3, 3),
        "steps": grasp.steps,
        "accepted": touching >= g.min_contacts and deepest <= g.penetration_tolerance_m,
    }


def finger_poses(hand: HandModel, grasp: Grasp, cfg: SynthConfig) -> np.ndarray | None:
    """(T, J, 3) per-frame joint angles of the ``finger_motion`` option, or None without finger motion.

    Each finger's MCP, PIP and DIP flexion is reduced by ``finger_motion_deg`` × its weight from
    ``finger_motion_weights`` (not below the anatomical lower limit); the thumb, the metacarpals and
    the spread keep the grasp's angles, and frames of weight 0 are the grasp pose exactly.
    """
    weights = finger_motion_weights(cfg)  # (T, 4) index..little
    if not weights.any():
        return None
    dtype = hand.skinning_weights.dtype
    anat = hand.pose_to_anatomical(torch.as_tensor(grasp.pose, dtype=dtype)[None])[0].double().numpy()
    lower = hand.pose_limits(JointLimitsConfig())[0].double().numpy()
    delta = np.zeros((cfg.num_frames, *anat.shape))
    for k, joints in enumerate(hand.finger_joints[1:]):
        for j in (j for j in joints if hand.joint_types[j] in _FLEXING):
            flex = anat[j, 0]
            opened = np.maximum(
                flex - np.deg2rad(cfg.finger_motion_deg) * weights[:, k], min(flex, lower[j, 0])
            )
            delta[:, j, 0] = opened - flex
    change = hand.anatomical_to_pose(torch.as_tensor(delta, dtype=dtype)).double().numpy()
    return grasp.pose[None] + change


def _hand_vertices(hand: HandModel, grasp: Grasp, pose: np.ndarray) -> np.ndarray:
    """(T, V, 3) hand vertices in the object frame for per-frame joint angles pose (T, J, 3)."""
    T, dtype = len(pose), hand.skinning_weights.dtype
    with torch.no_grad():
        out = hand(
            torch.as_tensor(grasp.global_orient, dtype=dtype).expand(T, 3),
            torch.as_tensor(pose, dtype=dtype),
            torch.as_tensor(grasp.betas, dtype=dtype)[None],
            torch.as_tensor(grasp.transl, dtype=dtype).expand(T, 3),
        )
    return out.vertices.double().numpy()


def _posed_hand(
    hand: HandModel, grasp: Grasp, R: np.ndarray, t: np.ndarray, pose: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Hand parameters and outputs for the grasp moved rigidly by (R (T, 3, 3), t (T, 3)).

    The translation is solved for rather than derived from the model's pivot convention: posing with
    zero translation and comparing with the rigidly moved grasp gives it, whatever the model. With
    per-frame joint angles ``pose`` (T, J, 3) the root keeps that global pose and only the fingers
    move: the outputs follow ``pose``.
    """
    T = len(R)
    dtype = hand.skinning_weights.dtype
    go = Rotation.from_matrix(R @ Rotation.from_rotvec(grasp.global_orient).as_matrix()).as_rotvec()
    params = {
        "global_orient": torch.as_tensor(go, dtype=dtype),
        "pose": torch.as_tensor(grasp.pose, dtype=dtype).expand(T, -1, -1),
        "betas": torch.as_tensor(grasp.betas, dtype=dtype)[None],
        "transl": torch.zeros(T, 3, dtype=dtype),
    }
    target = np.einsum("tij,vj->tvi", R, grasp.vertices) + t[:, None]
    with torch.no_grad():
        zero = hand(**params).vertices.double().numpy()
        params["transl"] = torch.as_tensor((target - zero).mean(1), dtype=dtype)
        if pose is not None:
            params["pose"] = torch.as_tensor(pose, dtype=dtype)
        out = hand(**params)
    return {
        "global_orient": go,
        "pose": np.broadcast_to(grasp.pose, (T, *grasp.pose.shape)).copy() if pose is None else pose.copy(),
        "betas": grasp.betas,
        "transl": params["transl"].double().numpy(),
        "vertices": out.vertices.double().numpy(),
        "joints": out.keypoints.double().numpy(),
    }


def _skin_colors(cfg: SynthConfig, rest: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, 3) skin albedo with a smooth random variation over the rest-pose vertices."""
    waves = rng.normal(size=(_SKIN_WAVES, 3))
    phase = rng.uniform(0, 2 * np.pi, _SKIN_WAVES)
    variation = np.sin(_SKIN_FREQ * rest @ waves.T + phase).mean(1)
    return np.clip(np.asarray(cfg.skin_rgb)[None] * (1.0 + cfg.skin_variation * variation)[:, None], 0, 1)


def _render_sequence(
    cfg: SynthConfig,
    obj: ObjectModel,
    hand: HandModel,
    grasp: Grasp,
    traj: Trajectory,
    rngs: dict[str, Any],
    poses: np.ndarray | None = None,
) -> RenderedSequence:
    K = intrinsics(cfg)
    posed = _posed_hand(hand, grasp, traj.group_R, traj.group_t, poses)
    # Render the sealed hand: the wrist opening is capped rather than showing the inside of the skin.
    faces = hand.sealed_faces.numpy()
    rest = hand.seal(hand.canonical_vertices()).double().numpy()
    sealed = hand.seal(torch.as_tensor(posed["vertices"])).numpy()
    skin = VertexColorAlbedo(faces, _skin_colors(cfg, rest, rngs["skin"]))
    wall_v, wall_f = wall_mesh(cfg, traj.distance)
    rng = rngs["background"]
    samples = wall_v[0] + rng.random((_BACKGROUND_SAMPLES, 1)) * (wall_v[1] - wall_v[0])
    samples += rng.random((_BACKGROUND_SAMPLES, 1)) * (wall_v[3] - wall_v[0])
    wall_area = float(np.linalg.norm(wall_v[1] - wall_v[0]) * np.linalg.norm(wall_v[3] - wall_v[0]))
    if cfg.background_style == "photo":
        image = photo_backdrop(rng, cfg.background_texels)
        wall = PlaneAlbedo(wall_v[0], wall_v[1] - wall_v[0], wall_v[3] - wall_v[0], image)
    else:
        wall_texture = ProceduralTexture.random(rng, cfg.background_texture, samples, wall_area)
        wall = PlaneAlbedo.bake(
            wall_texture, wall_v[0], wall_v[1] - wall_v[0], wall_v[3] - wall_v[0], cfg.background_texels
        )
    statics = [(wall_v, wall_f, wall)]
    if cfg.distractor:
        box_v, box_f = distractor_mesh(cfg, traj.distance, K)
        face, bary = sample_faces(box_v, box_f, _BACKGROUND_SAMPLES, rng)
        box_samples = np.einsum("nk,nkc->nc", bary, box_v[box_f[face]])
        box_area = float(trimesh.Trimesh(box_v, box_f, process=False).area)
        texture = ProceduralTexture.random(rng, cfg.texture, box_samples, box_area)
        statics.append((box_v, box_f, ProceduralAlbedo(texture)))
    direction = np.asarray(cfg.light_dir, np.float64)
    direction /= np.linalg.norm(direction)
    shadow_dirs = light_disc(direction, cfg.shadow_softness_deg, cfg.shadow_samples) if cfg.shadows else None
    frac = np.arange(cfg.num_frames) / max(cfg.num_frames - 1, 1)
    gains = 1.0 + cfg.light_drift * ((frac - 0.5) + 0.25 * np.sin(3 * np.pi * frac))
    images, labels, depth = [], [], []
    for t in range(cfg.num_frames):
        light = Lighting(direction, cfg.ambient, float(gains[t]), shadow_dirs)
        meshes = [
            RenderMesh(
                obj.vertices @ traj.group_R[t].T + traj.group_t[t], obj.faces, 1, obj.albedo, obj.vertices
            ),
            RenderMesh(sealed[t], faces, 2, skin, rest),
        ]
        for v, f, albedo in statics:
            meshes.append(RenderMesh(v @ traj.world_R[t].T + traj.world_t[t], f, 0, albedo, v))
        out = render(meshes, K, cfg.image_size, light, cfg.supersample)
        if cfg.image_noise > 0:
            noise = rngs["sensor"].normal(0.0, cfg.image_noise * 255.0, out.rgb.shape)
            out.rgb = np.clip(np.round(out.rgb + noise), 0, 255).astype(np.uint8)
        images.append(out.rgb)
        labels.append(out.labels)
        depth.append(out.depth)
    plate = None
    if cfg.camera_motion == "static":  # what a user films before the hand enters
        scene = [RenderMesh(v @ traj.world_R[0].T + traj.world_t[0], f, 0, a, v) for v, f, a in statics]
        plate = render(scene, K, cfg.image_size, Lighting(direction, cfg.ambient), cfg.supersample).rgb
        if cfg.image_noise > 0:
            noise = rngs["plate"].normal(0.0, cfg.image_noise * 255.0, plate.shape)
            plate = np.clip(np.round(plate + noise), 0, 255).astype(np.uint8)
    return RenderedSequence(
        K=K,
        images=np.stack(images),
        labels=np.stack(labels),
        depth=np.stack(depth),
        hand_global_orient=posed["global_orient"],
        hand_pose=posed["pose"],
        hand_betas=posed["betas"],
        hand_transl=posed["transl"],
        joints=posed["joints"],
        hand_vertices=posed["vertices"],
        object_R=traj.group_R,
        object_t=traj.group_t,
        object_ply=obj.to_ply(),
        hand_model=hand.name,
        plate=plate,
    )
