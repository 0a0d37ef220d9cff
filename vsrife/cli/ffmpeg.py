"""ffmpeg / ffprobe helpers: probing, encoder capabilities, and carrying audio / subtitles / metadata over.

The output container decides what can be copied: MP4/MOV hold only ``mov_text`` subtitles (text
subtitles are converted, bitmap ones dropped with a warning), WebM only WebVTT and Opus/Vorbis,
Matroska nearly everything. Each kept source stream is mapped explicitly with its own codec.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vsrife.cli.errors import CliError, UsageError

__all__ = [
    "EncoderInfo",
    "Stream",
    "StreamPlan",
    "VideoPlacement",
    "check_encoding",
    "codec_tag_args",
    "container_family",
    "encoder_info",
    "executable",
    "grey_frame",
    "keyed_metadata",
    "mux_check",
    "plan_streams",
    "probe_rate",
    "probe_streams",
    "probe_video_placement",
    "timecode_args",
    "video_stream_tags",
    "with_movflag",
]

TEXT_SUBS = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"})
_MP4_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "alac", "opus", "flac"})
_WEBM_AUDIO = frozenset({"opus", "vorbis"})
_FAMILIES = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".3gp": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".mka": "matroska",
    ".mk3d": "matroska",
    ".webm": "webm",
}


def executable(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise CliError(f"{tool} was not found on PATH (install ffmpeg, e.g. `apt-get install ffmpeg`)")
    return exe


def container_family(path: Path) -> str:
    """``mp4``, ``mov``, ``matroska``, ``webm`` or ``other`` from the file extension."""
    return _FAMILIES.get(path.suffix.lower(), "other")


@dataclass(frozen=True)
class EncoderInfo:
    """What ``ffmpeg -h encoder=NAME`` says about an encoder."""

    name: str
    pix_fmts: tuple[str, ...]
    options: frozenset[str]
    # option -> its value type and named values ("preset" -> ("int", {"slow", "medium", ...}))
    kinds: Mapping[str, tuple[str, frozenset[str]]] = field(default_factory=dict, compare=False)

    def accepts(self, option: str, value: str) -> bool:
        """Whether ``-option value`` is of a kind this encoder takes (not range-checked; a string takes any value)."""
        kind, names = self.kinds.get(option, ("", frozenset()))
        if kind in ("int", "int64", "float", "double"):
            try:
                float(value)
            except ValueError:
                return value in names
            return True
        return option in self.options and (kind == "string" or value in names)


@functools.cache
def encoder_info(name: str) -> EncoderInfo:
    """Pixel formats and private options of encoder ``name``; an unknown encoder is a usage error."""
    proc = subprocess.run(
        [executable("ffmpeg"), "-hide_banner", "-h", f"encoder={name}"], capture_output=True, text=True, check=False
    )
    text = proc.stdout + proc.stderr
    if proc.returncode != 0 or "is not recognized" in text or not text.strip():
        raise UsageError(f"unknown encoder {name!r} (see `ffmpeg -encoders`), e.g. libx264, libx265, ffv1")
    if "Supported sample formats" in text or "Supported sample rates" in text:
        raise UsageError(f"{name!r} is an audio encoder; --codec needs a video encoder such as libx264 or ffv1")
    m = re.search(r"Supported pixel formats:\s*(.*)", text)
    pix_fmts = tuple(m.group(1).split()) if m else ()
    kinds: dict[str, tuple[str, frozenset[str]]] = {}
    for m in re.finditer(r"^( +)-([\w:-]+) +<(\w+)>[^\n]*\n((?:\1 +[\w.+-]+ [^\n]*\n)*)", text, re.M):
        named = frozenset(line.split()[0] for line in m.group(4).splitlines())
        kinds[m.group(2)] = (m.group(3), named)
    return EncoderInfo(name, pix_fmts, frozenset(kinds), kinds)


@dataclass(frozen=True)
class Stream:
    """One stream of a media file as ffprobe reports it."""

    index: int
    codec_type: str
    codec_name: str
    tags: dict[str, str] = field(default_factory=dict)
    attached_pic: bool = False  # a video stream that is a cover picture, not the video


QUIET = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y")
"""ffmpeg arguments every command of ours starts with: no banner/stats, errors only, overwrite (temp files)."""


def ffprobe_json(path: Path, *args: str, what: str = "ffprobe cannot read") -> dict[str, Any]:
    """Run ``ffprobe -v error <args> -of json PATH`` and parse it; CliError naming the file on failure."""
    cmd = [executable("ffprobe"), "-v", "error", *args, "-of", "json", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CliError(f"{what} {path}: {proc.stderr.strip() or 'unknown error'}")
    return json.loads(proc.stdout or "{}")


def probe_streams(path: Path) -> list[Stream]:
    """All streams of ``path`` (ffprobe); raises CliError if ffprobe cannot read it."""
    entries = "stream=index,codec_type,codec_name:stream_tags:stream_disposition=attached_pic"
    data = ffprobe_json(path, "-show_entries", entries)
    out = []
    for s in data.get("streams", []):
        picture = bool((s.get("disposition") or {}).get("attached_pic"))
        tags = dict(s.get("tags") or {})
        out.append(Stream(int(s["index"]), str(s.get("codec_type", "")), str(s.get("codec_name", "")), tags, picture))
    return out


def _test_write(out: Path, args: list[str]) -> str | None:
    """Run ``ffmpeg ARGS`` into a temporary file of ``out``'s type: None if it works, else ffmpeg's reason.

    Run in the user's folder, as the render: relative paths in --encoder-args (``-vf subtitles=subs.srt``)
    resolve the same way.
    """
    with tempfile.TemporaryDirectory(prefix="vsrife-check-") as work:
        cmd = [executable("ffmpeg"), *QUIET, *args, str(Path(work) / f"probe{out.suffix}")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return "; ".join(lines[-3:]) if lines else f"exit status {proc.returncode}"


def check_encoding(out: Path, video_args: list[str], width: int, height: int) -> None:
    """Encode one grey frame of the output's size into a file like ``out`` with ``video_args``: a codec the
    container cannot hold (libx264 in .webm), options the encoder refuses or a size it cannot take are usage
    errors now, not after the model loaded and the frames were interpolated."""
    reason = _test_write(out, [*grey_frame((width, height)), "-frames:v", "1", *video_args])
    if reason is not None:
        raise UsageError(f"ffmpeg cannot write {out.name} with {' '.join(video_args)}: {reason}")


def probe_rate(path: Path) -> Fraction | None:
    """The nominal frame rate of ``path``'s first video stream (ffprobe's r_frame_rate), None if unknown."""
    data = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate")
    text = str(((data.get("streams") or [{}])[0]).get("r_frame_rate", ""))
    num, _, den = text.partition("/")
    if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0:
        return Fraction(int(num), int(den))
    return None


def keyed_metadata(path: Path) -> bool:
    """Whether ``path`` carries QuickTime key metadata (``com.apple.quicktime.make``, ``...location.ISO6709``:
    what phones record), which MP4/MOV outputs keep only as such keys (``-movflags +use_metadata_tags``)."""
    tags = (ffprobe_json(path, "-show_entries", "format_tags").get("format") or {}).get("tags") or {}
    return any("." in key for key in tags)


def with_movflag(args: list[str], flag: str) -> list[str]:
    """``args`` with ``flag`` (``+use_metadata_tags``) added to their ``-movflags`` (ffmpeg uses only the
    last ``-movflags``: a user's ``+faststart`` and ours must be one option)."""
    out = list(args)
    if "-movflags" in out[:-1]:
        i = len(out) - 1 - out[::-1].index("-movflags")
        if flag not in out[i + 1]:
            out[i + 1] += flag
        return out
    return [*out, "-movflags", flag]


def codec_tag_args(encoder: str, out: Path, video_args: list[str]) -> list[str]:
    """``-tag:v hvc1`` for HEVC into MP4/MOV (unless given): ffmpeg writes ``hev1``, which Apple's players
    (QuickTime, Safari, iOS) refuse to play."""
    hevc = "265" in encoder or "hevc" in encoder.lower()
    given = any(a.startswith(("-tag:v", "-vtag")) for a in video_args)
    return ["-tag:v", "hvc1"] if hevc and not given and container_family(out) in ("mp4", "mov") else []


@dataclass(frozen=True)
class VideoPlacement:
    """Where the first video stream sits in its file: what a re-encode from a pipe must restore."""

    start: float  # seconds after the file's start (audio may begin first: .ts cuts, B-frame delay)
    aspect: Fraction | None  # display aspect ratio where samples are not square (anamorphic DVD / broadcast)
    stream_size: tuple[int, int] | None = None  # the stream's picture size, turned as shown

    def input_args(self) -> list[str]:
        """Options before a pipe input (starting at 0) that keep it in sync with the file's other streams."""
        return ["-itsoffset", f"{self.start:.6f}"] if self.start > 0 else []

    def output_args(self) -> list[str]:
        # passthrough: a delayed start becomes an edit list, not frames repeated to fill it (MP4's default)
        out = ["-fps_mode", "passthrough"] if self.start > 0 else []
        if self.aspect is not None:
            out += ["-aspect", f"{self.aspect.numerator}:{self.aspect.denominator}"]
        return out


def probe_video_placement(path: Path, size: tuple[int, int] | None = None) -> VideoPlacement:
    """:class:`VideoPlacement` of ``path``'s first video stream; its aspect only with ``size`` (as decoded)."""
    data = ffprobe_json(
        path,
        "-show_entries",
        "format=start_time:stream=codec_type,start_time,sample_aspect_ratio,width,height:stream_side_data=rotation",
    )
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)

    def seconds(value: object) -> float | None:
        try:
            return float(str(value))
        except ValueError:
            return None

    starts = [t for s in streams if (t := seconds(s.get("start_time"))) is not None]
    first = seconds((data.get("format") or {}).get("start_time"))
    if first is None and starts:
        first = min(starts)
    own = seconds(video.get("start_time")) if video else None
    start = own - first if own is not None and first is not None and own - first > 5e-4 else 0.0
    aspect = None
    text = str(video.get("sample_aspect_ratio", "")) if video else ""
    num, _, den = text.partition(":")
    rotation = next((d.get("rotation") for d in (video or {}).get("side_data_list") or [] if "rotation" in d), 0)
    quarter = isinstance(rotation, (int, float)) and round(rotation) % 180 == 90  # BestSource turns the pixels
    if size and num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0 and int(num) != int(den):
        sar = Fraction(int(num), int(den))
        aspect = (1 / sar if quarter else sar) * Fraction(*size)  # a turned picture's samples are turned too
    stream_size = None
    if video and isinstance(video.get("width"), int) and isinstance(video.get("height"), int):
        w, h = video["width"], video["height"]
        stream_size = (h, w) if quarter else (w, h)
    return VideoPlacement(start, aspect, stream_size)


