#!/usr/bin/env bash
# Smoke test for the mpv built by scripts/build_mpv_vs.sh: runs
# scripts/mpv_vs/double_fps.vpy (frame doubling through mpv's injected
# globals) on a short clip, once as playback (--vo=null) and once in encode
# mode (--o=out.mkv), and checks that twice the input frame count comes out.
#
# Environment: MPV_BIN (default <repo>/.cache/mpv-vs/bin/mpv),
#              MPV_VS_VENV (default <repo>/.venv),
#              CLIP (input video; default: a 48-frame 24 fps testsrc clip made
#                    with ffmpeg), SMOKE_DIR (default <repo>/.cache/mpv-vs/smoke)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MPV_BIN="${MPV_BIN:-$REPO/.cache/mpv-vs/bin/mpv}"
VENV="${MPV_VS_VENV:-$REPO/.venv}"
VPY="$REPO/scripts/mpv_vs/double_fps.vpy"
DIR="${SMOKE_DIR:-$REPO/.cache/mpv-vs/smoke}"
mkdir -p "$DIR"
LOG="$DIR/smoke.log"
: >"$LOG"

say() { echo "[smoke] $*"; echo "[smoke] $*" >>"$LOG"; }
fail() { echo "[smoke] FAIL: $* (log: $LOG)" >&2; exit 1; }

[ -x "$MPV_BIN" ] || fail "no mpv at $MPV_BIN"
# VSScript finds the venv's Python via `vapoursynth config` or via PATH.
export PATH="$VENV/bin:$PATH"

count_frames() {  # number of video frames in a file (decoded)
    ffprobe -v error -select_streams v:0 -count_frames \
        -show_entries stream=nb_read_frames -of csv=p=0 "$1"
}

CLIP="${CLIP:-}"
if [ -z "$CLIP" ]; then
    CLIP="$DIR/testsrc_48f_24fps.mp4"
    if [ ! -s "$CLIP" ]; then
        ffmpeg -nostdin -y -v error -f lavfi -i testsrc=size=320x240:rate=24 \
            -frames:v 48 -pix_fmt yuv420p -c:v libx264 "$CLIP" >>"$LOG" 2>&1 \
        || ffmpeg -nostdin -y -v error -f lavfi -i testsrc=size=320x240:rate=24 \
            -frames:v 48 -pix_fmt yuv420p -c:v mpeg4 "$CLIP" >>"$LOG" 2>&1 \
        || fail "could not create test clip with ffmpeg"
    fi
fi
N_IN=$(count_frames "$CLIP")
say "input: $CLIP ($N_IN frames)"
EXPECT=$((2 * N_IN))

# ---- playback, --vo=null -----------------------------------------------
PROBE="$DIR/probe_play.jsonl"
rm -f "$PROBE"
CMD=("$MPV_BIN" --no-config --quiet --vo=null --ao=null --untimed
     "--vf=vapoursynth=$VPY" "$CLIP")
say "playback: MPV_VS_PROBE_LOG=$PROBE ${CMD[*]}"
MPV_VS_PROBE_LOG="$PROBE" "${CMD[@]}" >>"$LOG" 2>&1 || fail "mpv playback exited $?"
[ -s "$PROBE" ] || fail "script was not evaluated (no $PROBE)"
N_EVAL=$(grep -c '"event": "eval"' "$PROBE" || true)
N_PLAY=$(grep '"event": "frame"' "$PROBE" | sort -u | wc -l)
say "playback: script evaluations: $N_EVAL; output frames delivered: $N_PLAY (expected $EXPECT)"
say "playback: first eval: $(grep -m1 '"event": "eval"' "$PROBE")"
[ "$N_PLAY" = "$EXPECT" ] || fail "playback delivered $N_PLAY frames, expected $EXPECT"

# ---- encode, --o=out.mkv -----------------------------------------------
OUT="$DIR/out.mkv"
rm -f "$OUT"
PROBE="$DIR/probe_encode.jsonl"
rm -f "$PROBE"
CMD=("$MPV_BIN" --no-config --quiet --no-audio "--vf=vapoursynth=$VPY"
     "$CLIP" "--o=$OUT" --ovc=libx264)
say "encode: MPV_VS_PROBE_LOG=$PROBE ${CMD[*]}"
if ! MPV_VS_PROBE_LOG="$PROBE" "${CMD[@]}" >>"$LOG" 2>&1; then
    say "libx264 encoder failed, retrying with --ovc=ffv1"
    rm -f "$OUT"
    CMD=("${CMD[@]:0:${#CMD[@]}-1}" --ovc=ffv1)
    MPV_VS_PROBE_LOG="$PROBE" "${CMD[@]}" >>"$LOG" 2>&1 || fail "mpv encode exited $?"
fi
N_ENC=$(count_frames "$OUT")
RATE=$(ffprobe -v error -select_streams v:0 -show_entries stream=avg_frame_rate,r_frame_rate \
       -of csv=p=0 "$OUT" | tr '\n' ' ')
DUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$OUT")
say "encode: $OUT has $N_ENC frames (expected $EXPECT), rate $RATE, duration $DUR s"
[ "$N_ENC" = "$EXPECT" ] || fail "encode wrote $N_ENC frames, expected $EXPECT"

say "OK: $N_IN -> $EXPECT frames in playback and encode mode"
