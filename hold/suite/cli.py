"""``hold-suite``: run the accuracy suite, list its clips, rebuild its summary.

hold-suite run OUT [--suite v1] [--subset quick | --clips a,b] [--preset demo] [--background]
hold-suite list [--suite v1]
hold-suite summary OUT
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path

from hold.suite.runner import SUITE_FILE, RunOptions, SuiteRunError, clip_dir, run_suite
from hold.suite.spec import SuiteSpecError, load_suite

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hold-suite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the suite's clips through the whole pipeline")
    run.add_argument("out", type=Path, help="output dir (one folder per clip, summary.json, summary.md)")
    run.add_argument("--suite", default="v1", help="shipped suite name (configs/suites/) or a suite .yaml")
    pick = run.add_mutually_exclusive_group()
    pick.add_argument("--subset", default=None, help="a named subset of the suite (e.g. quick)")
    pick.add_argument("--clips", default=None, help="comma-separated clip names")
    run.add_argument("--preset", default="demo", help="training preset: demo, fast, paper or a YAML file")
    for step in ("preprocess", "train", "export"):
        run.add_argument(
            f"--{step}", action="append", default=[], metavar="KEY=VALUE", help=f"extra hold-{step} setting"
        )
    run.add_argument("--step-timeout", type=float, default=3600.0, help="seconds before a step is stopped")
    run.add_argument(
        "--retry-failed", action="store_true", help="run failed clips again from the failed step"
    )
    run.add_argument(
        "--background", action="store_true", help="detach and log to OUT/suite.log (poll summary.md)"
    )
    lst = sub.add_parser("list", help="the suite's clips and subsets")
    lst.add_argument("--suite", default="v1")
    summary = sub.add_parser("summary", help="rebuild OUT/summary.json and summary.md from the clip results")
    summary.add_argument("out", type=Path)
    return parser


def _background(argv: list[str], out: Path) -> int:
    """Start the same command detached from this terminal, its console going to OUT/suite.log."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "suite.log"
    args = [a for a in argv if a != "--background"]
    with open(log_path, "a") as log:
        log.write(f"\n=== {_dt.datetime.now().isoformat(timespec='seconds')} hold-suite {' '.join(args)}\n")
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "hold.suite.cli", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    print(f"hold-suite: running in the background (pid {proc.pid}); progress: {log_path}; "
          f"table: {out / 'summary.md'} (rewritten after each clip)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            suite = load_suite(args.suite)
            print(f"suite {suite.name} (version {suite.version}), {suite.path}: {suite.about}")
            for clip in suite.clips:
                tags = clip.tags()
                print(f"  {clip.name:<28} seed {clip.seed:<3} {', '.join(str(v) for v in tags.values())}")
            for name, members in suite.subsets.items():
                print(f"  subset {name}: {', '.join(members)}")
            return 0
        if args.command == "summary":
            from hold.suite.summary import write_summary

            meta = json.loads((args.out / SUITE_FILE).read_text())
            suite = load_suite(meta["suite_file"])
            dirs = sorted(p for p in (args.out / "clips").iterdir() if p.is_dir())
            order = [clip_dir(args.out, c.name) for c in suite.clips if clip_dir(args.out, c.name) in dirs]
            summary = write_summary(args.out, suite, meta["preset"], order)
            print(
                f"hold-suite: {summary['clips_ok']}/{summary['clips_run']} clips ok → {args.out / 'summary.md'}"
            )
            return 0
        suite = load_suite(args.suite)
        clips = suite.select(args.subset, args.clips.split(",") if args.clips else None)
        if args.background:
            return _background(argv, args.out)
        opts = RunOptions(
            preset=args.preset,
            preprocess=args.preprocess,
            train=args.train,
            export=args.export,
            step_timeout_s=args.step_timeout,
            retry_failed=args.retry_failed,
        )
        say = lambda msg: print(f"[suite {_dt.datetime.now():%H:%M:%S}] {msg}", flush=True)  # noqa: E731
        results = run_suite(suite, clips, args.out, opts, say)
    except (SuiteSpecError, SuiteRunError, OSError, KeyError, ValueError) as e:
        print(f"hold-suite: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hold-suite: interrupted; finished steps are kept and a re-run resumes", file=sys.stderr)
        return 130
    failed = [r["name"] for r in results if r["status"] != "ok"]
    print(
        f"hold-suite: {len(results) - len(failed)}/{len(results)} clips ok"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
