"""The LightningModule of stages 1 and 3: losses, optimiser groups, schedules, logging, meshing.

HOLD-Net (``hold.model``) renders; this module turns renders into the losses of HOLD §3.2 with the
weights and ramps of the config, and logs every term. Rays are drawn here from a generator seeded by
the global step, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from hold import losses
from hold.config import HoldConfig
from hold.data.rays import RayBatch, SequenceRays
from hold.data.sequence import Sequence
from hold.diagnosis import Diagnosis, diagnose_hand, diagnose_object, explain
from hold.geometry.mesh import EmptySurfaceError, require_surface, sdf_grid
from hold.model.holdnet import HoldNet, HoldOutput
from hold.run_logger import RunLogger
from hold.utils.logging import get_logger
from hold.utils.schedule import ramp
from hold.utils.visualize import render_panel

log = get_logger("train")


SEGMENTATION = {"nll": losses.segmentation_nll, "squared": losses.segmentation_squared}
"""The segmentation term of each ``loss.segmentation_form``."""
MAX_DIAGNOSIS_POINTS = 2000
"""Canonical object points posed per frame when diagnosing a stopped stage (a strided subset)."""


class TrainingStoppedError(RuntimeError):
    """A guard stopped a training stage (no surface at ``train.surface_check_step``, an exploding or
    non-finite loss); the message names the likely cause, and the checkpoints are kept."""


class NonFiniteLossError(TrainingStoppedError):
    """Training produced NaN/Inf; the last checkpoint written before it is kept."""


@dataclass
class LossTerms:
    total: Tensor
    terms: dict[str, Tensor]
    weights: dict[str, float]


class _Steps(torch.utils.data.IterableDataset):
    """Endless step counter: the batches themselves are drawn in ``training_step``."""

    def __iter__(self):
        return iter(itertools.count())


class _AfterStep(pl.Callback):
    """Runs :meth:`HoldSystem.after_step`. Lightning calls callbacks before the module's own
    ``on_train_batch_end`` and checkpoint callbacks last of all, so here the step's model changes land
    before its checkpoint is written."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args) -> None:
        pl_module.after_step()


