"""Opening video files as clips with BestSource (``core.bs``), its index kept in the user cache."""

from __future__ import annotations

import os
from pathlib import Path

import vapoursynth as vs

__all__ = ["bestsource_cache", "open_video"]


def bestsource_cache() -> Path:
    """``$VSRIFE_BS_CACHE`` or ``<user cache>/vsrife/bsindex`` (not the home folder's root)."""
    env = os.environ.get("VSRIFE_BS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsrife", appauthor=False)) / "bsindex"


def open_video(path: str | os.PathLike[str], core: vs.Core | None = None) -> vs.VideoNode:
    """Decode ``path`` with BestSource (frame-exact); raises vs.Error with a clear message."""
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
    return core.bs.VideoSource(str(p.resolve()), cachemode=2, cachepath=str(cache))
