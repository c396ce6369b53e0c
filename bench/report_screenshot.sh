#!/usr/bin/env bash
# Render a SEQUENCE dir's preprocessing report (SEQ/report.html) in headless Chromium and save a PNG,
# to check that the page and its embedded plots display in a real browser, offline.
#
#   bench/report_screenshot.sh SEQ OUT.png [--refresh] [--size WIDTH,HEIGHT]
#
#   SEQ        a SEQUENCE dir written by hold-preprocess
#   OUT.png    the screenshot to write (the page's top WIDTH×HEIGHT pixels; default 1200,3000)
#   --refresh  (re)write the report first (python -m preprocess.report SEQ: reads the step outputs,
#              runs no step); also done when SEQ/report.html is missing
#
# Needs a Chromium: $CHROMIUM, else chromium / chromium-browser / google-chrome on PATH (Debian:
# apt-get install chromium). Runs without network (the page has no external references) and without
# a sandbox (--no-sandbox, so that it works as root in a container). Uses $PYTHON, else the project's
# .venv, else python3.
set -euo pipefail
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 2 ]] || usage
seq="$1" out="$2"
shift 2
refresh=0 size="1200,3000"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --refresh) refresh=1 ;;
    --size) size="${2:?--size needs WIDTH,HEIGHT}"; shift ;;
    *) usage ;;
  esac
  shift
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
browser="${CHROMIUM:-}"
if [[ -z "$browser" ]]; then
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null; then browser="$(command -v "$name")"; break; fi
  done
fi
if [[ -z "$browser" ]]; then
  echo "report_screenshot: no Chromium found: install one (Debian: apt-get install chromium) or set CHROMIUM" >&2
  exit 1
fi
[[ -d "$seq/work" ]] || { echo "report_screenshot: $seq: not a SEQUENCE dir written by hold-preprocess" >&2; exit 1; }
if [[ $refresh == 1 || ! -f "$seq/report.html" ]]; then
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$python" -m preprocess.report "$seq"
fi
page="$(cd "$seq" && pwd)/report.html"
mkdir -p "$(dirname "$out")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
rm -f "$out_abs"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --window-size="$size" --screenshot="$out_abs" "file://$page" >/dev/null 2>&1 || true
if [[ ! -s "$out_abs" ]]; then
  echo "report_screenshot: $browser wrote no screenshot of $page" >&2
  exit 1
fi
echo "$out_abs"
