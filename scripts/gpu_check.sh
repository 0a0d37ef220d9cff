#!/usr/bin/env bash
# GPU check for a fresh machine with an NVIDIA GPU (also runs, reporting skips, without one).
# Installs what is missing (reusing a preinstalled torch/CuPy through --system-site-packages; VapourSynth
# from PyPI or from wheels in $WHEELS when offline), runs the CUDA tests and the GPU benchmarks, and
# writes ONE results file: $OUT/gpu_check.json (or out/gpu_check.json). Budget: under 6 minutes.
# Knobs: TEST_K (pytest -k expression), BENCH_FRAMES, BENCH_ARGS (extra gpu_bench.py arguments, e.g.
# "--compile --variants default --no-profile"), TRAIN_MINUTES (0: no training run), *_TIMEOUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-out}
mkdir -p "$OUT_DIR"
RESULT=$OUT_DIR/gpu_check.json
log() { printf '[gpu_check] %s\n' "$*" >&2; }
start=$(date +%s)
[[ ${TRAIN_MINUTES:-1} =~ ^[0-9]+$ ]] || { log "TRAIN_MINUTES must be a whole number of minutes, got '$TRAIN_MINUTES'"; exit 2; }
# shellcheck source=scripts/device_env.sh
source scripts/device_env.sh  # sets RUN_PY: a Python with torch, VapourSynth, this source tree

log "CUDA tests"
timeout "${TEST_TIMEOUT:-200}" "$RUN_PY" -m pytest -q -m cuda -p no:cacheprovider --junitxml "$OUT_DIR/gpu_tests.xml" \
    ${TEST_K:+-k "$TEST_K"} tests/test_cuda.py tests/test_convert.py > "$OUT_DIR/gpu_tests.log" 2>&1
tests_rc=$?
tail -3 "$OUT_DIR/gpu_tests.log" >&2

log "GPU benchmarks"
if "$RUN_PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    # shellcheck disable=SC2206  # BENCH_ARGS is a list of words
    BENCH=(--frames "${BENCH_FRAMES:-300}" ${BENCH_ARGS:-})
else
    log "no CUDA device: dry run of the benchmark on the CPU at a tiny size"
    BENCH=(--device cpu --width 128 --height 96 --frames 4)
fi
timeout "${BENCH_TIMEOUT:-240}" "$RUN_PY" benchmarks/gpu_bench.py "${BENCH[@]}" --out "$OUT_DIR/gpu_bench.json" \
    > "$OUT_DIR/gpu_bench.log" 2>&1
bench_rc=$?
tail -4 "$OUT_DIR/gpu_bench.log" >&2

train_rc=0
if [ "${TRAIN_MINUTES:-1}" != 0 ]; then
    log "GPU training run (${TRAIN_MINUTES:-1} min; scripts/gpu_train_check.sh runs 5 by default)"
    OUT=$OUT_DIR/train PYTHON=$RUN_PY MINUTES=${TRAIN_MINUTES:-1} timeout $(( ${TRAIN_MINUTES:-1} * 60 + 120 )) \
        scripts/gpu_train_check.sh > "$OUT_DIR/gpu_train.log" 2>&1
    train_rc=$?
    tail -3 "$OUT_DIR/gpu_train.log" >&2
fi

"$RUN_PY" - "$RESULT" "$OUT_DIR" "$tests_rc" "$bench_rc" "$train_rc" "$start" <<'PY'
import json, sys, time, pathlib, xml.etree.ElementTree as ET
result, out = sys.argv[1], pathlib.Path(sys.argv[2])
tests_rc, bench_rc, train_rc, start = (int(v) for v in sys.argv[3:7])
doc = {"tests_exit_code": tests_rc, "bench_exit_code": bench_rc, "train_exit_code": train_rc,
       "wall_s": round(time.time() - start, 1)}
try:
    import torch
    doc["cuda"] = torch.cuda.is_available()
    doc["gpu"] = torch.cuda.get_device_name() if doc["cuda"] else None
    doc["torch"] = torch.__version__
except Exception as exc:  # noqa: BLE001
    doc["torch_error"] = repr(exc)
junit = out / "gpu_tests.xml"
if junit.exists():
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    doc["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    doc["failed_tests"] = [
        f"{case.get('name')}: {(case.find('failure') if case.find('failure') is not None else case.find('error')).get('message', '')[:400]}"
        for case in suite.iter("testcase") if case.find("failure") is not None or case.find("error") is not None
    ]
bench = out / "gpu_bench.json"
doc["bench"] = json.loads(bench.read_text()) if bench.exists() else (out / "gpu_bench.log").read_text()[-2000:]
train = out / "train" / "gpu_train.json"
doc["train"] = json.loads(train.read_text()) if train.exists() else None
pathlib.Path(result).write_text(json.dumps(doc, indent=2))
print(result)
PY
# the results file is written either way; the exit status says whether every part passed
for rc in "$tests_rc" "$bench_rc" "$train_rc"; do [ "$rc" -eq 0 ] || exit "$rc"; done