def timecode_args(streams: list[Stream], src_fps: Fraction, out_fps: Fraction) -> tuple[list[str], list[str]]:
    """(``-timecode`` for the output, warnings): the source's start timecode (a MOV/MP4 ``tmcd`` track or a
    stream tag) restated in frames of the output rate, which the frame field counts (01:00:00:12 at 25 fps
    is 01:00:00:24 at 50 fps). Drop-frame codes and rates that do not divide evenly are not converted."""
    code = next((v for s in streams for k, v in s.tags.items() if k.lower() == "timecode" and v), None)
    if code is None:
        return [], []
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d)([:;.,])(\d+)", code.strip())
    src_base, out_base = round(src_fps), round(out_fps)
    if m is None or m.group(4) != ":" or src_base <= 0 or out_base <= 0:
        return [], [f"the source's timecode {code} is not carried over (drop-frame or unreadable)"]
    h, mi, se, ff = (int(m.group(k)) for k in (1, 2, 3, 5))
    frames = Fraction(((h * 60 + mi) * 60 + se) * src_base + ff) * out_base / src_base
    if frames.denominator != 1:
        return [], [f"the source's timecode {code} falls between frames at {float(out_fps):.6g} fps; not carried over"]
    total = int(frames)
    seconds, ff_out = divmod(total, out_base)
    return ["-timecode", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{ff_out:02d}"], []


def video_stream_tags(streams: list[Stream]) -> list[str]:
    """``-metadata:s:v:0`` options carrying the source video stream's language and title."""
    video = next((s for s in streams if s.codec_type == "video"), None)
    if video is None:
        return []
    out = []
    for key in ("language", "title"):
        value = next((v for k, v in video.tags.items() if k.lower() == key), None)
        if value:
            out += ["-metadata:s:v:0", f"{key}={value}"]
    return out


@dataclass
class StreamPlan:
    """ffmpeg arguments that map and encode the source's audio/subtitle/attachment streams."""

    args: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audio: int = 0
    subtitles: int = 0

    def describe(self) -> str:
        """``", 1 audio, 2 subtitle streams"`` (empty when nothing is carried over)."""
        out = f", {self.audio} audio stream{'s' * (self.audio != 1)}" if self.audio else ""
        return out + (f", {self.subtitles} subtitle stream{'s' * (self.subtitles != 1)}" if self.subtitles else "")


def _subtitle_codec(codec: str, family: str) -> str | None:
    """Output codec for a subtitle stream in ``family`` (``copy``, a conversion target, or None: drop)."""
    text = codec in TEXT_SUBS
    if family in ("mp4", "mov"):
        return ("copy" if codec == "mov_text" else "mov_text") if text else None
    if family == "webm":
        return ("copy" if codec == "webvtt" else "webvtt") if text else None
    if family == "matroska":
        return "srt" if codec in ("mov_text", "text") else "copy"
    return None


def _audio_codec(codec: str, family: str) -> tuple[str, str | None]:
    """(output codec, warning) for an audio stream in ``family``."""
    if family == "mp4" and codec not in _MP4_AUDIO:
        return "aac", f"{codec} audio cannot be stored in MP4; re-encoding it to AAC"
    if family == "mov" and codec not in _MP4_AUDIO and not codec.startswith("pcm_"):
        return "aac", f"{codec} audio cannot be stored in MOV; re-encoding it to AAC"
    if family == "webm" and codec not in _WEBM_AUDIO:
        return "libopus", f"{codec} audio cannot be stored in WebM; re-encoding it to Opus"
    return "copy", None


Muxes = Callable[[list[str]], "str | None"]
"""Test-writes the given stream options (input 1 is the source) into a file like the output: None if ffmpeg
can, else its reason."""


def mux_check(out: Path, video_input: list[str], video_args: list[str], source: Path) -> Muxes:
    """A :data:`Muxes` check: one frame of ``video_input`` (ffmpeg input options, e.g. a lavfi grey frame)
    written with ``video_args`` plus a moment of the source's streams into a temporary file of ``out``'s type
    (a few tenths of a second per call)."""

    def check(stream_args: list[str]) -> str | None:
        return _test_write(out, [*video_input, "-i", str(source), "-map", "0:v:0", "-frames:v", "1", *video_args,
                                 *stream_args, "-t", "0.2"])  # fmt: skip

    return check


def grey_frame(size: tuple[int, int]) -> list[str]:
    """ffmpeg input options for a grey picture of ``size`` (the stand-in video of test encodes)."""
    return ["-f", "lavfi", "-i", f"color=c=gray:s={size[0]}x{size[1]}:r=25"]


def plan_streams(
    streams: list[Stream],
    out: Path,
    input_index: int,
    *,
    audio: bool = True,
    subtitles: bool = True,
    muxes: Muxes | None = None,
) -> StreamPlan:
    """Map the audio, subtitle (and, for Matroska, attachment) streams of input ``input_index`` into ``out``.

    The codec of each stream follows what the container is known to hold; with ``muxes`` each choice is also
    test-written, and a stream the container refuses all the same (FLAC in MP4 on ffmpeg 5, Opus in .m4v,
    anything in .gif) is re-encoded (AAC, Opus for WebM) or, failing that, dropped, with a warning.
    """
    family = container_family(out)
    plan = StreamPlan()
    for s in streams:
        if s.codec_type == "audio" and audio:
            codec, note = _audio_codec(s.codec_name, family)
            if muxes is not None:
                fallback = "libopus" if family == "webm" else "aac"
                for choice in dict.fromkeys((codec, fallback)):
                    if muxes(["-map", f"1:{s.index}", "-c:a", choice]) is None:
                        if choice != codec:
                            note = f"{s.codec_name} audio cannot be stored in {out.suffix} files; re-encoding it "
                            note += "to " + ("Opus" if choice == "libopus" else "AAC")
                        codec = choice
                        break
                else:
                    plan.warnings.append(
                        f"stream {s.index}: {s.codec_name} audio cannot be stored in {out.suffix or 'these'} files "
                        "(nor as AAC/Opus); dropped (use .mkv to keep it)"
                    )
                    continue
            plan.args += ["-map", f"{input_index}:{s.index}", f"-c:a:{plan.audio}", codec]
            if note:
                plan.warnings.append(f"stream {s.index}: {note}")
            plan.audio += 1
        elif s.codec_type == "subtitle" and subtitles:
            sub = _subtitle_codec(s.codec_name, family)
            if sub is not None and muxes is not None and muxes(["-map", f"1:{s.index}", "-c:s", sub]) is not None:
                sub = None
            if sub is None:
                plan.warnings.append(
                    f"stream {s.index}: {s.codec_name} subtitles cannot be stored in {out.suffix or 'this'} files; "
                    "dropped (use .mkv to keep them)"
                )
                continue
            if sub != "copy":
                plan.warnings.append(f"stream {s.index}: {s.codec_name} subtitles converted to {sub} for {out.suffix}")
            plan.args += ["-map", f"{input_index}:{s.index}", f"-c:s:{plan.subtitles}", sub]
            plan.subtitles += 1
        elif s.codec_type == "video" and s.attached_pic:
            plan.warnings.append(f"stream {s.index}: the cover picture ({s.codec_name}) is not carried over; dropped")
        elif s.codec_type == "attachment" and family == "matroska" and subtitles:
            plan.args += ["-map", f"{input_index}:{s.index}"]
    if any(a == "-map" for a in plan.args) and family == "matroska":
        plan.args += ["-c:t", "copy"]
    return plan
