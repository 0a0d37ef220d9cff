#!/usr/bin/env bash
# Build an mpv with the VapourSynth video filter (--vf=vapoursynth=script.vpy)
# against the VapourSynth R7x/R8x PyPI wheel installed in the project venv.
#
# Debian bookworm's mpv (0.35.1) is built without the filter, and its source
# still speaks VapourSynth API3, which current wheels no longer ship. So:
#   * take mpv 0.35.1 from the bookworm source package (builds with bookworm's
#     FFmpeg 5.1 / libass),
#   * replace video/filter/vf_vapoursynth.c by the API4 version from the trixie
#     source package (mpv 0.40), adapted at build time to 0.35.1's internals by
#     scripts/mpv_vs/adapt_vf_vapoursynth.py (nothing of mpv is stored here),
#   * link it against the wheel's libvsscript.so through a generated
#     vapoursynth-script.pc (with an rpath to the wheel directory).
#
# Result: <prefix>/bin/mpv (default prefix: <repo>/.cache/mpv-vs). The path of
# the binary is printed on the last line of stdout. Idempotent: if the binary
# exists and has the vapoursynth filter, nothing is rebuilt (use --force).
#
# Usage: scripts/build_mpv_vs.sh [--force] [--test]
#   --force   rebuild even if a working binary exists
#   --test    afterwards, run scripts/mpv_vs/smoke_test.sh (playback with
#             --vo=null and encode with --o, checks the doubled frame count)
# Environment:
#   MPV_VS_PREFIX      install prefix        (default <repo>/.cache/mpv-vs)
#   MPV_VS_VENV        venv with vapoursynth (default <repo>/.venv)
#   MPV_VS_MESON_ARGS  extra meson options, e.g. "-Dx11=enabled"
#   MPV_VS_NO_APT=1    never call apt-get (deps and deb-src must be present)
# Needs root for apt-get (deb-src entries and build dependencies); run on
# Debian bookworm. Verbose output goes to <prefix>/build.log.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${MPV_VS_PREFIX:-$REPO/.cache/mpv-vs}"
VENV="${MPV_VS_VENV:-$REPO/.venv}"
WORK="$PREFIX/work"
LOG="$PREFIX/build.log"
BIN="$PREFIX/bin/mpv"
ADAPT="$REPO/scripts/mpv_vs/adapt_vf_vapoursynth.py"
SRC_LIST=/etc/apt/sources.list.d/mpv-vs-deb-src.sources

FORCE=0
RUN_TEST=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --test) RUN_TEST=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

mkdir -p "$PREFIX"
T0=$(date +%s)

say() { echo "[build_mpv_vs] $*"; echo "[build_mpv_vs $(date +%T)] $*" >>"$LOG"; }
die() {
    echo "[build_mpv_vs] ERROR: $*" >&2
    echo "[build_mpv_vs $(date +%T)] ERROR: $*" >>"$LOG"
    echo "[build_mpv_vs] see $LOG" >&2
    exit 1
}
# run a command with all its output in the log; on failure show the log tail
run() {
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        echo "[build_mpv_vs] command failed: $*" >&2
        tail -n 30 "$LOG" >&2
        die "command failed (full log: $LOG)"
    fi
}

have_working_mpv() {
    [ -x "$BIN" ] || return 1
    "$BIN" --no-config --version >/dev/null 2>&1 || return 1
    # (no "| grep -q" on mpv directly: with pipefail, SIGPIPE would fail it)
    local filters
    filters="$("$BIN" --no-config --vf=help 2>/dev/null)" || return 1
    grep -qw vapoursynth <<<"$filters" || return 1
}

maybe_test() {
    if [ "$RUN_TEST" = 1 ]; then
        say "running smoke test"
        MPV_BIN="$BIN" MPV_VS_VENV="$VENV" bash "$REPO/scripts/mpv_vs/smoke_test.sh" \
            || die "smoke test failed"
    fi
}

