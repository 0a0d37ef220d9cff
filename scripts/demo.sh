#!/usr/bin/env bash
# Main job on embedded defaults: the sample video (Big Buck Bunny, 1280x720, 25 fps, with audio)
# interpolated 2x through core.rife.RIFE with the offline default model (v3.6), encoded to
# out/bigbuckbunny_2x.mp4 with its audio (the `vsrife interpolate` command line).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
mkdir -p out
src=$(.venv/bin/python -c 'from vsrife.samples import sample_path; print(sample_path("bigbuckbunny"))')
.venv/bin/vsrife interpolate "$src" -o out/bigbuckbunny_2x.mp4 --overwrite "$@"
ffprobe -v error -show_entries stream=codec_type,codec_name,r_frame_rate,nb_frames -of compact out/bigbuckbunny_2x.mp4
