#!/usr/bin/env bash
# Set up what is missing (scripts/setup.sh), then ruff, mypy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check vsrife tests benchmarks examples scripts
.venv/bin/mypy  # the package, typed (settings in pyproject.toml)
exec .venv/bin/python -m pytest -q -rs "$@"
