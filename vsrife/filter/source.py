"""Opening video files as clips with BestSource (``core.bs``), its index kept in the user cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

__all__ = ["bestsource_cache", "frame_times", "open_video", "rate_deviation"]


def bestsource_cache() -> Path:
    """``$VSRIFE_BS_CACHE`` or ``<user cache>/vsrife/bsindex`` (not the home folder's root)."""
    env = os.environ.get("VSRIFE_BS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsrife", appauthor=False)) / "bsindex"


def open_video(
    path: str | os.PathLike[str], core: vs.Core | None = None, *, fps: Fraction | None = None
) -> vs.VideoNode:
    """Decode ``path`` with BestSource (frame-exact); raises vs.Error with a clear message.

    ``fps``: make a variable-rate video constant at this rate (BestSource repeats or drops frames
    by their timestamps, so the duration, and sync with audio, is kept).
    """
    core = core or vs.core
    p = Path(path)
    if not p.is_file():
        raise vs.Error(f"video file {p} does not exist")
    if not hasattr(core, "bs"):
        raise vs.Error("BestSource (core.bs) is not available: pip install vapoursynth-bestsource")
    cache = bestsource_cache()
    cache.mkdir(parents=True, exist_ok=True)
    # cachemode 2: read and write the index in a subtree of the folder cachepath (modes 3 and 4 would
    # take cachepath as the index file's own path, shared by every video).
    rate = {} if fps is None else {"fpsnum": fps.numerator, "fpsden": fps.denominator}
    return core.bs.VideoSource(str(p.resolve()), cachemode=2, cachepath=str(cache), **rate)


def frame_times(path: str | os.PathLike[str], core: vs.Core | None = None) -> list[float]:
    """Presentation time of every frame in milliseconds, from BestSource's index (no decoding)."""
    core = core or vs.core
    with tempfile.TemporaryDirectory(prefix="vsrife-tc-") as tmp:
        tc = Path(tmp) / "timecodes.txt"
        cache = bestsource_cache()
        cache.mkdir(parents=True, exist_ok=True)
        core.bs.VideoSource(str(Path(path).resolve()), cachemode=2, cachepath=str(cache), timecodes=str(tc))
        lines = tc.read_text().splitlines()
    return [float(line) for line in lines if line and not line.startswith("#")]


def rate_deviation(times_ms: Sequence[float], fps: Fraction) -> float:
    """Largest distance of a frame's time from the constant-``fps`` grid started at the first frame, in frames.

    Constant-rate files stay far below 0.5 (millisecond rounding of Matroska timestamps is < 0.1 frame
    at 60 fps); a variable-rate file has frames a whole interval or more off the grid.
    """
    if not times_ms or fps <= 0:
        return 0.0
    frame_ms = 1000 / float(fps)
    return max(abs(t - times_ms[0] - i * frame_ms) for i, t in enumerate(times_ms)) / frame_ms
