"""``SEQ/report.html`` and ``SEQ/report.json``: what each preprocessing step found, judged.

``hold-preprocess`` writes both after its last step, after any re-run (``--redo``, ``--steps``), and
when a step stops with an error (then for the steps that finished, plus the failed one). Per step a
verdict — ok, warning, failed or not run — with the numbers behind it, the warnings and fallbacks the
step recorded, and a next step in words; below, plots of the per-frame numbers and a contact sheet.
The HTML is self-contained (inline CSS, PNGs as data URIs, no scripts), so it opens offline.
Thresholds are ``ReportThresholds``; the plots are in ``preprocess.report_plots``.
"""

from __future__ import annotations

import base64
import html
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hold.utils.io import describe_os_error, write_json, write_text
from hold.utils.logging import get_logger
from preprocess import STEPS
from preprocess.config import step_config
from preprocess.report_checks import ReportThresholds, Verdict, step_verdicts
from preprocess.report_data import ReportData, load_report_data, sfm_model_stats
from preprocess.report_plots import (
    Plot,
    contact_plot,
    contact_sheet,
    hands_plot,
    masks_plot,
    rotation_plot,
    sfm_plot,
)

REPORT_HTML, REPORT_JSON = "report.html", "report.json"
REPORT_FORMAT, REPORT_VERSION = "hold-preprocess-report", 1
log = get_logger("preprocess.report")


@dataclass
class StepFailure:
    """The step that stopped preprocessing, and its error message."""

    step: str
    message: str

    @classmethod
    def from_error(cls, step: str, error: BaseException) -> StepFailure:
        """The message the CLI prints for ``error`` (one line for a filesystem error)."""
        if isinstance(error, OSError):
            return cls(step, describe_os_error(error))
        return cls(step, str(error) or type(error).__name__)


@dataclass
class Report:
    """Everything report.json holds (report.html shows the same, with the plots).

    Attributes:
        sequence: the SEQUENCE dir.
        created: local time, ``YYYY-MM-DD HH:MM:SS``.
        overall: the worst verdict (``ok``, ``warning``, ``failed``), or ``incomplete`` when steps are
            missing but none warns or failed.
        verdicts: one per step, in pipeline order.
        plots: the figures (PNG bytes; report.json lists them without the bytes).
        failure: the error that stopped preprocessing, if any.
        problems: files that could not be read and plots that could not be drawn.
        thresholds: the thresholds the verdicts used.
    """

    sequence: Path
    created: str
    overall: str
    verdicts: list[Verdict]
    plots: list[Plot] = field(default_factory=list)
    failure: StepFailure | None = None
    problems: list[str] = field(default_factory=list)
    thresholds: ReportThresholds = field(default_factory=ReportThresholds)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "sequence": str(self.sequence),
            "created": self.created,
            "overall": self.overall,
            "failure": asdict(self.failure) if self.failure else None,
            "steps": [_jsonable(asdict(v)) for v in self.verdicts],
            "plots": [
                {"name": p.name, "step": p.step, "title": p.title, "caption": p.caption, "bytes": len(p.png)}
                for p in self.plots
            ],
            "thresholds": asdict(self.thresholds),
            "problems": self.problems,
        }


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays → plain JSON values; NaN → None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 4)
    return value


def overall_status(verdicts: list[Verdict]) -> str:
    statuses = {v.status for v in verdicts}
    for status in ("failed", "warning"):
        if status in statuses:
            return status
    return "incomplete" if "not run" in statuses else "ok"


