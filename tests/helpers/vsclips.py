"""Small utilities for tests of the VapourSynth filter: plane access, hashes, PSNR, subprocesses.

Conventions: frames are compared plane by plane as numpy arrays; "normalised" planes are float64 with
integer samples divided by 2^bits - 1 (float samples are kept as they are).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import vapoursynth as vs

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
VSPIPE = str(VENV_BIN / "vspipe") if (VENV_BIN / "vspipe").exists() else (shutil.which("vspipe") or "vspipe")

# RIFE arguments that classify every pair without running the network: scene cuts are decided first
# (with whatever sc arguments are given), then every other pair is "static" (PSNR >= 0.001 dB always).
CLASSIFY_ONLY: dict[str, Any] = {"skip": True, "skip_threshold": 1e-3}


def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    """Copies of the frame's planes."""
    return [np.array(frame[p], copy=True) for p in range(frame.format.num_planes)]


def normalised(frame: vs.VideoFrame) -> list[np.ndarray]:
    """Planes as float64, integer formats divided by 2^bits - 1."""
    fmt = frame.format
    scale = 1.0 if fmt.sample_type == vs.FLOAT else float((1 << fmt.bits_per_sample) - 1)
    return [np.asarray(frame[p]).astype(np.float64) / scale for p in range(fmt.num_planes)]


def digest(frame: vs.VideoFrame) -> str:
    """sha256 over format, size and every plane's samples."""
    h = hashlib.sha256(f"{frame.format.name} {frame.width}x{frame.height}".encode())
    for p in range(frame.format.num_planes):
        h.update(np.ascontiguousarray(frame[p]).tobytes())
    return h.hexdigest()


def same_pixels(a: vs.VideoFrame, b: vs.VideoFrame) -> bool:
    return a.format.id == b.format.id and all(np.array_equal(x, y) for x, y in zip(planes(a), planes(b), strict=True))


def psnr(a: Sequence[np.ndarray], b: Sequence[np.ndarray], peak: float = 1.0) -> float:
    """PSNR over all samples of all planes (inf when identical)."""
    err = np.concatenate(
        [((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2).ravel() for x, y in zip(a, b, strict=True)]
    )
    mse = float(err.mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def duration(frame: vs.VideoFrame) -> Fraction:
    return Fraction(int(frame.props["_DurationNum"]), int(frame.props["_DurationDen"]))


def actions(clip: vs.VideoNode, frames: Iterable[int]) -> dict[int, str]:
    """``VsrifeAction`` of the given output frames."""
    out = {}
    for n in frames:
        value = clip.get_frame(n).props["VsrifeAction"]
        out[n] = value.decode() if isinstance(value, bytes) else str(value)
    return out


def with_props(clip: vs.VideoNode, n: int, **props: Any) -> vs.VideoNode:
    """``clip`` with ``props`` set on frame ``n`` only."""
    tagged = vs.core.std.SetFrameProps(clip[n], **props)
    parts = ([clip[:n]] if n > 0 else []) + [tagged] + ([clip[n + 1 :]] if n + 1 < clip.num_frames else [])
    return vs.core.std.Splice(parts) if len(parts) > 1 else parts[0]


def run(
    cmd: Sequence[str] | str,
    *,
    timeout: float = 300,
    shell: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure (check=True) fail with the command and the tail of its output."""
    full_env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.run(
        cmd, shell=shell, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {cmd}\n--- stdout ---\n{proc.stdout[-3000:]}\n"
            f"--- stderr ---\n{proc.stderr[-3000:]}"
        )
    return proc


def ffprobe_json(path: Path | str, *args: str) -> dict[str, Any]:
    proc = run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)], timeout=120)
    return json.loads(proc.stdout)


def video_frames(path: Path | str) -> list[dict[str, Any]]:
    """Decoded video frames of ``path`` (ffprobe -show_frames): each with pts, pts_time, ..."""
    data = ffprobe_json(
        path, "-select_streams", "v:0", "-show_entries", "frame=pts,pts_time,duration,pix_fmt,width,height"
    )
    return data["frames"]


def streams(path: Path | str) -> list[dict[str, Any]]:
    return ffprobe_json(path, "-show_streams")["streams"]
