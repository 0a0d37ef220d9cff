#!/usr/bin/env bash
# Main job on embedded defaults: the sample video (Big Buck Bunny, 1280x720, 25 fps, with audio)
# interpolated 2x through core.rife.RIFE with the offline default model, encoded to out/ with its audio.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
mkdir -p out
src=$(.venv/bin/python -c 'from vsrife.samples import sample_path; print(sample_path("bigbuckbunny"))')
PATH=$PWD/.venv/bin:$PATH exec ./examples/encode.sh "$src" out/bigbuckbunny_2x.mp4 2