def _plots(data: ReportData, th: ReportThresholds, problems: list[str]) -> list[Plot]:
    """Every figure whose inputs exist; a figure that fails to draw becomes a problem line."""
    fingers = int(data.config("align", "align", "contact_fingers", 3))
    makers = [
        ("contact_sheet", lambda: contact_sheet(data)),
        ("masks_area", lambda: masks_plot(data, th.tiny_object_fraction)),
        ("hands_fit", lambda: hands_plot(data)),
        ("sfm_frames", lambda: sfm_plot(data, _model_stats(data))),
        ("object_rotation", lambda: rotation_plot(data)),
        ("align_contact", lambda: contact_plot(data, fingers, th.contact_warn_m)),
    ]
    plots = []
    for name, make in makers:
        try:
            plot = make()
        except Exception as e:  # a figure is not worth losing the report over
            problems.append(f"plot {name} failed: {type(e).__name__}: {e}")
            continue
        if plot is not None:
            plots.append(plot)
    return plots


def _model_stats(data: ReportData) -> dict | None:
    if data.sfm is None or data.num_frames is None:
        return None
    return sfm_model_stats(data.work / "sfm", data.num_frames)


def build_report(
    seq: str | Path,
    cfg: Any | None = None,
    failure: StepFailure | None = None,
    thresholds: ReportThresholds | None = None,
) -> Report:
    """Judge every step of ``seq`` from its outputs and draw the plots (nothing is written).

    Args:
        seq: the SEQUENCE dir.
        cfg: the ``PreprocessConfig`` of this run: a finished step made with another config is flagged.
        failure: the step that failed in this run, if any.
        thresholds: the verdict thresholds (default ``ReportThresholds()``).
    """
    th = thresholds or ReportThresholds()
    data = load_report_data(Path(seq))
    verdicts = step_verdicts(
        data, th, failure.step if failure else None, failure.message if failure else None
    )
    if cfg is not None:
        _flag_other_config(data, cfg, verdicts)
    problems = list(data.problems)
    plots = _plots(data, th, problems)
    return Report(
        sequence=Path(seq).resolve(),
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
        overall=overall_status(verdicts),
        verdicts=verdicts,
        plots=plots,
        failure=failure,
        problems=problems,
        thresholds=th,
    )


def _flag_other_config(data: ReportData, cfg: Any, verdicts: list[Verdict]) -> None:
    for v in verdicts:
        done = data.done.get(v.step)
        if done is not None and v.status != "failed" and done.get("config") != step_config(v.step, cfg):
            v.add_warning(
                f"{v.step}: this output was made with another config than this run's; pass --redo to recompute it"
            )


def write_report(seq: str | Path, cfg: Any | None = None, failure: StepFailure | None = None) -> Report:
    """Build the report and write ``SEQ/report.json`` and ``SEQ/report.html`` (each atomically).

    Args:
        seq: the SEQUENCE dir.
        cfg: the ``PreprocessConfig`` of this run, if any (see ``build_report``).
        failure: the step that failed in this run, if any.

    Returns:
        The report written.
    """
    seq = Path(seq)
    report = build_report(seq, cfg, failure)
    write_json(seq / REPORT_JSON, report.to_json())
    write_text(seq / REPORT_HTML, render_html(report))
    return report


def write_report_safely(
    seq: str | Path, cfg: Any | None = None, failure: StepFailure | None = None
) -> Path | None:
    """``write_report`` that never raises: a problem is one warning line (it must not hide the error that
    stopped preprocessing, nor fail a run that finished). Logs where the report is.

    Returns:
        The path of report.html, or None when it could not be written.
    """
    try:
        report = write_report(seq, cfg, failure)
    except Exception as e:
        log.warning("report: not written (%s: %s)", type(e).__name__, e)
        return None
    path = Path(seq) / REPORT_HTML
    log.info("report: %s (%s)", path, report.overall)
    return path


