#!/usr/bin/env bash
# GPU check (bench/gpu_check.py): CUDA tests, training steps/s, samples/s, peak GPU memory, step profile.
#   bench/gpu_check.sh [--steps 200] [--preset fast] [--sequence SEQ] [--out FILE.json] [--skip-tests]
# Uses $PYTHON, else the project's .venv, else python3. W&B stays off unless WANDB_MODE says otherwise.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export WANDB_MODE="${WANDB_MODE:-disabled}" PYTHONUNBUFFERED=1
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"
exec "$python" bench/gpu_check.py "$@"
