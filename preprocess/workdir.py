"""Per-step working dirs ``SEQ/work/<step>/`` with a done-marker written atomically last.

A step whose ``done.json`` exists is skipped (its outputs are complete, because the marker is the last
file written); ``--redo`` recomputes. A step computes into ``SEQ/work/.<step>.partial/``, which replaces
the old dir only once the step finished: a failed redo (a broken new input, an interrupt) leaves the
previous result as it was. The marker records the step's config, so a re-run with a different config
can say that it is reusing older results.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from hold.utils.io import write_json
from preprocess.errors import PreprocessError

DONE_MARKER = "done.json"
WORK_DIR = "work"


@dataclasses.dataclass
class StepDir:
    """The working dir of one step of one SEQUENCE dir.

    Attributes:
        seq: the SEQUENCE dir being built.
        step: the step name.
    """

    seq: Path
    step: str

    @property
    def path(self) -> Path:
        return self.seq / WORK_DIR / self.step

    @property
    def partial(self) -> Path:
        """Where a run of the step writes until it finished."""
        return self.seq / WORK_DIR / f".{self.step}.partial"

    @property
    def marker(self) -> Path:
        return self.path / DONE_MARKER

    def is_done(self) -> bool:
        return self.marker.is_file()

    def done_info(self) -> dict[str, Any]:
        """The contents of ``done.json`` ({} when absent or unreadable)."""
        try:
            return json.loads(self.marker.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def start(self) -> Path:
        """A fresh, empty dir for this run of the step (the finished output, if any, stays untouched)."""
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        return self.partial

    def finish(self, config: Any, summary: dict[str, Any], seconds: float) -> None:
        """Write ``done.json`` (the step's config, a summary and its run time) into the new output, then
        let it replace the old one."""
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
        cfg = json.loads(json.dumps(cfg))  # tuples → lists, as read back
        write_json(
            self.partial / DONE_MARKER,
            {
                "step": self.step,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                "seconds": round(seconds, 3),
                "config": cfg,
                "summary": summary,
            },
        )
        old = self.seq / WORK_DIR / f".{self.step}.old"
        if old.exists():
            shutil.rmtree(old)
        if self.path.exists():
            self.path.rename(old)
        self.partial.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)


def require(seq: Path, step: str, needed_by: str) -> Path:
    """The finished working dir of ``step``, or a ``PreprocessError`` saying to run it first."""
    d = StepDir(seq, step)
    if not d.is_done():
        raise PreprocessError(
            needed_by,
            f"needs the output of step '{step}', which is missing or unfinished "
            f"(no {WORK_DIR}/{step}/{DONE_MARKER}); run it first: --steps {step},{needed_by}",
            path=d.path,
        )
    return d.path
