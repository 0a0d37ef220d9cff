"""``vsrife join PART... -o OUT [--audio-from SOURCE]``: lossless concatenation of partial renders.

The parts (``vsrife interpolate --segment i/n`` or ``--frames A:B`` outputs, in order) are joined
with ffmpeg's concat demuxer and ``-c copy``: no re-encoding, so the result is frame-for-frame what
the parts hold. Each part starts with a keyframe (it is a file of its own); the parts must share
codec, size, pixel format and frame rate, which is checked first, and partial renders carry a
``vsrife_range`` tag (``start:stop/total``) by which their order and completeness are checked.
``--audio-from SOURCE`` adds the source's audio, subtitles, chapters and metadata (as a full
``interpolate`` run would).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vsrife.cli import ffmpeg
from vsrife.cli.common import info, input_file, warn
from vsrife.cli.errors import CliError
from vsrife.cli.output import AtomicOutput, check_output

__all__ = [
    "RANGE_TAG",
    "RENDER_TAG",
    "PartInfo",
    "add_parser",
    "check_settings",
    "check_tiling",
    "parse_range_tag",
    "probe_part",
    "run",
]

RANGE_TAG = "vsrife_range"
"""Container tag of partial renders: ``"start:stop/total"`` output frames (stop exclusive)."""
RENDER_TAG = "vsrife_render"
"""Container tag of partial renders: what decides their pixels (source, model, rate, interpolation options;
not device or precision: parts rendered on different machines join), ``key=value`` pairs joined by ``;``."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "join",
        help="concatenate partial renders losslessly (no re-encode)",
        description="Concatenate parts rendered with `vsrife interpolate --segment i/n` (or --frames A:B), in the "
        "order given, without re-encoding; optionally add the source's audio, subtitles and metadata.",
    )
    p.add_argument("parts", metavar="PART", nargs="+", help="partial renders, in order")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="joined file")
    p.add_argument("--audio-from", metavar="SOURCE", help="take audio, subtitles, chapters and metadata from SOURCE")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=run)


@dataclass(frozen=True)
class PartInfo:
    """The first video stream of a part: what must match across parts, and its frame count."""

    codec: str
    width: int
    height: int
    pix_fmt: str
    rate: Fraction
    frames: int
    other_streams: tuple[str, ...]
    """``codec_type:codec_name`` of each non-video stream, in order (audio, subtitles...)."""
    range: tuple[int, int, int] | None = None
    """(start, stop, total) output frames, from the tag ``vsrife interpolate`` writes into partial renders."""
    render: str | None = None
    """The :data:`RENDER_TAG` of a partial render (None in files from earlier versions)."""

    @property
    def signature(self) -> tuple[str, int, int, str, Fraction]:
        return self.codec, self.width, self.height, self.pix_fmt, self.rate


def probe_part(path: Path) -> PartInfo:
    """Codec, size, pixel format, rate and packet count of ``path``'s video stream (ffprobe, no decoding)."""
    data = ffmpeg.ffprobe_json(
        path,
        "-count_packets",
        "-show_entries",
        "stream=codec_type,codec_name,width,height,pix_fmt,r_frame_rate,nb_read_packets:format_tags",
        what="cannot read",
    )
    streams = data.get("streams", [])
    tags = {k.lower(): v for k, v in (data.get("format", {}).get("tags") or {}).items()}
    video = [s for s in streams if s.get("codec_type") == "video"]
    if not video:
        raise CliError(f"{path} has no video stream")
    v = video[0]
    num, _, den = str(v.get("r_frame_rate", "0/1")).partition("/")
    rate = Fraction(int(num), int(den or 1)) if int(den or 1) else Fraction(0)
    return PartInfo(
        str(v.get("codec_name")),
        int(v.get("width", 0)),
        int(v.get("height", 0)),
        str(v.get("pix_fmt")),
        rate,
        int(v.get("nb_read_packets", 0)),
        tuple(f"{s.get('codec_type')}:{s.get('codec_name')}" for s in streams if s is not v),
        parse_range_tag(tags.get(RANGE_TAG)),
        tags.get(RENDER_TAG) or None,
    )


