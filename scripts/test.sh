#!/usr/bin/env bash
# Set up what is missing (scripts/setup.sh), then run the whole test suite and ruff.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check vsrife tests benchmarks examples scripts
exec .venv/bin/python -m pytest -q -rs "$@"
