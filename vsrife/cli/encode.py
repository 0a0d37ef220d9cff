"""Feeding a VapourSynth clip to an ffmpeg encoder in-process.

YUV and GRAY clips travel as Y4M (``clip.output(pipe, y4m=True)``, which carries size, rate,
format and range); RGB and other formats Y4M cannot describe travel as raw planes with the format
spelled out for ffmpeg (RGB planes reordered to ffmpeg's G, B, R). Float clips become 16-bit
integers first. The clip's colour properties are written into the output stream's header.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import vapoursynth as vs

from vsrife.cli.errors import CliError, UsageError
from vsrife.cli.ffmpeg import EncoderInfo

__all__ = [
    "PipeFormat",
    "color_args",
    "ffmpeg_pix_fmt",
    "hdr_args",
    "match_family",
    "pipe_format",
    "pipe_pix_fmt",
    "pix_fmt_family",
    "render_to_ffmpeg",
    "video_args",
]

_SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411", (0, 1): "440", (2, 2): "410"}
_Y4M = frozenset(
    {"gray", "gray16le", "yuv420p", "yuv422p", "yuv444p", "yuv411p"}
    | {f"yuv{s}p{b}le" for s in ("420", "422", "444") for b in (9, 10, 12, 14, 16)}
)
_MATRIX = {
    0: "rgb",  # ffmpeg 5 knows only "rgb"; "gbr" is a later alias
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "jedec-p22",
}
_TRANSFER = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_CHROMA_LOC = {0: "left", 1: "center", 2: "topleft", 3: "top", 4: "bottomleft", 5: "bottom"}
RATE_CONTROL = frozenset(
    {"-crf", "-qp", "-b:v", "-b", "-q:v", "-qscale", "-qscale:v", "-cq", "-lossless", "-global_quality"}
)


def ffmpeg_pix_fmt(fmt: vs.VideoFormat) -> str | None:
    """ffmpeg's name for an integer VapourSynth format (None for float formats)."""
    if fmt.sample_type != vs.INTEGER:
        return None
    bits = fmt.bits_per_sample
    depth = "" if bits == 8 else f"{bits}le"
    if fmt.color_family == vs.GRAY:
        return "gray" + depth
    if fmt.color_family == vs.RGB:
        return "gbrp" + depth
    ss = _SUBSAMPLING.get((fmt.subsampling_w, fmt.subsampling_h))
    return None if ss is None else f"yuv{ss}p{depth}"


def pix_fmt_family(name: str) -> str:
    """ "rgb", "gray" or "yuv" for an ffmpeg pixel format name (what a colour matrix applies to)."""
    n = name.lower()
    if any(k in n for k in ("rgb", "bgr", "gbr", "pal8")):
        return "rgb"
    if n.startswith(("gray", "ya", "mono")):
        return "gray"
    return "yuv"


def _packed_yuv(name: str) -> tuple[int, str] | None:
    """(depth, chroma) of the semi-planar and packed YUV names whose digits are not a plain depth."""
    if name.startswith("nv"):  # nv12 / nv21 (4:2:0), nv16 (4:2:2), nv20le (4:2:2, 10 bit)
        return (10, "422") if name.startswith("nv20") else (8, "422" if name.startswith("nv16") else "420")
    m = re.match(r"p([024])(\d\d)", name)  # p010le p016le p210le p410le ...
    if m:
        return int(m.group(2)), {"0": "420", "2": "422", "4": "444"}[m.group(1)]
    m = re.match(r"y2(\d\d)", name)  # y210le y212le: 4:2:2
    if m:
        return int(m.group(1)), "422"
    m = re.match(r"xv(\d\d)", name)  # xv30le xv36le: 4:4:4, digits per pixel
    if m:
        return int(m.group(1)) // 3, "444"
    return None


def _traits(name: str) -> tuple[int, str]:
    """(bits per component, chroma subsampling "420"/"422"/"444"...) of an ffmpeg pixel format name."""
    packed = _packed_yuv(name)
    if packed:
        return packed
    m = re.search(r"(4[0-4][0-4]|41[01])", name)
    chroma = m.group(1) if m else "444"
    m = re.search(r"(\d+)(?:le|be)$", name)
    if m is None:
        return 8, chroma
    bits = int(m.group(1))  # per component, except packed RGB(A) names give the whole pixel (rgb48, rgba64)
    if name.startswith(("rgba", "bgra", "argb", "abgr")) and bits >= 32:
        return bits // 4, chroma
    if name.startswith(("rgb", "bgr")) and bits >= 24:
        return bits // 3, chroma
    return bits, chroma


