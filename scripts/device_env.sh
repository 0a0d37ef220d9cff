# Sourced by scripts/gpu_check.sh and scripts/cpu_check.sh: find or make a Python 3.12 with torch,
# VapourSynth (+ BestSource) and this source tree, also on an offline machine with torch preinstalled
# (carried wheels in $WHEELS). Sets RUN_PY; expects log() to be defined.
VENV=${GPU_VENV:-.gpuvenv}
find_python() {
    local c
    for c in "${PYTHON:-}" python3.12 "$(PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null)" python3; do
        [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo "$c"; return; }
    done
    echo python3
}
PY=$(find_python)

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
    if [ ! -x "$VENV/bin/python" ]; then
        log "venv $VENV (system site packages: preinstalled torch / CuPy are reused)"
        "$PY" -m venv --system-site-packages "$VENV"
    fi
    pipi() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
    if [ -n "${WHEELS:-}" ]; then FIND=(--find-links "$WHEELS"); else FIND=(); fi
    "$VENV/bin/python" -c "import torch" 2>/dev/null || pipi "${FIND[@]}" "torch<=2.14.1" || log "torch install failed"
    "$VENV/bin/python" -c "import vapoursynth" 2>/dev/null || pipi "${FIND[@]}" vapoursynth vapoursynth-bestsource \
        || log "no VapourSynth: filter parts skipped"
    for mod in numpy platformdirs pytest tqdm; do
        "$VENV/bin/python" -c "import $mod" 2>/dev/null || pipi "${FIND[@]}" "$mod" || log "$mod install failed"
    done
    export PATH=$PWD/$VENV/bin:$PATH
    RUN_PY=$PWD/$VENV/bin/python
fi
# vspipe finds Python through `vapoursynth config` (per libvsscript path, so this touches no other install).
"$RUN_PY" -m vapoursynth config >/dev/null 2>&1 || log "vapoursynth config failed: vspipe numbers will be missing"
# The package itself runs from the source tree (no build step needed for the torch and filter layers).
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export VSRIFE_BS_CACHE=${VSRIFE_BS_CACHE:-/tmp/vsrife-bsindex}

