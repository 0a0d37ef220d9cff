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

if [ ! -x "$VENV/bin/python" ]; then
    log "venv $VENV (system site packages: preinstalled torch / CuPy are reused)"
    "$PY" -m venv --system-site-packages "$VENV"
fi
pipi() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
if [ -n "${WHEELS:-}" ]; then FIND=(--find-links "$WHEELS"); else FIND=(); fi
"$VENV/bin/python" -c "import torch" 2>/dev/null || pipi "${FIND[@]}" "torch<=2.14.1" || log "torch install failed"
"$VENV/bin/python" -c "import vapoursynth" 2>/dev/null || pipi "${FIND[@]}" vapoursynth || log "no VapourSynth: filter parts skipped"
for mod in numpy platformdirs pytest tqdm; do
    "$VENV/bin/python" -c "import $mod" 2>/dev/null || pipi "${FIND[@]}" "$mod" || log "$mod install failed"
done
# The package itself runs from the source tree (no build step needed for the torch and filter layers).
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

log "CUDA tests"
"$VENV/bin/python" -m pytest -q -m cuda -p no:cacheprovider --junitxml "$OUT_DIR/gpu_tests.xml" \
    tests/test_cuda.py tests/test_convert.py > "$OUT_DIR/gpu_tests.log" 2>&1
tests_rc=$?
tail -3 "$OUT_DIR/gpu_tests.log" >&2

log "GPU benchmarks"
if "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    BENCH=(--frames 200)
else
    log "no CUDA device: dry run of the benchmark on the CPU at a tiny size"
    BENCH=(--device cpu --width 128 --height 96 --frames 4)
fi
timeout 240 "$VENV/bin/python" benchmarks/gpu_bench.py "${BENCH[@]}" --out "$OUT_DIR/gpu_bench.json" \
    > "$OUT_DIR/gpu_bench.log" 2>&1
bench_rc=$?

"$VENV/bin/python" - "$RESULT" "$OUT_DIR" "$tests_rc" "$bench_rc" "$start" <<'PY'
import json, sys, time, pathlib, xml.etree.ElementTree as ET
result, out, tests_rc, bench_rc, start = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
doc = {"tests_exit_code": tests_rc, "bench_exit_code": bench_rc, "wall_s": round(time.time() - start, 1)}
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
bench = out / "gpu_bench.json"
doc["bench"] = json.loads(bench.read_text()) if bench.exists() else (out / "gpu_bench.log").read_text()[-2000:]
pathlib.Path(result).write_text(json.dumps(doc, indent=2))
print(result)
PY