def parse_range_tag(text: str | None) -> tuple[int, int, int] | None:
    """``"10:21/32"`` -> (10, 21, 32); None for a missing or malformed tag."""
    m = re.fullmatch(r"(\d+):(\d+)/(\d+)", (text or "").strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def check_settings(parts: list[Path], infos: list[PartInfo]) -> None:
    """Parts must come from one render: the same source, model, rate and interpolation options (their tags)."""
    first = next(((p, pi.render) for p, pi in zip(parts, infos, strict=True) if pi.render), None)
    if first is None:
        return
    base = dict(item.partition("=")[::2] for item in first[1].split(";"))
    for p, pi in zip(parts, infos, strict=True):
        if pi.render is None or pi.render == first[1]:
            continue
        other = dict(item.partition("=")[::2] for item in pi.render.split(";"))
        diffs = [f"{k} {base.get(k, '-')} vs {other.get(k, '-')}" for k in dict.fromkeys([*base, *other])
                 if base.get(k) != other.get(k)]  # fmt: skip
        raise CliError(
            f"{p} was rendered with other settings than {first[0]} ({'; '.join(diffs)}); a joined video would "
            "change mid-way: render the parts with one setting"
        )


def check_tiling(parts: list[Path], infos: list[PartInfo]) -> None:
    """With range tags on every part: they must cover output frames 0..total-1 in order, without gaps or overlaps."""
    ranges = [pi.range for pi in infos]
    if all(r is None for r in ranges):
        return
    if any(r is None for r in ranges):
        untagged = [str(p) for p, r in zip(parts, ranges, strict=True) if r is None]
        warn(f"cannot check the order of the parts: no vsrife range tag on {', '.join(untagged)}")
        return
    expected = 0
    total = ranges[0][2]  # type: ignore[index]
    for p, pi, r in zip(parts, infos, ranges, strict=True):
        assert r is not None
        start, stop, whole = r
        if whole != total:
            raise CliError(f"{p} is part of a {whole}-frame render but {parts[0]} of a {total}-frame one")
        if start != expected:
            what = f"frames {expected}..{start - 1} are missing" if start > expected else "it overlaps the previous"
            raise CliError(
                f"{p} holds output frames {start}..{stop - 1} but the next expected frame is {expected}: "
                f"{what} (give the parts in order, e.g. --segment 1/n .. n/n)"
            )
        if pi.frames != stop - start:
            raise CliError(f"{p} should hold {stop - start} frames ({start}..{stop - 1}) but holds {pi.frames}")
        expected = stop
    if expected != total:
        raise CliError(
            f"the parts end at output frame {expected - 1} but the render has {total} frames: "
            f"frames {expected}..{total - 1} are missing"
        )


def _quote(path: Path) -> str:
    """A path for the concat list (single-quoted; embedded quotes escaped as '\\'')."""
    return "'" + str(path.resolve()).replace("'", "'\\''") + "'"


def run(args: argparse.Namespace) -> int:
    parts = [input_file(p, "part") for p in args.parts]
    source = input_file(args.audio_from, "--audio-from") if args.audio_from else None
    out = check_output(Path(args.output), overwrite=args.overwrite, inputs=(*parts, *([source] if source else [])))
    exe = ffmpeg.executable("ffmpeg")
    infos = [probe_part(p) for p in parts]
    first = infos[0]
    for p, pi in zip(parts, infos, strict=True):
        if pi.signature != first.signature:
            raise CliError(
                f"{p} does not match {parts[0]} (codec, size, pixel format, rate: {pi.signature} vs "
                f"{first.signature}); parts must come from the same render settings"
            )
    if first.rate <= 0:
        raise CliError(f"{parts[0]} has no constant frame rate; cannot join exactly")
    if source is None:
        for p, pi in zip(parts, infos, strict=True):
            if pi.other_streams != first.other_streams:  # concat keeps the first part's layout: audio would be lost
                raise CliError(
                    f"{p} has other audio/subtitle streams than {parts[0]} ({', '.join(pi.other_streams) or 'none'} "
                    f"vs {', '.join(first.other_streams) or 'none'}); join with --audio-from SOURCE instead"
                )
    check_settings(parts, infos)
    check_tiling(parts, infos)
    total = sum(pi.frames for pi in infos)

    with tempfile.TemporaryDirectory(prefix="vsrife-join-") as work:
        listing = Path(work) / "parts.txt"
        lines = ["ffconcat version 1.0"]
        for p, pi in zip(parts, infos, strict=True):
            lines += [f"file {_quote(p)}", f"duration {float(pi.frames / first.rate):.9f}"]
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        # the source's video may start after its audio: the joined video keeps that offset to it
        placement = ffmpeg.probe_video_placement(source) if source is not None else None
        cmd = [
            exe,
            *ffmpeg.QUIET,
            *(placement.input_args() if placement else []),
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
        ]
        plan = ffmpeg.StreamPlan()
        if source is not None:
            source_streams = ffmpeg.probe_streams(source)
            if not any(st.codec_type == "audio" for st in source_streams):
                warn(f"--audio-from {source} has no audio stream")
            muxes = ffmpeg.mux_check(out, ["-i", str(parts[0])], ["-c:v", "copy"], source)
            plan = ffmpeg.plan_streams(source_streams, out, 1, muxes=muxes)
            cmd += ["-i", str(source), "-map", "0:v:0", *plan.args, "-map_metadata", "1", "-map_chapters", "1"]
            if any(pi.other_streams for pi in infos):
                warn("the parts' own non-video streams are replaced by those of --audio-from")
        else:
            cmd += ["-map", "0", "-c", "copy"]
        cmd += ["-c:v", "copy", "-metadata", f"{RANGE_TAG}=", "-metadata", f"{RENDER_TAG}="]  # (tags of parts)
        # as a full render: HEVC tagged for Apple's players, QuickTime keys kept, the timecode at the new rate
        cmd += ffmpeg.codec_tag_args(first.codec, out, [])
        family = ffmpeg.container_family(out)
        if family in ("mp4", "mov") and (ffmpeg.keyed_metadata(parts[0]) or (source and ffmpeg.keyed_metadata(source))):
            cmd += ["-movflags", "+use_metadata_tags"]
        warnings = list(plan.warnings)
        src_rate = ffmpeg.probe_rate(source) if source is not None else None
        if source is not None and src_rate is not None:
            timecode, tc_warnings = ffmpeg.timecode_args(source_streams, src_rate, first.rate)
            cmd += timecode
            warnings += tc_warnings
        for w in warnings:
            warn(w)
        with AtomicOutput(out) as tmp:
            proc = subprocess.run([*cmd, str(tmp)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise CliError(
                    f"ffmpeg could not join the parts (exit status {proc.returncode}):\n  "
                    + "\n  ".join(proc.stderr.strip().splitlines()[-12:])
                )
            got = probe_part(tmp).frames
            if got != total:
                raise CliError(f"joined file has {got} frames but the parts hold {total}; nothing was written")
    info(f"wrote {out}: {total} frames from {len(parts)} parts{plan.describe()}")
    return 0