def _choose_pix_fmt(supported: tuple[str, ...], source: str) -> str:
    """The encoder's pixel format closest to ``source``: same colour family, then depth (not lower where it
    can be helped), then chroma subsampling; the encoder's order breaks ties."""
    family, (depth, chroma) = pix_fmt_family(source), _traits(source)

    def rank(name: str) -> tuple[int, int, int, int]:
        (d, c), other = _traits(name), pix_fmt_family(name)
        kind = 0 if other == family else 2 if other == "gray" else 1  # colour before grey
        return (kind, d < depth, abs(d - depth), c != chroma)

    plain = [f for f in supported if not f.startswith(("yuvj", "yuva", "gbra", "rgba", "bgra", "ya"))]
    return min(plain or list(supported), key=rank)


def match_family(clip: vs.VideoNode, pix_fmt: str) -> vs.VideoNode:
    """``clip`` converted to the colour family of ``pix_fmt`` where that needs a matrix (YUV <-> RGB).

    ffmpeg would convert with BT.601 whatever the source (the pipe carries no matrix) and keep the
    source's tags; zimg converts by the frame props (BT.709 where a YUV frame has none) and the props
    then describe the result. GRAY and the same family pass unchanged (no matrix involved).
    """
    fmt, want = clip.format, pix_fmt_family(pix_fmt)
    bits = 8 if fmt.sample_type == vs.INTEGER and fmt.bits_per_sample == 8 and _traits(pix_fmt)[0] <= 8 else 16
    if want == "rgb" and fmt.color_family == vs.YUV:
        # untagged (absent or 2, "unspecified", as BestSource reports it): BT.709, as the filter reads it
        tagged = clip.get_frame(0).props.get("_Matrix", 2) != 2
        matrix = {} if tagged else {"matrix_in_s": "709"}
        return vs.core.resize.Bicubic(clip, format=vs.RGB24 if bits == 8 else vs.RGB48, **matrix)
    if want == "yuv" and fmt.color_family == vs.RGB:
        target = vs.YUV444P8 if bits == 8 else vs.YUV444P16
        return vs.core.resize.Bicubic(clip, format=target, matrix_s="709", range_s="limited")
    return clip


@dataclass(frozen=True)
class PipeFormat:
    """A clip ready for the pipe, how ffmpeg must read it, and its pixel format name."""

    clip: vs.VideoNode
    input_args: list[str]
    y4m: bool
    pix_fmt: str


def _pipe_format(fmt: vs.VideoFormat) -> vs.VideoFormat:
    """The integer format a clip of ``fmt`` travels to ffmpeg in (float and odd subsampling: 16 bit)."""
    if fmt.sample_type == vs.INTEGER and ffmpeg_pix_fmt(fmt) is not None:
        return fmt
    family = fmt.color_family
    if family == vs.YUV and (fmt.subsampling_w, fmt.subsampling_h) not in _SUBSAMPLING:
        return vs.core.get_video_format(vs.YUV444P16)
    return vs.core.query_video_format(family, vs.INTEGER, 16, fmt.subsampling_w, fmt.subsampling_h)


def pipe_pix_fmt(fmt: vs.VideoFormat) -> str | None:
    """ffmpeg's name for what a clip of ``fmt`` arrives as (float clips as 16-bit integers)."""
    return ffmpeg_pix_fmt(_pipe_format(fmt))


def _integer(clip: vs.VideoNode) -> vs.VideoNode:
    target = _pipe_format(clip.format)
    if target.id == clip.format.id:
        return clip
    return vs.core.resize.Point(clip, format=target.id, dither_type="none")


def pipe_format(clip: vs.VideoNode) -> PipeFormat:
    """Prepare ``clip`` for ffmpeg: Y4M for the YUV/GRAY formats ffmpeg's Y4M reader knows, raw planes otherwise."""
    clip = _integer(clip)
    pix_fmt = ffmpeg_pix_fmt(clip.format)
    assert pix_fmt is not None
    if pix_fmt in _Y4M:
        return PipeFormat(clip, ["-f", "yuv4mpegpipe", "-i", "pipe:0"], True, pix_fmt)
    if clip.format.color_family == vs.RGB:
        clip = vs.core.std.ShufflePlanes(clip, planes=[1, 2, 0], colorfamily=vs.RGB)  # R,G,B -> G,B,R planes
    args = [
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
        "-s",
        f"{clip.width}x{clip.height}",
        "-framerate",
        f"{clip.fps_num}/{clip.fps_den}",
        "-i",
        "pipe:0",
    ]
    return PipeFormat(clip, args, False, pix_fmt)


