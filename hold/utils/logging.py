"""The console and the log file of every command (``hold.run_logger`` adds the CSV of scalars and W&B).

The console stays readable: Python warnings become one line each (``[hold.backend] …`` for our
fallbacks; deprecation warnings go to the debug level), and Lightning's and W&B's banners are off.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

from hold.utils.external import BackendFallbackWarning

LOGGER_NAME = "hold"
QUIET_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",  # "GPU available", "TPU available", tips, the tensor-cores hint
    "lightning.pytorch.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "pytorch_lightning.accelerators.cuda",  # "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES"
    "lightning.pytorch.accelerators.cuda",
)
"""Third-party loggers whose info lines the console does without (their warnings still show)."""
IGNORED_WARNINGS = (r"Checkpoint directory .* exists and is not empty",)
"""Third-party warnings that say nothing here (Lightning's, on every resume into the same folder)."""
_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest and tqdm swap it after set-up), through
    ``tqdm.write`` so that a line logged during a progress bar lands above it, not inside it."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def get_logger(name: str | None = None) -> logging.Logger:
    """The ``hold`` logger or one of its children (``hold.train``, ``hold.preprocess.sfm`` …)."""
    return logging.getLogger(LOGGER_NAME if name is None else f"{LOGGER_NAME}.{name}")


def setup_logging(log_file: str | Path | None = None, console_level: str = "info") -> logging.Logger:
    """Send ``hold`` log records to stderr and, when given, to ``log_file`` (info and above)."""
    logger = get_logger()
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    console = _CurrentStderrHandler()
    console.setLevel(console_level.upper())
    console.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    logger.addHandler(console)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    logger.propagate = False
    quiet_console()
    return logger


def quiet_console() -> None:
    """Warnings as one log line each (no source line), deprecations at debug level, no banners."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` replacement: one line through the ``hold`` logger (console and log file)."""
    text = " ".join(str(message).split())
    if issubclass(category, BackendFallbackWarning):
        get_logger("backend").warning(text)
    elif issubclass(category, _NOISE):
        get_logger("warnings").debug("%s: %s (%s:%s)", category.__name__, text, Path(filename).name, lineno)
    else:
        get_logger("warnings").warning("%s: %s", category.__name__, text)
