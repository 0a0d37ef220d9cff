#!/usr/bin/env bash
# Acceptance (a), CPU: fine-tune the official v3.6 (real weights + its privileged teacher block_tea)
# on real footage (sample videos bikes + bigbuckbunny@0.5, t = 1/2 triplets, crops 160, batch 4) for
# STEPS steps; held-out PSNR (hash-split segments, full frames) may drop by at most 0.1 dB.
# Writes $OUT/finetune.json (before/after PSNR and SSIM, delta, loss curve, config); run folder $OUT/finetune.
#
# Usage: scripts/train_finetune_check.sh [extra options of `python -m vsrife.train.acceptance finetune`]
# Environment: OUT (default out/train-accept), STEPS (200), THREADS (2), PYTHON (.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-out/train-accept}
mkdir -p "$OUT"
exec nice -n 10 "$PY" -m vsrife.train.acceptance finetune --out "$OUT/finetune" --json "$OUT/finetune.json" \
    --steps "${STEPS:-200}" --threads "${THREADS:-2}" "$@"