def color_args(props: vs.FrameProps | dict[str, object]) -> list[str]:
    """``-colorspace``/``-color_primaries``/``-color_trc``/``-color_range``/``-chroma_sample_location`` from props."""
    out: list[str] = []
    for key, option, table in (
        ("_Matrix", "-colorspace", _MATRIX),
        ("_Primaries", "-color_primaries", _PRIMARIES),
        ("_Transfer", "-color_trc", _TRANSFER),
        ("_ChromaLocation", "-chroma_sample_location", _CHROMA_LOC),
    ):
        value = props.get(key)
        if isinstance(value, int) and value in table:
            out += [option, table[value]]
    from vsrife.filter.convert import tagged_full_range

    try:
        full = tagged_full_range(props)
    except ValueError:  # an invalid _Range: leave the range untagged
        full = None
    if full is not None:
        out += ["-color_range", "pc" if full else "tv"]
    return out


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata as BestSource and L-SMASH report it in frame props (all optional)."""

    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None  # R, G, B (x, y)
    white_point: tuple[float, float] | None
    luminance: tuple[float, float] | None  # (max, min) cd/m²
    light_level: tuple[int, int] | None  # (MaxCLL, MaxFALL) cd/m²

    @classmethod
    def from_props(cls, props: vs.FrameProps | dict[str, object]) -> HdrMetadata | None:
        def numbers(key: str, count: int) -> list[float] | None:
            value = props.get(key)
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if len(values) != count or not all(isinstance(v, (int, float)) for v in values):
                return None
            return [float(v) for v in values]  # type: ignore[arg-type]

        xs, ys = numbers("MasteringDisplayPrimariesX", 3), numbers("MasteringDisplayPrimariesY", 3)
        wx, wy = numbers("MasteringDisplayWhitePointX", 1), numbers("MasteringDisplayWhitePointY", 1)
        hi, lo = numbers("MasteringDisplayMaxLuminance", 1), numbers("MasteringDisplayMinLuminance", 1)
        cll, fall = numbers("ContentLightLevelMax", 1), numbers("ContentLightLevelAverage", 1)
        display = xs is not None and ys is not None and wx is not None and wy is not None and hi is not None
        meta = cls(
            ((xs[0], ys[0]), (xs[1], ys[1]), (xs[2], ys[2])) if display else None,  # type: ignore[index]
            (wx[0], wy[0]) if display else None,  # type: ignore[index]
            (hi[0], lo[0] if lo else 0.0) if display else None,  # type: ignore[index]
            (int(cll[0]), int(fall[0] if fall else 0)) if cll and cll[0] > 0 else None,
        )
        return meta if meta.primaries or meta.light_level else None

    def params(self, syntax: HdrSyntax) -> list[str]:
        """The encoder library's mastering-display and content-light parameters, in ``syntax``."""
        out = []
        if self.primaries and self.white_point and self.luminance:
            (r, g, b), wp = self.primaries, self.white_point

            def xy(p: tuple[float, float]) -> str:
                return f"({syntax.chromaticity(p[0])},{syntax.chromaticity(p[1])})"

            hi, lo = (syntax.luminance(v) for v in self.luminance)
            out.append(f"{syntax.display}=G{xy(g)}B{xy(b)}R{xy(r)}WP{xy(wp)}L({hi},{lo})")
        if self.light_level:
            out.append(f"{syntax.light}={self.light_level[0]},{self.light_level[1]}")
        return out


@dataclass(frozen=True)
class HdrSyntax:
    """How an encoder library spells HDR10 metadata: its ffmpeg option, parameter names and number formats."""

    option: str
    display: str
    light: str
    chromaticity: Callable[[float], str]
    luminance: Callable[[float], str]


_HDR_SYNTAX = {
    # x265: chromaticity in 1/50000, luminance in 1/10000 cd/m²
    "libx265": HdrSyntax(
        "-x265-params", "master-display", "max-cll", lambda v: f"{round(v * 50000)}", lambda v: f"{round(v * 10000)}"
    ),
    # SVT-AV1: plain numbers
    "libsvtav1": HdrSyntax(
        "-svtav1-params", "mastering-display", "content-light", lambda v: f"{v:.5g}", lambda v: f"{v:.6g}"
    ),
}


def hdr_args(props: vs.FrameProps | dict[str, object], video: list[str]) -> tuple[list[str], list[str]]:
    """``video`` (the ``-c:v ...`` arguments) with the source's HDR10 mastering-display and content-light
    metadata added for encoders that can write it, and warnings.

    The frames reach ffmpeg through a pipe, which carries no side data: without this an HDR10 source
    would be encoded with its PQ/BT.2020 tags but no mastering metadata (displays then guess the
    tone mapping). Parameters the user already gives in ``-x265-params``/``-svtav1-params`` win.
    """
    meta = HdrMetadata.from_props(props)
    if meta is None:
        return video, []
    encoder = video[video.index("-c:v") + 1] if "-c:v" in video else ""
    syntax = _HDR_SYNTAX.get(encoder)
    if syntax is None:
        return video, [
            f"the source's HDR10 metadata (mastering display, content light level) is not written by {encoder}: "
            "use --codec libx265 or libsvtav1 to keep it"
        ]
    option, ours = syntax.option, meta.params(syntax)
    out = list(video)
    if option in out[:-1]:  # the user's own parameters: add ours where they set none of the same name
        i = len(out) - 1 - out[::-1].index(option)  # ffmpeg uses the last one
        theirs = [p for p in out[i + 1].split(":") if p]
        names = {p.split("=")[0] for p in theirs}
        out[i + 1] = ":".join(theirs + [p for p in ours if p.split("=")[0] not in names])
    else:
        out += [option, ":".join(ours)]
    return out, []


