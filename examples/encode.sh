#!/usr/bin/env bash
# Raise a video's frame rate with RIFE (vspipe + examples/basic.vpy) and encode it with ffmpeg (H.264,
# 8-bit 4:2:0 for players), keeping the source's audio and colour tags.
#   examples/encode.sh INPUT OUTPUT [FACTOR]      FACTOR: an integer or N/M above 1 (2, 3, 5/2); default 2
# `vsrife interpolate` does the same with more care (containers, subtitles, metadata, partial renders).
set -euo pipefail
usage="usage: encode.sh INPUT OUTPUT [FACTOR]"
fail() { echo "encode.sh: $*" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || fail "$usage"
[[ -f $1 ]] || fail "input $1 is not a file"
in=$(realpath "$1")
out=$2
factor=${3:-2}
[[ $factor =~ ^([0-9]+)(/([0-9]+))?$ ]] || fail "FACTOR must be an integer or N/M (2, 3, 5/2), got '$factor'"
num=$((10#${BASH_REMATCH[1]}))
den=$((10#${BASH_REMATCH[3]:-1}))
(( den > 0 && num > den )) || fail "FACTOR must be above 1, got '$factor'"
outdir=$(dirname "$out")
[[ -d $outdir ]] || fail "output folder $outdir does not exist"
[[ $(basename "$out") == *.* ]] || fail "OUTPUT needs an extension (.mp4, .mkv, ...): ffmpeg picks the container by it"
if [[ -e $out && $(realpath "$out") == "$in" ]]; then fail "OUTPUT is the INPUT; write to another file"; fi
here=$(cd "$(dirname "$0")" && pwd)
venv_vspipe="$here/../.venv/bin/vspipe"
[[ -x $venv_vspipe ]] || venv_vspipe=vspipe
VSPIPE=${VSPIPE:-$venv_vspipe}
# The Y4M pipe carries no colour description: tag the output as the source is tagged (a full-range
# source read as limited range would show clipped blacks and whites).
tags=()
while IFS='=' read -r key value; do
  [[ -n $value && $value != unknown ]] || continue
  case $key in
    color_range) tags+=(-color_range "$value") ;;
    color_space) tags+=(-colorspace "$value") ;;
    color_primaries) tags+=(-color_primaries "$value") ;;
    color_transfer)  # ffprobe names two transfers as their primaries; -color_trc wants gamma28 / gamma22
      case $value in bt470bg) value=gamma28 ;; bt470m) value=gamma22 ;; esac
      tags+=(-color_trc "$value") ;;
  esac
done < <(ffprobe -v error -select_streams v:0 \
  -show_entries stream=color_range,color_space,color_primaries,color_transfer -of default=noprint_wrappers=1 "$in")
# written under a temporary name beside OUTPUT and renamed at the end: a failed run leaves no partial file
tmp=$(mktemp --suffix=".${out##*.}" "$outdir/.encode.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# (no -shortest: with audio shorter than the video it stopped reading the pipe and vspipe failed)
"$VSPIPE" -c y4m -a "input=$in" -a "factor_num=$num" -a "factor_den=$den" "$here/basic.vpy" - \
  | ffmpeg -hide_banner -loglevel error -y -i - -i "$in" \
      -map 0:v:0 -map '1:a?' -c:v libx264 -crf 18 -preset medium -pix_fmt yuv420p ${tags[@]+"${tags[@]}"} -c:a copy "$tmp"
chmod "$(printf '%o' $((0666 & ~0$(umask))))" "$tmp"  # mktemp makes 0600; give the usual permissions
mv -f "$tmp" "$out"
echo "$out"
