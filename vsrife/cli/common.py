"""Small helpers shared by the subcommands: messages, input checks, progress bars."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vsrife.cli.errors import CliError, UsageError

if TYPE_CHECKING:
    import vapoursynth as vs
    from tqdm import tqdm

__all__ = [
    "check_engine_options",
    "check_model",
    "info",
    "input_file",
    "open_source",
    "progress_bar",
    "vs_message",
    "warn",
]


def warn(message: str) -> None:
    print(f"vsrife: warning: {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(f"vsrife: {message}", file=sys.stderr, flush=True)


def check_model(name: str) -> str:
    """Canonical version name for ``name``; an unknown name is a usage error listing the known ones."""
    from vsrife.models import get_model

    try:
        return get_model(name).name
    except KeyError as exc:
        raise UsageError(f"{exc.args[0]} (see `vsrife models list`)") from None


def check_engine_options(device: str, precision: str, scale: float = 1.0, threads: int = 0) -> None:
    """Usage errors for an unknown device / precision / scale (and a CUDA device on a machine without one).

    ``threads`` > 0 also sets torch's CPU thread count for this process (oversubscribed machines
    are often much faster with 1).
    """
    from vsrife.engine import SCALES, resolve_device, resolve_precision
    from vsrife.filter.options import MAX_THREADS

    if not 0 <= threads <= MAX_THREADS:
        raise UsageError(f"--threads must be from 0 (torch's default) to {MAX_THREADS}, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    try:
        resolve_precision(precision, resolve_device(device))
    except ValueError as exc:
        raise UsageError(str(exc).replace("precision ", "--precision ", 1).replace("device ", "--device ", 1)) from None


def input_file(path: str | Path, what: str = "input") -> Path:
    """``path`` as an existing regular file, else a usage error."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} file {p} does not exist")
    if not p.is_file():
        raise UsageError(f"{what} {p} is not a regular file")
    return p


def open_source(path: Path) -> vs.VideoNode:
    """Decode ``path`` with BestSource; an unreadable file is a runtime error with a clear message."""
    import vapoursynth as vs

    from vsrife.filter.source import open_video

    try:
        clip = open_video(path)
    except vs.Error as exc:
        detail = str(exc).strip()
        if "Invalid track index" in detail or "no video track" in detail.lower():
            raise CliError(f"{path} has no video stream") from None
        raise CliError(f"cannot read {path} as a video (BestSource: {detail})") from None
    if clip.format is None or clip.format.color_family == vs.UNDEFINED or clip.width == 0 or clip.height == 0:
        raise CliError(
            f"{path} changes its frame size or pixel format mid-stream; vsrife needs one: scale it to one size "
            "first (e.g. ffmpeg -i IN -vf scale=1280:720 -c:v ffv1 fixed.mkv)"
        )
    return clip


def vs_message(exc: BaseException) -> str:
    """A ``vs.Error``'s own message, without the Python traceback VapourSynth puts in front of errors that
    frame callbacks raise ("Traceback (most recent call last): ... vapoursynth.Error: RIFE: frame 7: ...")."""
    text = str(exc).strip()
    if "Traceback (most recent call last)" not in text:
        return text
    lines = text.splitlines()
    last = max((k for k, line in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception): ", line)), default=None)
    if last is None:
        return text
    return "\n".join([lines[last].split(": ", 1)[1], *lines[last + 1 :]]).strip()


def progress_bar(total: int | None, desc: str, *, enabled: bool = True, unit: str = "frame", **kw: Any) -> tqdm:
    """A tqdm bar on stderr showing count, rate and ETA (``enabled=False``: silent)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
        **kw,
    )
