"""Helpers for the CLI tests (no tests here): tiny real clips made with ffmpeg, running ``vsrife`` in-process.

Clips are cut from the sample videos (``vsrife.samples``) and scaled down, so the CPU-bound network
stays cheap: a dozen frames of about 100x60 pixels.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vsrife.samples import sample_path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"
SRT = "1\n00:00:00,000 --> 00:00:00,200\nHello there\n\n2\n00:00:00,200 --> 00:00:00,400\nSecond line\n"


def ffmpeg(*args: str | Path) -> None:
    proc = subprocess.run([FFMPEG, "-v", "error", "-nostdin", "-y", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def make_bunny(folder: Path, frames: int = 10, size: str = "128:72") -> Path:
    """``bunny.mp4``: bigbuckbunny frames at 25 fps with its AAC audio, scaled down."""
    out = folder / "bunny.mp4"
    ffmpeg(
        "-ss",
        "1",
        "-i",
        sample_path("bigbuckbunny"),
        "-frames:v",
        frames,
        "-vf",
        f"scale={size}",
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        "-shortest",
        out,
    )
    return out


def make_bunny_mkv(folder: Path, bunny: Path) -> Path:
    """``bunny.mkv``: ``bunny.mp4`` plus an English SubRip track, a title and a chapter-free container."""
    srt = folder / "subs.srt"
    srt.write_text(SRT, encoding="utf-8")
    out = folder / "bunny.mkv"
    ffmpeg(
        "-i",
        bunny,
        "-i",
        srt,
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-metadata",
        "title=Tiny Bunny",
        "-metadata:s:s:0",
        "language=eng",
        out,
    )
    return out


def make_carphone(folder: Path, frames: int = 16) -> Path:
    """``carphone.mkv``: carphone frames at half size (88x72) with a sine-tone AAC track."""
    out = folder / "carphone.mkv"
    ffmpeg(
        "-i",
        sample_path("carphone"),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-frames:v",
        frames,
        "-vf",
        "scale=88:72",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        "-shortest",
        out,
    )
    return out


def make_bikes_eval(folder: Path) -> Path:
    """``bikes.mkv``: bikes frames 20..33 (a hard cut between 29 and 30) at 160x68, lossless, with bikes frame 27 frozen
    for three frames, so that with step 2 the triplets are: 0, 2, 4 ok, 6 near-duplicate, 8 ok, 10 cut, 12 ok."""
    out = folder / "bikes.mkv"
    ffmpeg(
        "-i",
        sample_path("bikes"),
        "-vf",
        "select='between(n,20,33)',setpts=N/25/TB,scale=160:68:flags=area,loop=loop=2:size=1:start=7",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv420p",
        out,
    )
    return out


def streams(path: Path) -> list[dict[str, object]]:
    entries = (
        "stream=index,codec_type,codec_name,r_frame_rate,pix_fmt,color_range,color_space,nb_read_packets:stream_tags"
    )
    cmd = [FFPROBE, "-v", "error", "-count_packets", "-show_entries", entries, "-of", "json", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return list(json.loads(proc.stdout)["streams"])


def format_tags(path: Path) -> dict[str, str]:
    proc = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {k.lower(): v for k, v in json.loads(proc.stdout).get("format", {}).get("tags", {}).items()}


def frame_hashes(path: Path) -> list[str]:
    """md5 of every decoded video frame (raw, in the stream's own pixel format), in order."""
    proc = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.rsplit(",", 1)[1].strip() for line in proc.stdout.splitlines() if line and not line.startswith("#")]


def packet_hash(path: Path, selector: str) -> str:
    """md5 of the stream's packets as stored (proves a stream was copied, not re-encoded)."""
    proc = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", selector, "-c", "copy", "-f", "md5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temporary / partial output files left in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if ".vsrife-part" in p.name or p.name.endswith((".part", ".tmp")))


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run ``vsrife ARGV`` in this process: (exit status, stdout, stderr)."""
    from vsrife.cli.main import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def vsrife_executable() -> Path:
    """The ``vsrife`` console script of the running environment."""
    script = Path(sys.executable).parent / "vsrife"
    assert script.is_file(), "pip install -e . creates the vsrife console script"
    return script
