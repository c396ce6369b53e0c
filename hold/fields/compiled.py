"""``torch.compile`` for the fields' elementwise hot spots on the CPU: same results, fewer passes.

The PyTorch hash grid computes every point's 2^D corner rows and interpolation weights with a chain of
small broadcast ops over (levels, points, corners) tensors, each a full pass over memory. Inductor
fuses the chain into one C++ loop; on a `fast` training step that is most of the encoding's time.
The result is the same computation: integer rows identical, weights to float rounding.

Compiled code cannot be differentiated twice, so passes that take the SDF's gradient w.r.t. its input
and may backpropagate through it (eikonal term, normals) run the eager code: they are wrapped in
:func:`eager_only`. Small batches run eager too (nothing to gain, and sizes 0 and 1 would make
torch.compile specialise and compile again). Where compiling fails (no C++ compiler, an unsupported
platform) the eager code runs, with one warning per process.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch

CompileMode = Literal["never", "cpu", "always"]

# Below this many points a call runs eager: launching the compiled kernel saves nothing there.
_MIN_POINTS = 1024

_local = threading.local()


class CompileFallbackWarning(UserWarning):
    """torch.compile failed; the eager PyTorch code runs instead (same results, slower)."""


@contextmanager
def eager_only() -> Iterator[None]:
    """Run the eager code inside this block (for graphs that are differentiated twice)."""
    depth = getattr(_local, "eager_depth", 0)
    _local.eager_depth = depth + 1
    try:
        yield
    finally:
        _local.eager_depth = depth


def _in_eager_only() -> bool:
    return getattr(_local, "eager_depth", 0) > 0


class MaybeCompiled:
    """``fn`` compiled with ``torch.compile(dynamic=True)`` where ``mode`` allows, else ``fn`` itself.

    Args:
        fn: a pure tensor function; its first argument's leading size is the number of points.
        name: what it computes, for the fallback warning.
    """

    _failed: set[str] = set()  # per process: a failure is reported (and paid for) once

    def __init__(self, fn: Callable, name: str) -> None:
        self.fn = fn
        self.name = name
        self._compiled: Callable | None = None

    def use_compiled(self, mode: CompileMode, x: torch.Tensor) -> bool:
        """Whether a call on points ``x`` takes the compiled path."""
        if mode == "never" or self.name in self._failed or _in_eager_only() or x.shape[0] < _MIN_POINTS:
            return False
        return mode == "always" or x.device.type == "cpu"

    def __call__(self, mode: CompileMode, x: torch.Tensor, *args):
        if not self.use_compiled(mode, x):
            return self.fn(x, *args)
        if self._compiled is None:
            self._compiled = torch.compile(self.fn, dynamic=True)
        try:
            return self._compiled(x, *args)
        except Exception as err:  # compiler missing or unsupported: the eager code is the same maths
            self._failed.add(self.name)
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warnings.warn(
                f"{self.name}: torch.compile failed ({first_line[:200]}); running the eager PyTorch "
                "code (same results, slower). Set the encoding's compile: never to skip the attempt.",
                CompileFallbackWarning,
                stacklevel=2,
            )
            return self.fn(x, *args)