class HoldSystem(pl.LightningModule):
    """Trains HOLD-Net on one sequence.

    Args:
        cfg: the resolved run config.
        seq: the training sequence (poses are the initial values of the per-frame tables).
        run_logger: where scalars and image panels go (CSV, W&B, disk); None logs nowhere.
        max_steps: steps of this stage (sets the progress bar and the schedule's end).
        stage: the stage this system trains (1 or 3), for messages.
    """

    def __init__(
        self, cfg: HoldConfig, seq: Sequence, run_logger: RunLogger | None, max_steps: int, stage: int = 1
    ):
        super().__init__()
        self.cfg = cfg
        self.seq = seq
        self.model = HoldNet(seq, cfg.model, cfg.hand, cfg.render, seed=cfg.seed)
        self.model.params.requires_grad_(cfg.optim.optimize_frame_params)
        if cfg.optim.optimize_object_poses:
            self.model.params.object.rot.requires_grad_(True)
            self.model.params.object.transl.requires_grad_(True)
            if cfg.optim.object_rot_frames == "filled":
                self._hold_sfm_rotations(seq)
        self.rays = SequenceRays(seq, cfg.rays)
        self.run_logger = run_logger
        self.max_steps = max_steps
        self.stage = stage
        self._loss_floor: float | None = None  # lowest total loss so far, for the explosion guard
        self._surface_checked = False  # train.surface_check_step has been checked in this process
        self._last_mesh: tuple[int, EmptySurfaceError | None] = (-1, None)  # step, error of the last meshing

    # ------------------------------------------------------------------------------------ training
    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(_Steps(), batch_size=None)

    def _generator(self, step: int) -> torch.Generator:
        """CPU generator of ``step``: the ray batch and the regularisers' points are drawn on the CPU."""
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)

    def model_generator(self, generator: torch.Generator) -> torch.Generator:
        """The generator the samplers draw from, on the model's device.

        On the CPU it is ``generator`` itself (CPU runs draw the same numbers as before); elsewhere a
        device generator seeded with ``generator``'s seed, since a CPU generator cannot draw on CUDA.
        """
        if self.device.type == "cpu":
            return generator
        return torch.Generator(device=self.device).manual_seed(generator.initial_seed())

    def compute_losses(
        self, batch: RayBatch, out: HoldOutput, step: int, generator: torch.Generator
    ) -> LossTerms:
        """Weighted sum of HOLD's terms at ``step`` (HOLD §3.2)."""
        w = self.cfg.loss
        render = out.render
        known = batch.labels != 255
        canonical = self.model.canonical_terms(generator)
        hands = list(canonical.hands.values())
        terms = {
            "rgb": losses.rgb_l1(render.rgb, batch.rgb, known),
            "segmentation": SEGMENTATION[w.segmentation_form](render.class_probs, batch.labels),
            "eikonal": losses.eikonal(torch.cat([t.gradients for t in canonical.all()])),
            "hand_prior": torch.stack([losses.sdf_prior_l1(t.sdf, t.target_sdf) for t in hands]).mean(),
        }
        sparse = [losses.sparsity(n.opacity, out.far_rays[n.label]) for n in render.nodes]
        terms["sparsity"] = torch.stack(sparse).mean()
        weights = {name: ramp(getattr(w, name), step) for name in terms}
        # HOLD's released code adds the eikonal term only while it exceeds a floor (loss.py: 8e-4)
        gates = {"eikonal": (terms["eikonal"].detach() > w.eikonal_min).to(terms["eikonal"].dtype)}
        total = sum(weights[k] * v * gates.get(k, 1.0) for k, v in terms.items())
        return LossTerms(total=total, terms=terms, weights=weights)

    def training_step(self, batch_idx: int, _: int) -> Tensor:
        step = self.global_step
        self.model.set_step(step)
        generator = self._generator(step)
        batch = self.rays.sample(generator).to(self.device)
        out = self.model(batch, self.model_generator(generator))
        loss = self.compute_losses(batch, out, step, generator)
        self.guard_loss(loss, step)
        psnr = losses.psnr(out.render.rgb.detach(), batch.rgb)
        self.log("loss", loss.total.detach(), prog_bar=True)
        self.log("psnr", psnr, prog_bar=True)
        if self.run_logger is not None and step % self.cfg.logging.log_every_steps == 0:
            scalars = {f"loss/{k}": v.item() for k, v in loss.terms.items()}
            scalars |= {f"weight/{k}": v for k, v in loss.weights.items()}
            scalars |= {"loss/total": loss.total.item(), "psnr": psnr.item()}
            scalars |= {f"beta/{name}": n.density.get_beta().item() for name, n in self._nodes().items()}
            self.run_logger.log_scalars(step, scalars)
        return loss.total

    def configure_callbacks(self) -> list[pl.Callback]:
        return [_AfterStep()]

    def after_step(self) -> None:
        """What changes the model after an optimiser step (re-meshing; the surface check, which may stop
        the stage). :class:`_AfterStep` runs it before the step's checkpoint is written, so a run resumed
        from that checkpoint continues from the same state as an uninterrupted one."""
        step = self.global_step  # already incremented: the number of finished steps
        tc = self.cfg.train
        if tc.mesh_every and step % tc.mesh_every == 0:
            self.update_object_mesh()
        if (
            self.stage == 1
            and tc.surface_check_step
            and not self._surface_checked
            and step >= tc.surface_check_step
        ):
            self._surface_checked = True  # at the check step, or at the first step of a run resumed past it
            self.check_surfaces(step)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        step, every = self.global_step, self.cfg.train.image_every
        if self.run_logger is not None and every and step % every == 0:
            self.log_panel(step)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hold_loss_floor"] = self._loss_floor  # the explosion guard's reference, for a resume

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._loss_floor = checkpoint.get("hold_loss_floor")

    def configure_optimizers(self) -> dict:
        o = self.cfg.optim
        latents = [self.model.object.latents.weight, self.model.background.latents.weight]
        densities = [p for n in self._nodes().values() for p in n.density.parameters()]
        frame_params = list(self.model.params.parameters())
        special = {id(p) for p in latents + densities + frame_params}
        networks = [p for p in self.model.parameters() if id(p) not in special]
        groups = [
            {"name": "networks", "params": networks, "lr": o.lr},
            {"name": "density", "params": densities, "lr": o.lr_density},
            {"name": "latents", "params": latents, "lr": o.lr_latents},
        ]
        object_poses = [self.model.params.object.rot.weight, self.model.params.object.transl.weight]
        if o.optimize_object_poses:
            groups.append({"name": "object_poses", "params": object_poses, "lr": o.lr_object_poses})
        if o.optimize_frame_params:
            posed = {id(p) for p in object_poses} if o.optimize_object_poses else set()
            rest = [p for p in frame_params if id(p) not in posed]
            groups.append({"name": "frame_params", "params": rest, "lr": o.lr_frame_params})
        optimizer = torch.optim.Adam(groups)
        decay, steps = o.lr_decay, max(self.max_steps, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: decay ** min(step / steps, 1.0))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # ----------------------------------------------------------------------------- helpers
    def _hold_sfm_rotations(self, seq: Sequence) -> None:
        """Zero the rotation gradients of SfM-registered frames (``optim.object_rot_frames=filled``):
        Adam never moves a parameter row whose gradient stays zero, so those rotations stay as
        preprocessed."""
        moving = ~seq.object.sfm_registered()
        log.info(
            "object rotations: optimising the %d of %d frames not registered by SfM (optim.object_rot_frames=filled)",
            int(moving.sum()), seq.num_frames,
        )  # fmt: skip
        rows = torch.as_tensor(moving, dtype=torch.float32)[:, None]
        self.model.params.object.rot.weight.register_hook(lambda grad: grad * rows.to(grad.device))

    def _nodes(self) -> dict[str, torch.nn.Module]:
        return {**{f"hand_{s}": n for s, n in self.model.hands.items()}, "object": self.model.object}

    def update_object_mesh(self) -> None:
        """Re-mesh the object (train.mesh_every): the sparsity term's vertices, and a 3D view in the logs."""
        step = self.global_step
        try:
            mesh = self.model.extract_object_mesh(self.cfg.train.mesh_resolution)
        except EmptySurfaceError as e:
            log.warning("object mesh not updated at step %d: %s", step, e)
            self._last_mesh = (step, e)
            return
        self._last_mesh = (step, None)
        self.model.object.set_mesh_vertices(torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32))
        if self.run_logger is not None:
            self.run_logger.log_mesh(step, "object_mesh", mesh)

    # ------------------------------------------------------------------------------------- guards
    def guard_loss(self, loss: LossTerms, step: int) -> None:
        """Stop on a non-finite loss, or one above ``train.loss_explosion_factor`` × its lowest value."""
        if not torch.isfinite(loss.total):
            bad = [k for k, v in loss.terms.items() if not torch.isfinite(v)]
            raise NonFiniteLossError(
                self.explain_stop(
                    f"stage {self.stage} stopped: non-finite loss at step {step} (terms: {', '.join(bad) or 'total'})",
                    self.diagnose(sides=list(self.model.hands)),
                    self._divergence_hint(),
                    "The last checkpoint written before this step is kept",
                )
            )
        total, factor, floor = (
            float(loss.total.detach()),
            self.cfg.train.loss_explosion_factor,
            self._loss_floor,
        )
        if factor and floor is not None and total > factor * floor:
            largest = max(loss.terms, key=lambda k: loss.weights[k] * float(loss.terms[k].detach()))
            raise TrainingStoppedError(
                self.explain_stop(
                    f"stage {self.stage} stopped: the loss exploded at step {step} to {total:.3g}, more than "
                    f"train.loss_explosion_factor={factor:g} times its lowest value so far ({floor:.3g}; "
                    f"largest weighted term: {largest})",
                    self.diagnose(sides=list(self.model.hands)),
                    self._divergence_hint(),
                    "The last checkpoint written before this step is kept; add train.loss_explosion_factor=0 "
                    "to the same command to go on without this guard",
                )
            )
        self._loss_floor = total if floor is None else min(floor, total)

    def _divergence_hint(self) -> str:
        o = self.cfg.optim
        return (
            f"the optimisation diverged; try a lower optim.lr (now {o.lr:g}) or optim.grad_clip "
            f"(now {o.grad_clip:g}) in a new run dir"
        )

    @torch.no_grad()
    def hand_surface_error(self, side: str, resolution: int) -> EmptySurfaceError | None:
        """Whether the hand SDF has a zero level set in the box around its canonical hand-model mesh."""
        node = self.model.hands[side]
        half = float(node.radius) + node.cfg.sphere_margin
        bounds = (-half, half)
        grid = sdf_grid(lambda x: node.canonical_sdf(x.to(self.device) + node.centre), bounds, resolution)
        try:
            require_surface(grid, bounds)
        except EmptySurfaceError as e:
            return e
        return None

    def check_surfaces(self, step: int) -> None:
        """``train.surface_check_step``: stop with the likely cause when the object or a hand has no surface."""
        resolution = self.cfg.train.mesh_resolution
        errors: dict[str, EmptySurfaceError] = {}
        meshed_at, error = self._last_mesh
        if meshed_at != step:
            try:
                self.model.extract_object_mesh(resolution)
                error = None
            except EmptySurfaceError as e:
                error = e
        if error is not None and not self._object_nearly_surfaced(step, resolution, error):
            errors["the object"] = error
        hands = {side: self.hand_surface_error(side, resolution) for side in self.model.hands}
        sides = [side for side, e in hands.items() if e is not None]
        errors |= {f"the {side} hand": hands[side] for side in sides}
        if not errors:
            log.info("stage %d: surfaces present at step %d (train.surface_check_step)", self.stage, step)
            return
        ckpt_dir = self.save_stop_checkpoint()
        what = " and ".join(errors)
        raise TrainingStoppedError(
            self.explain_stop(
                f"stage {self.stage} stopped at step {step} (train.surface_check_step): {what} "
                f"{'has' if len(errors) == 1 else 'have'} no surface ({'; '.join(map(str, errors.values()))})",
                self.diagnose(include_object="the object" in errors, sides=sides),
                "the SDF emptied although they agree (thin or small objects, poses a few degrees off and "
                f"noisy masks can do this); the renders of the first steps are in {self._images_dir()}",
                f"Checkpoints are kept{f' in {ckpt_dir}' if ckpt_dir else ''}: re-running the same command "
                "resumes and checks again; add train.surface_check_step=0 to it to go on without the check",
            )
        )

    def _object_nearly_surfaced(self, step: int, resolution: int, error: EmptySurfaceError) -> bool:
        """True (with a warning) when the object SDF, without a zero set yet, comes within one grid cell
        of one: still forming (suite v2: a marker stopped at SDF min 0.0035 reached a surface later)."""
        oc = self.cfg.model.object
        cell = 2 * (oc.sphere_radius + oc.sphere_margin) / (resolution - 1)
        try:
            self.model.extract_object_mesh(resolution, level=cell)
        except EmptySurfaceError:
            return False
        log.warning(
            "stage %d, step %d: the object has no surface yet (%s) but comes within one grid cell (%.3f) "
            "of one: training goes on",
            self.stage,
            step,
            error,
            cell,
        )
        return True

    def _images_dir(self) -> str:
        if self.run_logger is None:
            return "RUN/logs/images"
        return str(self.run_logger.logs_dir / "images" / self.run_logger.stage)

    def save_stop_checkpoint(self) -> Path | None:
        """Write ``last.ckpt`` now (this runs in :meth:`after_step`, before the checkpoint
        callback); returns the folder."""
        callback = self.trainer.checkpoint_callback if self._trainer is not None else None
        if callback is None or callback.dirpath is None:
            return None
        folder = Path(callback.dirpath)
        self.trainer.save_checkpoint(folder / "last.ckpt")
        return folder

    def explain_stop(self, headline: str, diagnosis: Diagnosis, fallback: str, after: str) -> str:
        return explain(headline, diagnosis, fallback, self.seq.root, after)

    @torch.no_grad()
    def diagnose(self, include_object: bool = True, sides: list[str] | None = None) -> Diagnosis:
        """The numbers behind the likely causes of a stopped stage (``hold.diagnosis``), on the CPU."""
        masks, K = self.rays.masks, self.rays.K
        frames = torch.as_tensor(self.rays.frames, device=self.device)
        out = Diagnosis()
        if include_object:
            pose, oc = self.model.params.object(frames), self.cfg.model.object
            points = torch.as_tensor(self.seq.object.points, dtype=torch.float32, device=self.device)
            points = points[:: max(1, -(-len(points) // MAX_DIAGNOSIS_POINTS))]
            scale = float(pose.s)
            note = (
                f"model.object.sphere_radius {oc.sphere_radius:g} + sphere_margin {oc.sphere_margin:g} "
                f"canonical units at the object scale {scale * 1e3:.0f} mm"
            )
            radius = scale * (oc.sphere_radius + oc.sphere_margin)
            posed = pose.to_camera(points).float().cpu()
            out.extend(diagnose_object(masks, K, posed, pose.t.float().cpu(), radius, note))
        for side in sides or []:
            vertices = self.model.posed_hand(side, frames).vertices.float().cpu()
            out.extend(diagnose_hand(side, masks, K, vertices))
        return out

    def log_panel(self, step: int) -> None:
        index = step // max(1, self.cfg.train.image_every) % len(self.rays.frames)
        frame = self.model.render_frame(
            self.rays, index, self.cfg.train.image_stride, self.cfg.train.render_chunk
        )
        panel = render_panel(frame)
        self.run_logger.log_images(step, {f"panel_frame{self.rays.frames[index]:05d}": panel})