# VSScript (inside mpv) must find the venv's libpython. The wheel's helper
# records it in ~/.config/vapoursynth/vapoursynth.toml (keyed by the path of
# this libvsscript.so). Without it, VSScript falls back to the first python3
# on PATH, so it also works with "$VENV/bin" first on PATH.
configure_vsscript() {
    local env_status
    env_status="$("$VENV/bin/vapoursynth" check-env 2>&1 || true)"
    if grep -q "NOT CONFIGURED" <<<"$env_status"; then
        say "registering the venv's Python for VSScript (vapoursynth config)"
        run "$VENV/bin/vapoursynth" config
    fi
}

if [ "$FORCE" = 0 ] && have_working_mpv; then
    configure_vsscript
    say "already built: $("$BIN" --no-config --version | head -n1)"
    maybe_test
    echo "$BIN"
    exit 0
fi

# --------------------------------------------------------------------------
: >"$LOG"
say "log: $LOG"
[ -x "$VENV/bin/vapoursynth" ] || die "no vapoursynth in $VENV (pip install vapoursynth)"
VS_DIR="$(dirname "$("$VENV/bin/vapoursynth" get-vsscript)")"
VS_PCDIR="$("$VENV/bin/vapoursynth" get-pkgconfig-dir)"
[ -f "$VS_DIR/libvsscript.so" ] || die "libvsscript.so not found in $VS_DIR"
[ -f "$VS_PCDIR/vapoursynth.pc" ] || die "vapoursynth.pc not found in $VS_PCDIR"
[ -f "$("$VENV/bin/vapoursynth" get-include)/VSScript4.h" ] || die "VSScript4.h missing in wheel"
say "vapoursynth wheel: $VS_DIR"

# --------------------------------------------------------------------------
# apt: deb-src entries + build dependencies
BUILD_DEPS=(gcc libc6-dev dpkg-dev python3 meson ninja-build pkg-config
            libavcodec-dev libavfilter-dev libavformat-dev libavutil-dev
            libswresample-dev libswscale-dev libass-dev)
missing=()
for p in "${BUILD_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

have_src() {  # $1 = release; true if apt knows the mpv source for it
    apt-get source --download-only --print-uris "mpv/$1" >/dev/null 2>&1
}

if [ "${MPV_VS_NO_APT:-0}" != 1 ]; then
    [ "$(id -u)" = 0 ] || die "needs root for apt-get (or set MPV_VS_NO_APT=1 with everything present)"
    export DEBIAN_FRONTEND=noninteractive
    if ! have_src bookworm || ! have_src trixie; then
        if [ ! -f "$SRC_LIST" ]; then
            say "adding deb-src entries for bookworm and trixie: $SRC_LIST"
            cat >"$SRC_LIST" <<'EOF'
# added by vsrife scripts/build_mpv_vs.sh (source packages only, no binaries)
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        fi
        say "apt-get update"
        run apt-get update
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing build deps: ${missing[*]}"
        if ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; then
            run apt-get update
            run apt-get install -y --no-install-recommends "${missing[@]}"
        fi
    fi
