#!/usr/bin/env bash
# GPU training check: a MINUTES-long (default 5) CUDA training run of a full-size 4.6-layout network from
# scratch with AMP (AMP=bf16 default, or fp16 / none), its privileged teacher, crops 256, batch 16,
# 4 loader workers. Reports samples/s (median over log windows), peak memory and the loss curve in
# one file, $OUT/gpu_train.json. Trains on the sample videos when they are in the cache, else on
# synthetic panning textures (the GPU machine may be offline). Skips cleanly (exit 0, "skipped" in
# the JSON) without CUDA.
#
# Usage: scripts/gpu_train_check.sh [--batch-size N] [--crop N] [--data SRC...]
# Environment: OUT (default out/train-gpu), AMP, MINUTES, PYTHON (.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-out/train-gpu}
mkdir -p "$OUT"
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo '{"check": "gpu-train", "skipped": "CUDA is not available"}' > "$OUT/gpu_train.json"
    echo "gpu_train_check: skipped (CUDA is not available)" >&2
    exit 0
fi
exec "$PY" -m vsrife.train.acceptance gpu --out "$OUT/run" --json "$OUT/gpu_train.json" \
    --amp "${AMP:-bf16}" --minutes "${MINUTES:-5}" "$@"
