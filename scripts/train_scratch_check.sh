#!/usr/bin/env bash
# Acceptance (b), CPU: a small 4.x-style network (timestep input; widths 64/48/32, scales 4/2/1, started
# from a bilateral cost volume of radius 6 at 1/8 resolution; --corr-radius 0 for the plain cascade) trained
# from scratch on the sample videos (bikes, bigbuckbunny@0.5, carphone; windows of 3 and 4 frames, so
# t = 1/3, 1/2, 2/3; crops 128, batch 8) within CPU_MINUTES of CPU time per run (1 thread each),
# with DIS leakage distillation and, as the ablation, without a teacher -- the same steps and data.
# Held-out frames (hash-split segments, full frames) are scored against the neighbour average.
#
#  1. calibrate: CPU seconds per step with the DIS teacher -> STEPS (unless STEPS is set)
#  2. both runs in parallel (one thread each), 3. merge -> $OUT/scratch.json (per-t PSNR, baselines,
#     gains, ablation = distillation gain per t, loss curves, CPU minutes used).
#
# Usage: scripts/train_scratch_check.sh [extra options of `python -m vsrife.train.acceptance scratch`]
# Environment: OUT (default out/train-accept), CPU_MINUTES (20), STEPS, TEACHERS ("dis none"), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-out/train-accept}
CPU_MINUTES=${CPU_MINUTES:-20}
TEACHERS=${TEACHERS:-dis none}
mkdir -p "$OUT"
run() { nice -n 10 "$PY" -m vsrife.train.acceptance "$@"; }
if [ -z "${STEPS:-}" ]; then
    run calibrate --out "$OUT/scratch-calibration" --json "$OUT/scratch-calibration.json" \
        --cpu-minutes "$CPU_MINUTES" --threads 1 "$@"
    STEPS=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["steps"])' "$OUT/scratch-calibration.json")
fi
echo "scratch check: $STEPS steps per run, teachers: $TEACHERS" >&2
pids=() inputs=()
for teacher in $TEACHERS; do
    run scratch --teachers "$teacher" --steps "$STEPS" --cpu-minutes "$CPU_MINUTES" --threads 1 \
        --out "$OUT/scratch" --json "$OUT/scratch-$teacher.json" "$@" > "$OUT/scratch-$teacher.log" 2>&1 &
    pids+=("$!") inputs+=("$OUT/scratch-$teacher.json")
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || { echo "a scratch run failed; see $OUT/scratch-*.log" >&2; exit 1; }
run merge --json "$OUT/scratch.json" --inputs "${inputs[@]}"