# ---------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1000px;
color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:16px 0 4px}.meta{color:#666;margin:0 0 14px;word-break:break-all}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:6px 8px;vertical-align:top;
text-align:left}th{background:#f4f4f4}.badge{display:inline-block;padding:1px 8px;border-radius:9px;
font-weight:600;font-size:12px;color:#fff;white-space:nowrap}.ok{background:#2a9d3a}.warning{background:#d98b00}
.failed{background:#c62828}.not-run,.incomplete{background:#888}.error{border:2px solid #c62828;
background:#fdecea;padding:8px 12px;margin:12px 0;white-space:pre-wrap}ul{margin:4px 0 4px 18px;padding:0}
.nums{font-size:12px;color:#333;width:auto}.nums td{padding:2px 6px}figure{margin:10px 0 18px}img{max-width:100%;
border:1px solid #eee}figcaption{font-size:12px;color:#555}.small{font-size:12px;color:#555}
"""


def _badge(status: str) -> str:
    return f'<span class="badge {status.replace(" ", "-")}">{html.escape(status)}</span>'


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return " · ".join(f"{html.escape(str(k))} {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return html.escape(", ".join(str(x) for x in _jsonable(value))) or "—"
    return html.escape(str(value))


def _items(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>" if lines else ""


def _figure_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="plot-{plot.name}"><h3>{html.escape(plot.title)}</h3>'
        f'<img alt="{html.escape(plot.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
    )


def render_html(report: Report) -> str:
    """The self-contained report page (inline CSS, PNGs as data URIs, no scripts or external links)."""
    name = html.escape(report.sequence.name)
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Preprocessing report: {name}</title>'
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Preprocessing report {_badge(report.overall)}</h1>",
        f'<p class="meta">{html.escape(str(report.sequence))} · {html.escape(report.created)} · '
        "written by hold-preprocess (report.json has the same numbers)</p>",
    ]
    if report.failure:
        parts.append(
            f'<div class="error"><b>Step {html.escape(report.failure.step)} failed:</b> '
            f"{html.escape(report.failure.message)}</div>"
        )
    rows = "".join(
        f'<tr><td><a href="#step-{v.step}">{v.step}</a></td><td>{_badge(v.status)}</td>'
        f"<td>{html.escape(v.summary)}</td><td>{_items(v.advice) or '—'}</td></tr>"
        for v in report.verdicts
    )
    parts.append(
        "<table><tr><th>step</th><th>verdict</th><th>what it found</th><th>what to do</th></tr>"
        + rows
        + "</table>"
    )
    recorded = [w for v in report.verdicts for w in v.warnings]
    parts.append("<h2>Warnings and fallbacks recorded by the steps</h2>")
    parts.append(_items(recorded) or "<p>None.</p>")
    if report.problems:
        parts.append("<h2>Problems while writing this report</h2>" + _items(report.problems))
    for plot in report.plots:
        if plot.step == "all":
            parts.append(_figure_html(plot))
    for v in report.verdicts:
        parts.append(f'<h2 id="step-{v.step}">{v.step} {_badge(v.status)}</h2>')
        parts.append(f"<p>{html.escape(v.summary)}</p>")
        if v.numbers:
            cells = "".join(
                f"<tr><td>{html.escape(k)}</td><td>{_value(x)}</td></tr>" for k, x in v.numbers.items()
            )
            parts.append(f'<table class="nums">{cells}</table>')
        parts.extend(_figure_html(p) for p in report.plots if p.step == v.step)
    parts.append(
        f'<p class="small">Steps: {", ".join(STEPS)}. Verdict thresholds: report.json "thresholds" '
        "(preprocess/report_checks.py). Formats: docs/formats.md.</p></body></html>"
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m preprocess.report SEQ [SEQ …]``: (re)write the report of finished SEQUENCE dirs without
    running any step."""
    import argparse

    from hold.utils.logging import setup_logging

    parser = argparse.ArgumentParser(prog="python -m preprocess.report", description=main.__doc__)
    parser.add_argument("seq", nargs="+", type=Path, help="SEQUENCE dir(s) written by hold-preprocess")
    args = parser.parse_args(argv)
    setup_logging()
    missing = [s for s in args.seq if not (s / "work").is_dir()]
    for s in missing:
        print(
            f"python -m preprocess.report: error: {s}: no work/ folder (not a hold-preprocess output)",
            file=sys.stderr,
        )
    written = [write_report_safely(s) for s in args.seq if s not in missing]
    return 0 if not missing and all(written) else 1


if __name__ == "__main__":
    raise SystemExit(main())
