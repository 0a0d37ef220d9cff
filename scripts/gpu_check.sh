#!/usr/bin/env bash
# GPU check for a fresh machine with an NVIDIA GPU (also runs, reporting skips, without one).
# Installs what is missing (reusing a preinstalled torch/CuPy through --system-site-packages; VapourSynth
# from PyPI or from wheels in $WHEELS when offline), runs the CUDA tests and the GPU benchmarks, and
# writes ONE results file: $OUT/gpu_check.json (or out/gpu_check.json). Budget: under 6 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-out}
mkdir -p "$OUT_DIR"
RESULT=$OUT_DIR/gpu_check.json
VENV=${GPU_VENV:-.gpuvenv}
find_python() {
    local c
    for c in "${PYTHON:-}" python3.12 "$(PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null)" python3; do
        [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo "$c"; return; }
    done
    echo python3
}
PY=$(find_python)
log() { printf '[gpu_check] %s\n' "$*" >&2; }
start=$(date +%s)

SITE=${GPU_SITE:-/tmp/vsrife-site}
if [ -n "${WHEELS:-}" ] && "$PY" -c "import torch" 2>/dev/null; then
    # Offline GPU machine with torch/CuPy preinstalled (no registry): add the carried wheels
    # (vapoursynth, bestsource, platformdirs) beside that Python instead of building a venv.
    log "offline: wheels from $WHEELS into $SITE for $("$PY" -c 'import sys; print(sys.executable)')"
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --target "$SITE" \
        "$WHEELS"/*.whl || log "wheel install failed"
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    export PATH=$SITE/bin:$PATH
    RUN_PY=$PY
else
    if [ ! -x "$RUN_PY" ]; then
        log "venv $VENV (system site packages: preinstalled torch / CuPy are reused)"
        "$PY" -m venv --system-site-packages "$VENV"
    fi
    pipi() { "$RUN_PY" -m pip install -q --disable-pip-version-check "$@"; }
    if [ -n "${WHEELS:-}" ]; then FIND=(--find-links "$WHEELS"); else FIND=(); fi
    "$RUN_PY" -c "import torch" 2>/dev/null || pipi "${FIND[@]}" "torch<=2.14.1" || log "torch install failed"
    "$RUN_PY" -c "import vapoursynth" 2>/dev/null || pipi "${FIND[@]}" vapoursynth vapoursynth-bestsource \
        || log "no VapourSynth: filter parts skipped"
    for mod in numpy platformdirs pytest tqdm; do
        "$RUN_PY" -c "import $mod" 2>/dev/null || pipi "${FIND[@]}" "$mod" || log "$mod install failed"
    done
    export PATH=$PWD/$VENV/bin:$PATH
    RUN_PY=$VENV/bin/python
fi
# vspipe finds Python through `vapoursynth config` (per libvsscript path, so this touches no other install).
"$RUN_PY" -m vapoursynth config >/dev/null 2>&1 || log "vapoursynth config failed: vspipe numbers will be missing"
# The package itself runs from the source tree (no build step needed for the torch and filter layers).
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export VSRIFE_BS_CACHE=${VSRIFE_BS_CACHE:-/tmp/vsrife-bsindex}

log "CUDA tests"
timeout "${TEST_TIMEOUT:-200}" "$RUN_PY" -m pytest -q -m cuda -p no:cacheprovider --junitxml "$OUT_DIR/gpu_tests.xml" \
    tests/test_cuda.py tests/test_convert.py > "$OUT_DIR/gpu_tests.log" 2>&1
tests_rc=$?
tail -3 "$OUT_DIR/gpu_tests.log" >&2

log "GPU benchmarks"
if "$RUN_PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    BENCH=(--frames "${BENCH_FRAMES:-300}")
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
