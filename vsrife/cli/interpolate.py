"""``vsrife interpolate IN -o OUT``: decode (BestSource), ``core.rife.RIFE``, encode (ffmpeg), keep audio/subs/metadata.

``--frames A:B`` / ``--segment i/n`` render part of the OUTPUT frames (for spreading a long
render over machines, then ``vsrife join``); such partial renders carry no audio or subtitles
(``vsrife join --audio-from SOURCE`` adds the source's complete streams back).
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from vsrife.cli import ffmpeg
from vsrife.cli.args import add_filter_options, filter_kwargs, parse_factor, parse_fps, parse_frames, parse_segment
from vsrife.cli.common import (
    check_engine_options,
    check_model,
    info,
    input_file,
    open_source,
    progress_bar,
    vs_message,
    warn,
)
from vsrife.cli.errors import CliError, UsageError
from vsrife.cli.join import RANGE_TAG, RENDER_TAG
from vsrife.cli.output import AtomicOutput, check_output

if TYPE_CHECKING:
    import vapoursynth as vs

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate",
        help="raise a video's frame rate with RIFE and encode it",
        description="Decode IN with BestSource, interpolate with core.rife.RIFE, encode OUT with ffmpeg. Audio, "
        "subtitles, chapters and container metadata are kept (converted or dropped with a warning when OUT's "
        "container cannot hold them). OUT appears only when complete.",
    )
    p.add_argument("input", metavar="IN", help="source video")
    p.add_argument(
        "-o", "--output", metavar="OUT", required=True, help="output file; its extension picks the container"
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--factor", type=parse_factor, help="rate multiplier: 2 (default), 3, 5/2, 2.5")
    rate.add_argument("--fps", type=parse_fps, help="target frame rate instead: 60, 60000/1001")
    add_filter_options(p)
    enc = p.add_argument_group("encoding (ffmpeg)")
    enc.add_argument("--codec", default="libx264", help="video encoder (default libx264; ffv1 for lossless)")
    enc.add_argument("--crf", type=_finite, help="quality for encoders with -crf (default 18)")
    enc.add_argument("--preset", help="preset for encoders with -preset (default medium)")
    enc.add_argument("--pix-fmt", help="output pixel format (default: the source's, if the encoder supports it)")
    enc.add_argument("--encoder-args", metavar="ARGS", help='extra ffmpeg output options, e.g. "-tune film -g 250"')
    enc.add_argument("--no-audio", dest="audio", action="store_false", help="do not copy audio streams")
    enc.add_argument("--no-subtitles", dest="subtitles", action="store_false", help="do not copy subtitle streams")
    part = p.add_argument_group("partial renders").add_mutually_exclusive_group()
    part.add_argument(
        "--frames",
        type=parse_frames,
        metavar="A:B",
        help="render output frames A..B-1 (B exclusive, like a Python slice; A: and :B allowed; negatives "
        "count from the end, written with '=': --frames=-240:)",
    )
    part.add_argument(
        "--segment",
        type=parse_segment,
        metavar="i/n",
        help="render the i-th (1..n) of n near-equal contiguous ranges of the output frames",
    )
    p.add_argument(
        "--assume-progressive",
        action="store_true",
        help="read a source flagged interlaced as progressive (whole pictures: many files are flagged wrongly); "
        "truly interlaced video must be deinterlaced first",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _rate_kwargs(args: argparse.Namespace, src_fps: Fraction) -> tuple[dict[str, int], Fraction]:
    """``core.rife.RIFE`` rate arguments and the resulting rate factor; a bad rate is a usage error."""
    from vsrife.filter.timing import rate_factor

    if args.fps is not None:
        kw = {"fps_num": args.fps.numerator, "fps_den": args.fps.denominator}
        factor_num, factor_den = 2, 1
    else:
        factor = args.factor or Fraction(2)
        kw = {"factor_num": factor.numerator, "factor_den": factor.denominator}
        factor_num, factor_den = factor.numerator, factor.denominator
    try:
        return kw, rate_factor(factor_num, factor_den, kw.get("fps_num"), kw.get("fps_den"), src_fps)
    except ValueError as exc:
        msg = str(exc).replace("fps_num/fps_den", "--fps").replace("factor_num/factor_den", "--factor")
        raise UsageError(msg) from None


def _check_filter_options(kwargs: dict[str, object]) -> None:
    from vsrife.filter.options import FilterOptions

    try:
        FilterOptions.parse(**kwargs)
    except ValueError as exc:
        # "sc_threshold must be ..." -> "--sc-threshold must be ..."
        raise UsageError(re.sub(r"^(\w+)", lambda m: "--" + m.group(1).replace("_", "-"), str(exc))) from None


def _constant_rate(src: Path, clip: vs.VideoNode, fps: Fraction) -> vs.VideoNode:
    """``clip``, or for a variable-rate file the same video made constant at its nominal rate.

    The output is encoded at a fixed rate next to the source's audio: frames taken one per
    nominal interval from a variable-rate file would drift out of sync (and change the duration).
    """
    import vapoursynth as vs

    from vsrife.filter.source import frame_times, open_video, rate_deviation

    try:
        times = frame_times(src)
    except vs.Error as exc:  # raw .h264 / DVD .vob: frames without timestamps (BestSource decodes them in order)
        warn(f"{src} has no frame timestamps to check ({vs_message(exc)}); read as constant-rate {float(fps):.6g} fps")
        return clip
    if rate_deviation(times, fps) < 0.5:
        return clip
    gaps = [b - a for a, b in itertools.pairwise(times)]
    warn(
        f"{src} has a variable frame rate (frames {min(gaps):.0f}-{max(gaps):.0f} ms apart): made constant at "
        f"{float(fps):.6g} fps first (frames repeated or dropped by their timestamps) to keep its duration and "
        "audio sync"
    )
    return open_video(src, fps=fps)


def _progressive(src: Path, clip: vs.VideoNode, assume: bool) -> vs.VideoNode:
    """``clip`` marked progressive with ``assume``; an interlaced source is refused before any work (the
    filter would refuse it at the first generated frame, with advice for scripts)."""
    import vapoursynth as vs

    if assume:
        return vs.core.std.SetFieldBased(clip, 0)
    # a few frames across the file: broadcast .ts and DVDs mix progressive and interlaced stretches
    last = clip.num_frames - 1
    samples = sorted({0, last // 4, last // 2, 3 * last // 4, last})
    field_based = next((f for n in samples if (f := clip.get_frame(n).props.get("_FieldBased", 0)) in (1, 2)), 0)
    if field_based in (1, 2):
        raise CliError(
            f"{src} is interlaced (its decoder says so: _FieldBased={field_based}): interpolating combed frames "
            "makes more combing. "
            "Deinterlace it first (e.g. ffmpeg -i IN -vf bwdif=mode=send_frame -c:v ffv1 -c:a copy "
            "progressive.mkv), or pass --assume-progressive if its frames are whole pictures flagged wrongly"
        )
    return clip


_RENDER_OPTIONS = ("scale", "ensemble", "sc", "sc_threshold", "sc_method", "on_cut", "skip", "skip_threshold",
                   "timestep_mode")  # fmt: skip
"""Filter options that change the pixels of a render (device, precision, threads, compile, trt do not:
parts rendered on different machines must still join)."""


def _render_settings(src: Path, kwargs: dict[str, object], out: vs.VideoNode) -> str:
    """What :data:`RENDER_TAG` records of a partial render: ``key=value`` pairs joined by ``;``."""
    from vsrife.models.registry import DEFAULT_MODEL

    model = kwargs.get("model") or ("-" if kwargs.get("model_path") else DEFAULT_MODEL)
    model_file = kwargs.get("model_path")
    if model_file:  # which weights: the files read, by name and size (hashing gigabytes per part costs too much)
        from vsrife.models.loading import resolve_files

        files = resolve_files(str(model_file)).values()
        model = f"{model}@" + ",".join(f"{f.name}:{f.stat().st_size}" for f in files)
    items = {"source": f"{src.name}:{src.stat().st_size}", "model": model, "fps": f"{out.fps_num}/{out.fps_den}"}
    items |= {k: str(kwargs[k]) for k in _RENDER_OPTIONS if k in kwargs}
    return ";".join(f"{k}={str(v).replace(';', ',')}" for k, v in items.items())


def run(args: argparse.Namespace) -> int:
    import vapoursynth as vs

    from vsrife.cli.encode import (
        color_args,
        hdr_args,
        match_family,
        pipe_format,
        pipe_pix_fmt,
        render_to_ffmpeg,
        video_args,
    )
    from vsrife.filter.timing import Timing

    src = input_file(args.input)
    out = check_output(Path(args.output), overwrite=args.overwrite, inputs=(src,))
    if args.model is not None:
        args.model = check_model(args.model)
    kwargs = filter_kwargs(args)
    _check_filter_options(kwargs)
    check_engine_options(args.device, args.precision, args.scale)
    encoder = ffmpeg.encoder_info(args.codec)
    exe = ffmpeg.executable("ffmpeg")

    clip = open_source(src)
    if clip.num_frames < 2:
        raise CliError(f"{src} has {clip.num_frames} frame(s); interpolation needs at least 2")
    src_fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_den else Fraction(0)
    if src_fps == 0:
        raise CliError(f"{src} has no constant frame rate that BestSource can report; cannot encode a fixed rate")
    clip = _constant_rate(src, clip, src_fps)
    clip = _progressive(src, clip, args.assume_progressive)
    rate, factor = _rate_kwargs(args, src_fps)
    kwargs.update(rate)
    total = Timing.create(factor, clip.num_frames).out_frames
    start, stop = 0, total
    rng = args.frames or args.segment
    if rng is not None:
        try:
            start, stop = rng.resolve(total)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    partial = (start, stop) != (0, total)
    vargs, warnings, out_pix_fmt = video_args(encoder, pipe_pix_fmt(clip.format), args)
    vargs += ffmpeg.codec_tag_args(encoder.name, out, vargs)
    ffmpeg.check_encoding(out, vargs, clip.width, clip.height)

    try:  # (without the source's alpha: the output holds colour only, the filter need not interpolate masks)
        rife = vs.core.rife.RIFE(vs.core.std.RemoveFrameProps(clip, "_Alpha"), **kwargs)  # the plugin scripts use
    except vs.Error as exc:
        raise CliError(str(exc)) from None
    if rife.num_frames != total:
        raise CliError(f"internal error: expected {total} output frames, the filter makes {rife.num_frames}")
    clip_out = rife[start:stop] if partial else rife
    tags_from = clip[0]
    if out_pix_fmt is not None:  # YUV <-> RGB by the frame props here, not by ffmpeg's BT.601 guess
        clip_out, tags_from = match_family(clip_out, out_pix_fmt), match_family(tags_from, out_pix_fmt)
    pipe = pipe_format(clip_out)  # (no _Alpha on it: removed before the filter; Y4M output refuses frames with one)
    props = tags_from.get_frame(0).props  # the output's colour tags (a source frame: no network run)
    if "_Alpha" in props:
        warnings.append(
            f"{src} has an alpha channel (transparency); the output holds the colour only (in a .vpy script "
            "core.rife.RIFE interpolates the alpha too: write it with your own encoder command)"
        )
    plan = ffmpeg.StreamPlan()
    source_streams = ffmpeg.probe_streams(src)
    placement = ffmpeg.probe_video_placement(src, (clip.width, clip.height))
    if placement.stream_size and placement.stream_size != (clip.width, clip.height):
        sw, sh = placement.stream_size
        warnings.append(
            f"{src} is {sw}x{sh} but decodes as {clip.width}x{clip.height} (BestSource drops an odd last row or "
            "column of subsampled chroma video); the output has the decoded size"
        )
    if not partial:
        muxes = ffmpeg.mux_check(out, ffmpeg.grey_frame((clip.width, clip.height)), vargs, src)
        plan = ffmpeg.plan_streams(source_streams, out, 1, audio=args.audio, subtitles=args.subtitles, muxes=muxes)
    if partial or not (plan.audio or plan.subtitles):
        # nothing to keep in sync with (parts start at 0: `join --audio-from` restores the offset)
        placement = ffmpeg.VideoPlacement(0.0, placement.aspect)
    cmd = [
        exe,
        *ffmpeg.QUIET,
        *placement.input_args(),
        *pipe.input_args,
        "-i",
        str(src),
        "-map",
        "0:v:0",
        *plan.args,
        "-map_metadata",
        "1",
    ]
    if partial:  # tagged, so that `vsrife join` can check the parts' order and completeness
        cmd += ["-map_chapters", "-1", "-metadata", f"{RANGE_TAG}={start}:{stop}/{total}"]
        cmd += ["-metadata", f"{RENDER_TAG}={_render_settings(src, kwargs, rife)}"]
    else:
        cmd += ["-map_chapters", "1"]
    # (no -map_metadata:s mapping: it would stop ffmpeg copying the audio/subtitle streams' own tags)
    cmd += ffmpeg.video_stream_tags(source_streams)
    if not partial:  # (parts: `join` takes the source's streams and tags, the timecode among them)
        timecode, tc_warnings = ffmpeg.timecode_args(source_streams, src_fps, Fraction(rife.fps_num, rife.fps_den))
        cmd += timecode
        warnings += tc_warnings
    vargs, hdr_warnings = hdr_args(props, vargs)
    # keys (the range tag of parts, a phone's make/model/location) survive MP4/MOV only as QuickTime keys
    if ffmpeg.container_family(out) in ("mp4", "mov") and (partial or ffmpeg.keyed_metadata(src)):
        vargs = ffmpeg.with_movflag(vargs, "+use_metadata_tags")
    cmd += [*vargs, *color_args(props), *placement.output_args()]
    for w in warnings + hdr_warnings + plan.warnings:
        warn(w)
    if partial:
        info(
            f"rendering output frames {start}..{stop - 1} of {total} (no audio/subtitles in partial renders; "
            "`vsrife join --audio-from SOURCE` adds them back)"
        )

    bar = progress_bar(stop - start, "interpolating", enabled=args.progress)
    try:
        with AtomicOutput(out) as tmp:
            render_to_ffmpeg(pipe, [*cmd, str(tmp)], lambda done, _total: bar.update(done - bar.n))
    finally:
        bar.close()
    fps = Fraction(clip_out.fps_num, clip_out.fps_den)
    frames = f"{stop - start} frame{'s' * (stop - start != 1)}"
    info(f"wrote {out}: {frames} at {fps} fps ({float(fps):.3f}) from {clip.num_frames} source frames{plan.describe()}")
    return 0
