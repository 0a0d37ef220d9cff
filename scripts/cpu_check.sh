#!/usr/bin/env bash
# CPU benchmarks of the speed issue on another machine (e.g. one with AVX512-BF16 / AMX), CUDA hidden:
# benchmarks/bench_engine.py (fp32 / channels_last / bf16 at 1280x720, v3.6) and benchmarks/cpu_path.py
# (the full vspipe path against an eager fp32 forward, in one run). Same install logic as gpu_check.sh
# (offline with carried wheels in $WHEELS). Results: $OUT/cpu_bench_engine.json, $OUT/cpu_path.json.
# COMPILE=1 adds torch_compile=True (the compile takes over a minute: raise ENGINE_TIMEOUT / PATH_TIMEOUT).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-out}
mkdir -p "$OUT_DIR"
log() { printf '[cpu_check] %s\n' "$*" >&2; }
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh
export CUDA_VISIBLE_DEVICES=""
grep -o -m1 -w -E 'amx_bf16' /proc/cpuinfo >&2 || log "no AMX"
grep -o -m1 -w -E 'avx512_bf16' /proc/cpuinfo >&2 || log "no AVX512-BF16"
log "engine: fp32 / channels_last / bf16"
# COMPILE=1: also torch_compile=True (bf16+compile in the engine table, steady fps of both paths)
if [ "${COMPILE:-0}" = 1 ]; then COMPILE_ARGS=(--compile); CONFIGS=(--configs fp32 bf16 bf16+compile)
else COMPILE_ARGS=(); CONFIGS=(); fi
timeout "${ENGINE_TIMEOUT:-120}" "$RUN_PY" benchmarks/bench_engine.py --iters "${ITERS:-4}" --bf16-iters "${ITERS:-4}" \
    "${CONFIGS[@]}" --out "$OUT_DIR/cpu_bench_engine.json" 2>&1 | tail -12 >&2
log "full path through vspipe vs eager fp32"
timeout "${PATH_TIMEOUT:-150}" "$RUN_PY" benchmarks/cpu_path.py --frames "${FRAMES:-48}" --iters "${ITERS:-4}" \
    "${COMPILE_ARGS[@]}" --out "$OUT_DIR/cpu_path.json" 2>&1 | tail -25 >&2
