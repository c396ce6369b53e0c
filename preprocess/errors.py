"""The one error type of preprocessing: names the step, the file and the problem (and what to try)."""

from __future__ import annotations

from pathlib import Path


class PreprocessError(RuntimeError):
    """A problem with the input or an intermediate result that the user can act on.

    The CLI prints ``hold-preprocess: error: <step>: <path>: <message>`` and exits 2, never a traceback.

    Args:
        step: the step that failed (``frames``, ``masks``, …).
        message: what is wrong and, where it helps, what to try.
        path: the file or folder concerned, if any.
    """

    def __init__(self, step: str, message: str, path: str | Path | None = None):
        self.step, self.path, self.message = step, None if path is None else Path(path), message
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{step}: {where}{message}")