def video_args(
    encoder: EncoderInfo, source_pix_fmt: str | None, args: argparse.Namespace
) -> tuple[list[str], list[str], str | None]:
    """(``-c:v ...`` encoder arguments, warnings, the output pixel format where known) for
    ``--codec/--crf/--preset/--pix-fmt/--encoder-args``."""
    try:
        extra = shlex.split(args.encoder_args or "")
    except ValueError as exc:
        raise UsageError(f"--encoder-args {args.encoder_args!r} cannot be split into arguments: {exc}") from None
    out = ["-c:v", encoder.name]
    warnings: list[str] = []
    given = {a.split("=")[0] for a in extra if a.startswith("-")}
    pix_fmt: str | None = None
    if args.pix_fmt:
        if encoder.pix_fmts and args.pix_fmt not in encoder.pix_fmts:
            raise UsageError(
                f"--pix-fmt {args.pix_fmt} is not supported by {encoder.name}; it takes {' '.join(encoder.pix_fmts)}"
            )
        pix_fmt = args.pix_fmt
        out += ["-pix_fmt", pix_fmt]
    elif "-pix_fmt" in given:
        i = extra.index("-pix_fmt") if "-pix_fmt" in extra else -1
        pix_fmt = extra[i + 1] if 0 <= i < len(extra) - 1 else None
    elif source_pix_fmt and (not encoder.pix_fmts or source_pix_fmt in encoder.pix_fmts):
        pix_fmt = source_pix_fmt
        out += ["-pix_fmt", pix_fmt]
    elif source_pix_fmt:
        pix_fmt = _choose_pix_fmt(encoder.pix_fmts, source_pix_fmt)
        out += ["-pix_fmt", pix_fmt]
        how = "" if pix_fmt_family(pix_fmt) == pix_fmt_family(source_pix_fmt) else " (converted with BT.709)"
        warnings.append(
            f"{encoder.name} cannot encode the source's pixel format {source_pix_fmt}: encoding {pix_fmt}{how} "
            "(choose with --pix-fmt)"
        )
    for name, value, default, overrides in (
        ("crf", args.crf, 18, RATE_CONTROL),
        ("preset", args.preset, "medium", frozenset({"-preset"})),
    ):
        if value is not None:
            if name not in encoder.options:
                raise UsageError(f"--{name} is not an option of encoder {encoder.name}; drop it or use --encoder-args")
            out += [f"-{name}", f"{value:g}" if isinstance(value, float) else str(value)]
        elif encoder.accepts(name, str(default)) and not given & overrides:  # defaults yield to --encoder-args
            out += [f"-{name}", str(default)]  # (only where they mean something: SVT-AV1's presets are numbers)
    return out + extra, warnings, pix_fmt


def _tail(log: IO[bytes], lines: int = 12) -> str:
    log.seek(0)
    text = log.read().decode(errors="replace").strip().splitlines()
    return "\n  ".join(text[-lines:]) if text else "(no message)"


def render_to_ffmpeg(
    pipe: PipeFormat,
    cmd: list[str],
    progress: Callable[[int, int], object] | None = None,
) -> None:
    """Run ``cmd`` (an ffmpeg command reading ``pipe:0``) and stream ``pipe.clip`` into it.

    ffmpeg runs in its own process group, so a terminal's Ctrl-C reaches only us: we stop it
    ourselves (and the caller removes the partial output). Raises CliError with ffmpeg's own
    message when it fails, or the filter's message when a frame cannot be rendered.
    """
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, process_group=0)
        assert proc.stdin is not None
        try:
            try:
                pipe.clip.output(proc.stdin, y4m=pipe.y4m, progress_update=progress)
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                proc.wait()
                raise CliError(
                    f"ffmpeg stopped reading frames (exit status {proc.returncode}):\n  {_tail(log)}"
                ) from None
            except vs.Error as exc:
                if proc.poll() is not None and proc.returncode != 0:
                    raise CliError(f"ffmpeg failed (exit status {proc.returncode}):\n  {_tail(log)}") from None
                from vsrife.cli.common import vs_message

                raise CliError(f"rendering failed: {vs_message(exc)}") from None
            rc = proc.wait()
            if rc != 0:
                raise CliError(f"ffmpeg failed (exit status {rc}):\n  {_tail(log)}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
