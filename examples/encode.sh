#!/usr/bin/env bash
# Interpolate a video 2x with RIFE and encode it with ffmpeg, keeping the source's audio.
#   examples/encode.sh input.mp4 output.mp4 [factor]
set -euo pipefail
in=$(realpath "${1:?usage: encode.sh INPUT OUTPUT [FACTOR]}")
out=${2:?usage: encode.sh INPUT OUTPUT [FACTOR]}
factor=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
VSPIPE=${VSPIPE:-vspipe}
script=$(mktemp --suffix=.vpy)
trap 'rm -f "$script"' EXIT
cat > "$script" <<PY
import vapoursynth as vs
from vsrife.filter.source import open_video
clip = open_video(r"""$in""")
vs.core.rife.RIFE(clip, factor_num=$factor).set_output()
PY
"$VSPIPE" -c y4m "$script" - \
  | ffmpeg -hide_banner -loglevel error -y -i - -i "$in" \
      -map 0:v:0 -map '1:a?' -c:v libx264 -crf 18 -preset medium -pix_fmt yuv420p -c:a copy -shortest "$out"
echo "$out"
