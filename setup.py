"""Compatibility entry point: the build is declared in pyproject.toml (hatchling).

`pip install .` (or `pip install -e .`) is the supported way to install; it also builds the
native `rife` namespace shim into VapourSynth's plugin folder. This file lets tools that still
call `python setup.py ...` find the project and tells them what to do instead.
"""

import subprocess
import sys

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in {"install", "develop"}:
        editable = ["-e"] if sys.argv[1] == "develop" else []
        sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *editable, "."]))
    sys.exit("vsrife builds with pip (pyproject.toml): run `python -m pip install .`")
