"""Per-component time of a training step (sampler, hand node, object node, background, losses, …).

Shared by the benchmarks that report where a step's time goes (``gpu_check.py`` on CUDA, and the CPU
throughput profile). Each component is a timed section; nested sections are exclusive (the hand node's
time excludes the sampler calls made inside it). On CUDA every section boundary synchronises the
device, so the numbers are kernel time as well as launch time, at the cost of a slightly slower step
than an unprofiled one: report unprofiled steps/s separately.

Components:
    rays: drawing the ray batch (CPU) and moving it to the device.
    sampler: the samplers' SDF evaluations and depth placement (inside both nodes, no gradient).
    hand_node: posing the hand model and rendering its samples (skinning, SDF, colour), sampler excluded.
    object_node: the object's rendered samples, sampler excluded.
    background: the background field.
    composite: compositing the nodes and the rest of the forward pass.
    losses: the loss terms, with the regulariser samples of every node (eikonal, hand prior).
    backward: ``zero_grad`` and ``loss.backward()``.
    optimiser: ``optimizer.step()``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

COMPONENTS = (
    "rays",
    "sampler",
    "hand_node",
    "object_node",
    "background",
    "composite",
    "losses",
    "backward",
    "optimiser",
)


def samples_per_step(out, num_rays: int, background_samples: int) -> int:
    """Points the nodes and the background evaluate for rendering (sampler evaluations excluded)."""
    return sum(n.weights.numel() for n in out.render.nodes) + num_rays * background_samples


@dataclass
class SectionTimer:
    """Exclusive wall time of named, possibly nested sections, summed until ``reset``.

    Args:
        sync: called at every section boundary (``torch.cuda.synchronize`` on CUDA, nothing on the CPU).
    """

    sync: Callable[[], None] = lambda: None
    totals: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _stack: list[float] = field(default_factory=list)  # children's time of each open section

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        self.sync()
        self._stack.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            inclusive = time.perf_counter() - start
            children = self._stack.pop()
            self.totals[name] += inclusive - children
            if self._stack:
                self._stack[-1] += inclusive

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.section(name):
                return fn(*args, **kwargs)

        return timed

    def reset(self) -> dict[str, float]:
        out = dict(self.totals)
        self.totals = defaultdict(float)
        return out


class _TimedSampler:
    def __init__(self, sampler, timer: SectionTimer) -> None:
        self._sampler, self._timer = sampler, timer

    def __call__(self, *args, **kwargs):
        with self._timer.section("sampler"):
            return self._sampler(*args, **kwargs)


@contextmanager
def instrumented(model, timer: SectionTimer) -> Iterator[None]:
    """Time the components of ``HoldNet.forward`` while inside; the model is restored afterwards."""
    patched = {"sampler": model.sampler}
    model.sampler = _TimedSampler(model.sampler, timer)
    model.posed_hand = timer.wrap("hand_node", model.posed_hand)
    for node in model.hands.values():
        node.render_samples = timer.wrap("hand_node", node.render_samples)
    model.object.render_samples = timer.wrap("object_node", model.object.render_samples)
    model.background.forward = timer.wrap("background", model.background.forward)
    try:
        yield
    finally:
        model.sampler = patched["sampler"]
        for module in (model, model.object, *model.hands.values(), model.background):
            for name in ("posed_hand", "render_samples", "forward"):
                module.__dict__.pop(name, None)


def train_step(system, optimizer, step: int, timer: SectionTimer | None = None):
    """One training step as ``HoldSystem.training_step`` takes it, plus the optimiser; returns the output.

    ``timer`` (optional) times the rays, forward (its remainder: ``composite``), losses, backward and
    optimiser sections; the forward's components need :func:`instrumented` around the call as well.
    """
    section = timer.section if timer is not None else (lambda _: _null())
    system.model.set_step(step)
    generator = system._generator(step)
    with section("rays"):
        batch = system.rays.sample(generator).to(system.device)
    with section("composite"):
        out = system.model(batch, system.model_generator(generator))
    with section("losses"):
        loss = system.compute_losses(batch, out, step, generator).total
    with section("backward"):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    with section("optimiser"):
        optimizer.step()
    return batch, out, loss


@contextmanager
def _null() -> Iterator[None]:
    yield


def profile_steps(system, optimizer, steps: int, first_step: int = 0) -> dict:
    """Per-component seconds per step over ``steps`` profiled training steps of ``system``.

    Returns:
        ``{"steps", "median_step_seconds", "components": {name: {"median_seconds", "mean_seconds",
        "share"}}}``, share = the component's mean over the mean profiled step.
    """
    cuda = system.device.type == "cuda"
    timer = SectionTimer(sync=torch.cuda.synchronize if cuda else (lambda: None))
    per_step: list[dict[str, float]] = []
    with instrumented(system.model, timer):
        for step in range(first_step, first_step + steps):
            train_step(system, optimizer, step, timer)
            per_step.append(timer.reset())
    totals = [sum(s.values()) for s in per_step]
    mean_total = statistics.fmean(totals)
    components = {}
    for name in COMPONENTS:
        values = [s.get(name, 0.0) for s in per_step]
        components[name] = {
            "median_seconds": round(statistics.median(values), 6),
            "mean_seconds": round(statistics.fmean(values), 6),
            "share": round(statistics.fmean(values) / mean_total, 4),
        }
    return {
        "steps": steps,
        "median_step_seconds": round(statistics.median(totals), 6),
        "components": components,
    }