elif [ ${#missing[@]} -gt 0 ]; then
    die "missing build deps (MPV_VS_NO_APT=1): ${missing[*]}"
fi

# --------------------------------------------------------------------------
# sources
rm -rf "$WORK"
mkdir -p "$WORK/dl-bookworm" "$WORK/dl-trixie"

say "fetching mpv source (bookworm)"
(cd "$WORK/dl-bookworm" && run apt-get source --download-only mpv/bookworm)
DSC=$(ls "$WORK"/dl-bookworm/mpv_*.dsc | head -n1)
run dpkg-source --no-check -x "$DSC" "$WORK/mpv"     # applies Debian's patches
say "bookworm mpv source: $(basename "$DSC") (VERSION $(cat "$WORK/mpv/VERSION" 2>/dev/null || echo ?))"
[ -f "$WORK/mpv/video/filter/vf_vapoursynth.c" ] || die "no vf_vapoursynth.c in bookworm source"

say "fetching mpv source (trixie) for the API4 vf_vapoursynth.c"
(cd "$WORK/dl-trixie" && run apt-get source --download-only mpv/trixie)
ORIG=$(ls "$WORK"/dl-trixie/mpv_*.orig.tar.* | head -n1)
run tar -xf "$ORIG" -C "$WORK/dl-trixie" --wildcards '*/video/filter/vf_vapoursynth.c'
NEWVF=$(ls "$WORK"/dl-trixie/*/video/filter/vf_vapoursynth.c | head -n1)
# Debian's trixie patches do not touch this file (checked); warn if that changes.
DEBTAR=$(ls "$WORK"/dl-trixie/mpv_*.debian.tar.* | head -n1)
if tar -xOf "$DEBTAR" --wildcards 'debian/patches/*' 2>/dev/null | grep -q 'vf_vapoursynth'; then
    say "WARNING: a trixie Debian patch touches vf_vapoursynth.c; using the upstream file"
fi
say "trixie source: $(basename "$ORIG")"

say "adapting API4 vf_vapoursynth.c to mpv 0.35 internals"
cp "$WORK/mpv/video/filter/vf_vapoursynth.c" "$WORK/vf_vapoursynth.api3.c"
run python3 "$ADAPT" "$NEWVF" "$WORK/mpv/video/filter/vf_vapoursynth.c"

# --------------------------------------------------------------------------
# pkg-config: the wheel ships vapoursynth.pc (headers only); vapoursynth-script
# (libvsscript) is generated here. The rpath lets mpv find libvsscript.so.
PCDIR="$PREFIX/pkgconfig"
mkdir -p "$PCDIR"
VS_VERSION=$(sed -n 's/^Version: *//p' "$VS_PCDIR/vapoursynth.pc")
cat >"$PCDIR/vapoursynth-script.pc" <<EOF
# generated by vsrife scripts/build_mpv_vs.sh for the vapoursynth wheel
libdir=$VS_DIR

Name: vapoursynth-script
Description: VSScript from the vapoursynth PyPI wheel
Version: $VS_VERSION
Requires: vapoursynth
Libs: -L\${libdir} -lvsscript -Wl,-rpath,\${libdir}
Cflags:
EOF
export PKG_CONFIG_PATH="$PCDIR:$VS_PCDIR${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
echo "PKG_CONFIG_PATH=$PKG_CONFIG_PATH" >>"$LOG"
run pkg-config --print-errors --exists 'vapoursynth >= 24' 'vapoursynth-script >= 23'

# --------------------------------------------------------------------------
# configure, build, install
say "meson setup"
# shellcheck disable=SC2086
run meson setup "$WORK/build" "$WORK/mpv" \
    --prefix="$PREFIX" --buildtype=release \
    --auto-features=disabled \
    -Dgl=disabled -Dvapoursynth=enabled -Dlibmpv=false -Dcplayer=true \
    -Dlua=disabled -Dbuild-date=false \
    ${MPV_VS_MESON_ARGS:-}
say "ninja ($(nproc) jobs)"
run ninja -C "$WORK/build" -j"$(nproc)"
run meson install -C "$WORK/build"

[ -x "$BIN" ] || die "$BIN was not installed"
if ! ldd "$BIN" | grep -q "libvsscript.so => $VS_DIR"; then
    ldd "$BIN" >>"$LOG" 2>&1 || true
    die "$BIN does not resolve libvsscript.so from $VS_DIR (rpath lost?)"
fi
have_working_mpv || die "$BIN has no vapoursynth filter (see $LOG)"
configure_vsscript

say "built $("$BIN" --no-config --version | head -n1) in $(( $(date +%s) - T0 )) s"
maybe_test
echo "$BIN"
