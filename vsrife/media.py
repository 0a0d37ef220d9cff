"""Decoding video to RGB arrays with ffmpeg (for evaluation, tests and training).

Without ffmpeg (GPU training nodes often lack it) :func:`read_frames` falls back to VapourSynth +
BestSource when those are installed; colours then follow zimg (BT.709 when untagged) instead of
ffmpeg's swscale, a difference of a code value or two.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TypedDict

import numpy as np

__all__ = ["probe", "read_frames"]


def _ffmpeg(tool: str = "ffmpeg") -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise RuntimeError(f"{tool} was not found on PATH (install it, e.g. `apt-get install ffmpeg`)")
    return exe


class VideoInfo(TypedDict):
    """What :func:`probe` reports of a file's first video stream."""

    width: int
    height: int
    fps: str
    frames: int


def probe(path: str | Path) -> VideoInfo:
    """Width, height, frame rate (as a string fraction) and frame count of the first video stream."""
    cmd = [
        _ffmpeg("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets",
        "-show_entries", "stream=width,height,r_frame_rate,nb_read_packets", "-of", "json", str(path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffprobe cannot read {path}: {proc.stderr.strip()}")
    streams = json.loads(proc.stdout).get("streams") or []
    if not streams:
        raise RuntimeError(f"{path} has no video stream")
    s = streams[0]
    return VideoInfo(width=int(s["width"]), height=int(s["height"]), fps=str(s["r_frame_rate"]),
                     frames=int(s.get("nb_read_packets", 0)))  # fmt: skip


def read_frames(path: str | Path, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames ``start`` .. ``start + count - 1`` as uint8 RGB, shape (N, H, W, 3), every frame kept (no
    rate conversion)."""
    if shutil.which("ffmpeg") is None:
        return _read_frames_vapoursynth(path, start, count)
    info = probe(path)
    w, h = info["width"], info["height"]
    select = f"select='gte(n\\,{start})'" + ("" if count is None else f"*lt(n\\,{start + count})")
    cmd = [
        _ffmpeg(), "-v", "error", "-i", str(path), "-vf", select, "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg cannot decode {path}: {proc.stderr.decode(errors='replace').strip()}")
    data = np.frombuffer(proc.stdout, dtype=np.uint8)
    return data.reshape(-1, h, w, 3)


def _read_frames_vapoursynth(path: str | Path, start: int, count: int | None) -> np.ndarray:
    """:func:`read_frames` through BestSource and zimg, for machines without ffmpeg."""
    try:
        import vapoursynth as vs

        from vsrife.filter.source import open_video
    except ImportError as exc:
        raise RuntimeError("ffmpeg was not found on PATH and VapourSynth is not installed: one is needed") from exc
    try:
        clip = open_video(path)
    except (vs.Error, ValueError, OSError) as exc:
        raise RuntimeError(f"cannot decode {path}: {exc}") from exc
    end = clip.num_frames if count is None else min(clip.num_frames, start + count)
    if start >= end:
        return np.zeros((0, clip.height, clip.width, 3), dtype=np.uint8)
    clip = clip[start:end]
    rgb = clip if clip.format.id == vs.RGB24 else vs.core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="709")
    return np.stack([np.dstack([np.asarray(f[p]) for p in range(3)]) for f in rgb.frames()])
