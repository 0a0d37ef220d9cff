"""The VapourSynth filter: ``core.rife.RIFE(clip, ...)`` / ``vsrife.RIFE(clip, ...)``.

Graph: the source clip is mapped twice with ``SelectEvery`` (per frame with ``FrameEval`` for rate
periods too long for it) so that output frame n sees its left and right source frames (t = 0 frames see
their left frame twice: they never depend on a later one); one ``ModifyFrame`` callback
(:class:`_Renderer`) then returns the left frame untouched for t = 0, repeats or blends at scene cuts
and static pairs, and otherwise converts both frames to RGB tensors (once per source frame, cached by
the engine), runs the network and writes the result back in the clip's own format. Props of the left
source frame are carried over; every frame gets exact ``_DurationNum``/``_DurationDen``. On CUDA a third
mapped clip hands the callback source frame i + 2 as well, which is staged and uploaded while the GPU
interpolates (i, i + 1), and the next pair's interpolation is queued before this frame's pixels are
copied out (the run-ahead).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
import vapoursynth as vs

from vsrife.engine.devices import keeps_freed_memory_for
from vsrife.engine.interpolator import Interpolator, PreparedFrame
from vsrife.filter.convert import ColorConverter, PlaneFormat, copy_to_frame, rgb_luma
from vsrife.filter.options import FilterOptions
from vsrife.filter.scenechange import cut_from_props, cut_metric, psnr_db, thumbnail
from vsrife.filter.timing import MAX_FRAMES, Timing, rate_factor
from vsrife.models import ModelLoadError
from vsrife.models.registry import DEFAULT_MODEL
from vsrife.models.store import FetchError

__all__ = ["RIFE"]

_log = logging.getLogger(__name__)

core = vs.core

# How CUDA frames move: "pinned" (staging buffers, parallel host copies, asynchronous DMA) or "direct"
# (copies from / into the frames' own pageable memory). benchmarks/gpu_bench.py measures both.
_TRANSFER = "pinned"
# Prepare source frame i + 2 while the GPU interpolates pair (i, i + 1). None: on for CUDA unless the clip
# is a live stream (see default_lookahead; there the extra request fails past the file's end and ends playback).
_LOOKAHEAD: bool | None = None
# Run ahead: with the look-ahead frame at hand, also start the next pair's interpolation (network,
# conversion, download) before writing this frame, so the GPU computes while the host copies pixels.
# VapourSynth runs the Python callbacks one at a time, so this is the only overlap there is. None: on
# wherever the look-ahead is on.
_PIPELINE: bool | None = None
_AHEAD = 4  # at most this many results computed ahead (pinned host buffers of one output frame each)
# mpv's video_in claims INT_MAX / 16 frames whatever the file's length (video/filter/vf_vapoursynth.c)
_LIVE_FRAMES = (2**31 - 1) // 16
# Periods with more output frames than this are mapped per frame (_picked), not by SelectEvery (_selected).
_MAX_OFFSETS = 4096


def RIFE(
    clip: vs.VideoNode,
    model: str | None = None,
    model_path: str | None = None,
    factor_num: int = 2,
    factor_den: int = 1,
    fps_num: int | None = None,
    fps_den: int | None = None,
    scale: float = 1.0,
    ensemble: bool = False,
    sc: bool = True,
    sc_threshold: float = 0.07,
    sc_method: str = "auto",
    on_cut: str = "repeat",
    skip: bool = False,
    skip_threshold: float = 50.0,
    device: str = "auto",
    precision: str = "auto",
    timestep_mode: str = "auto",
    threads: int = 0,
    torch_compile: bool = False,
    trt: bool = False,
    trt_cache_dir: str | None = None,
) -> vs.VideoNode:
    """Raise the frame rate of ``clip`` with RIFE.

    Args:
        clip: any constant-format RGB, YUV or GRAY clip (8-16 bit integer, 16/32 bit float).
        model: version name (``"3.6"`` default: best model available offline; ``"4.6"``, ``"4.25"``...).
        model_path: checkpoint file or folder of official files (version inferred unless ``model``).
        factor_num, factor_den: rate multiplier (default 2/1).
        fps_num, fps_den: target rate instead of a factor (needs a clip with a known rate).
        scale: flow resolution factor (0.25, 0.5, 1, 2, 4); 0.5 for 4K.
        ensemble: second mirrored pass averaged in (slower).
        sc: handle scene changes; ``sc_method`` "auto" (frame props when present, else built-in),
            "builtin" or "props"; ``sc_threshold`` of the built-in metric; ``on_cut`` "repeat"
            (show the previous frame) or "blend".
        skip: copy instead of interpolating when neighbours are identical above ``skip_threshold`` dB PSNR
            (50 dB default: catches re-encoded repeated frames, which are not bit-identical).
        device: "auto", "cpu", "cuda", "cuda:N"; precision: "auto", "fp32", "fp16", "bf16".
        timestep_mode: t != 1/2 for models without timestep input: "auto" (= "bisect") or "linear".
        threads: torch CPU threads per worker (0: torch default).
        torch_compile: compile the network with ``torch.compile`` (faster after a compile of
            seconds to minutes at the first frame; eager where compiling fails).
        trt: run the network as TensorRT engines (CUDA, extra ``trt``); the first run per model, frame
            size, precision and GPU builds them (minutes) into ``trt_cache_dir`` (default
            ``<user cache>/vsrife/engines``), later runs load them.
    """
    try:
        return _build(
            clip, model, model_path, factor_num, factor_den, fps_num, fps_den, scale, ensemble, sc, sc_threshold,
            sc_method, on_cut, skip, skip_threshold, device, precision, timestep_mode, threads, torch_compile, trt,
            trt_cache_dir,
        )  # fmt: skip
    except (ValueError, TypeError, ModelLoadError, FetchError, KeyError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise vs.Error(f"RIFE: {msg}") from exc


def _build(
    clip: Any,
    model: Any,
    model_path: Any,
    factor_num: Any,
    factor_den: Any,
    fps_num: Any,
    fps_den: Any,
    scale: Any,
    ensemble: Any,
    sc: Any,
    sc_threshold: Any,
    sc_method: Any,
    on_cut: Any,
    skip: Any,
    skip_threshold: Any,
    device: Any,
    precision: Any,
    timestep_mode: Any,
    threads: Any,
    torch_compile: Any,
    trt: Any,
    trt_cache_dir: Any,
) -> vs.VideoNode:
    if not isinstance(clip, vs.VideoNode):
        raise ValueError(f"clip must be a VapourSynth video clip, got {type(clip).__name__}")
    # R81: a variable-format clip has a VideoFormat of colour family UNDEFINED, not None
    if clip.format is None or clip.format.color_family == vs.UNDEFINED or clip.width == 0 or clip.height == 0:
        raise ValueError("clip must have a constant format and size (variable-format or variable-size clips)")
    fmt = PlaneFormat.from_vs(clip.format)
    opts = FilterOptions.parse(
        model=model, model_path=model_path, scale=scale, ensemble=ensemble, sc=sc, sc_threshold=sc_threshold,
        sc_method=sc_method, on_cut=on_cut, skip=skip, skip_threshold=skip_threshold, device=device,
        precision=precision, timestep_mode=timestep_mode, threads=threads, torch_compile=torch_compile, trt=trt,
        trt_cache_dir=trt_cache_dir,
    )  # fmt: skip
    src_fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_den else Fraction(0)
    factor = rate_factor(factor_num, factor_den, fps_num, fps_den, src_fps)
    timing = Timing.create(factor, clip.num_frames)
    engine = Interpolator(
        opts.model if opts.model is not None or opts.model_path is not None else DEFAULT_MODEL,
        model_path=opts.model_path, device=opts.device, precision=opts.precision,
        scale=opts.scale, ensemble=opts.ensemble, timestep_mode=opts.timestep_mode,
        # decided now, before VapourSynth's worker threads start allocating (they then share one heap)
        keep_freed_memory=keeps_freed_memory_for(clip.width * clip.height), torch_compile=opts.torch_compile,
        trt=opts.trt, trt_cache_dir=opts.trt_cache_dir,
    )  # fmt: skip
    out_fps = timing.out_fps(src_fps)
    converter = ColorConverter(fmt, clip.width, clip.height, engine.device, pinned=_TRANSFER == "pinned")
    lookahead = _LOOKAHEAD if _LOOKAHEAD is not None else default_lookahead(engine.device.type, clip.num_frames)
    pipeline = lookahead and (_PIPELINE if _PIPELINE is not None else True)
    renderer = _Renderer(engine, converter, timing, opts, 1 / out_fps if out_fps else None, pipeline)
    period = timing.num if timing.den > 1 else 2 * timing.num  # SelectEvery's offsets (Timing.select_every)
    # SelectEvery and Interleave cannot make clips beyond MAX_FRAMES: long clips, capped outputs (e.g. mpv's
    # 2^27-frame clips times a large factor) and long periods take the per-frame mapping
    if period > _MAX_OFFSETS or 2 * clip.num_frames > MAX_FRAMES or timing.out_frames == MAX_FRAMES:
        clips = [_picked(clip, timing, k) for k in ((0, 1, 2) if lookahead else (0, 1))]
    else:
        clips = _selected(clip, timing, lookahead)
    out = core.std.ModifyFrame(clips[0], clips, renderer)
    if out_fps:
        out = core.std.AssumeFPS(out, fpsnum=out_fps.numerator, fpsden=out_fps.denominator)
    if out.num_frames != timing.out_frames:
        out = out[: timing.out_frames]
    return out


def default_lookahead(device_type: str, num_frames: int) -> bool:
    """Whether to prepare source frame i + 2 ahead: on CUDA, except for live clips such as mpv's ``video_in``."""
    return device_type == "cuda" and num_frames < _LIVE_FRAMES


def _selected(clip: vs.VideoNode, timing: Timing, lookahead: bool) -> list[vs.VideoNode]:
    """Output-length clips of each output frame's left, right (and, with ``lookahead``, i + 2) source frame.

    Built from ``SelectEvery`` with one offset per output frame of a period: no Python per frame.
    """
    shifted = clip[1:] + clip[-1] if clip.num_frames > 1 else clip  # frame i + 1, the last frame repeated
    cycle, offsets = timing.select_every()
    left = core.std.SelectEvery(clip, cycle=cycle, offsets=offsets, modify_duration=False)
    # Output frames at t = 0 take their left frame as "right" too, so they never request the next source
    # frame: inside mpv that request fails past the last decoded frame and ends playback early.
    pairs = core.std.Interleave([clip, shifted], modify_duration=False)  # 2i: frame i, 2i + 1: frame i + 1
    right_offsets = [2 * o + (1 if r * timing.den % timing.num else 0) for r, o in enumerate(offsets)]
    right = core.std.SelectEvery(pairs, cycle=2 * cycle, offsets=right_offsets, modify_duration=False)
    clips = [left, right]
    if lookahead:  # frame i + 2 for outputs with t > 0 (t = 0 outputs take frame i again)
        shifted2 = ((clip[2:] if clip.num_frames > 2 else clip[-1]) + clip[-1] * 2)[: clip.num_frames]
        pairs2 = core.std.Interleave([clip, shifted2], modify_duration=False)
        clips.append(core.std.SelectEvery(pairs2, cycle=2 * cycle, offsets=right_offsets, modify_duration=False))
    return clips


def _picked(clip: vs.VideoNode, timing: Timing, ahead: int) -> vs.VideoNode:
    """Output-length clip whose frame n is source frame i + ``ahead`` (i for t = 0 outputs), clamped to the clip.

    For periods too long for ``SelectEvery`` (its set-up grows with the square of the offsets: a rate
    ratio like 999999/400000 took minutes) and clips too long to interleave: one small Python
    evaluation per frame instead, whose cost does not depend on the period.
    """
    last = clip.num_frames - 1

    def pick(n: int) -> vs.VideoNode:
        i, t = timing.source(n)
        j = i if t == 0 else min(i + ahead, last)
        return core.std.Loop(clip[j], times=n + 1)  # frame n of this clip is source frame j

    template = core.std.BlankClip(clip, length=timing.out_frames, keep=True)
    return core.std.FrameEval(template, pick)


class _Renderer:
    """The per-frame callback: decisions (copy / cut / static / interpolate) and format round trip."""

    _THUMBS = 16

    def __init__(
        self,
        engine: Interpolator,
        converter: ColorConverter,
        timing: Timing,
        opts: FilterOptions,
        out_duration: Fraction | None,
        pipeline: bool = False,
    ) -> None:
        self.engine = engine
        self.converter = converter
        self.timing = timing
        self.opts = opts
        self.out_duration = out_duration
        self.pipeline = pipeline
        self.lock = threading.RLock()
        self.threads = opts.threads or torch.get_num_threads()  # the creating thread's count by default
        self.thumbs: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.pairs: OrderedDict[int, str] = OrderedDict()
        self.ahead: OrderedDict[tuple[int, Fraction], _Result] = OrderedDict()  # run-ahead results
        self.emitted: OrderedDict[tuple[int, Fraction], None] = OrderedDict()  # recently written, not redone
        self.alpha_converters: dict[tuple[int, int, int], ColorConverter] = {}  # per _Alpha format and size

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        try:
            return self._render(n, f)
        except ValueError as exc:  # frame props the conversion cannot honour (e.g. _Matrix=3)
            raise vs.Error(f"RIFE: frame {n}: {exc}") from None
        except torch.cuda.OutOfMemoryError as exc:  # torch.OutOfMemoryError from torch 2.5 on: the same class
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
            raise vs.Error(
                f"RIFE: frame {n}: out of {self.engine.device.type.upper()} memory at {self.converter.width}x"
                f"{self.converter.height} ({first}); try scale=0.5 (flow at half resolution), a smaller clip, "
                "or fewer frames in flight (core.num_threads, the other filters' caches)"
            ) from None

    def _render(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        left, right = f[0], f[1]
        i, t = self.timing.source(n)
        if t == 0 or i + 1 >= self.timing.src_frames:
            # t = 0 frames were given their left frame as "right" (they must not request frame i + 1)
            return self._stamp(left.copy(), left, right if t and i + 1 < self.timing.src_frames else None, n, "source")
        with self.lock:
            self._threads()
            action = self._classify(i, left, right)
            if action == "static" or (action == "cut" and self.opts.on_cut == "repeat"):
                return self._stamp(left.copy(), left, right, n, action)
            field_based = left.props.get("_FieldBased", 0)
            if field_based in (1, 2):  # a motion estimate between combed frames only makes more combing
                raise ValueError(
                    f"the clip is interlaced (_FieldBased={field_based}); deinterlace it first (e.g. bwdif, QTGMC) "
                    "or, if it is progressive, mark it so with core.std.SetFieldBased(clip, 0)"
                )
            out = self._stamp(self._new_frame(left), left, right, n, action)
            self._alpha(out, left, right, float(t), blend=action == "cut")
            if action == "cut":
                self._blend(out, left, right, float(t))
                return out
            result = self.ahead.pop((i, t), None)
            if result is None:
                result = self._submit(i, t, left, right)
            if len(f) > 2 and i + 2 < self.timing.src_frames:
                self._look_ahead(n, i, left, right, f[2])
            self._write(out, result)
            if self.pipeline:  # what the run-ahead must not redo
                self.emitted[(i, t)] = None
                while len(self.emitted) > 64:
                    self.emitted.popitem(last=False)
        return out

    def _look_ahead(self, n: int, i: int, left: vs.VideoFrame, right: vs.VideoFrame, ahead: vs.VideoFrame) -> None:
        """Stage and upload source frame i + 2 while the GPU still interpolates, and (pipeline) start the next
        output frames. Only a speed-up: what fails here (frame i + 2's props, memory) is left to the request
        that needs it, which then fails with its own frame number; this frame is not lost to it."""
        try:
            self._prepared(i + 2, ahead)
            if self.pipeline:
                self._run_ahead(n, {i: left, i + 1: right, i + 2: ahead})
        except Exception as exc:  # any failure of the speculative work is deferred to its own request
            _log.debug("vsrife: look-ahead after output frame %d skipped: %s", n, exc)

    def _submit(self, i: int, t: Fraction, left: vs.VideoFrame, right: vs.VideoFrame) -> _Result:
        """Queue the interpolation of (i, i + 1) at ``t``: network, conversion and the start of the download."""
        f0 = self._prepared(i, left)
        f1 = self._prepared(i + 1, right)
        rgb = self.engine.interpolate_prepared(f0, f1, float(t), key=i)
        return self._download(self.converter.from_rgb(rgb, left.props))

    def _run_ahead(self, n: int, frames: dict[int, vs.VideoFrame]) -> None:
        """Submit the next output frames whose source frames are at hand (those after ``n``, up to pair
        i + 1), so their network runs overlap this frame's host copy and the next callbacks' uploads."""
        queued = 0
        for m in range(n + 1, min(n + 1 + 4 * _AHEAD, self.timing.out_frames)):
            j, u = self.timing.source(m)
            if j + 1 not in frames or j + 1 >= self.timing.src_frames:
                break
            key = (j, u)
            if u == 0 or key in self.ahead or key in self.emitted:
                continue
            if self._classify(j, frames[j], frames[j + 1]) != "interpolate":
                continue
            self.ahead[key] = self._submit(j, u, frames[j], frames[j + 1])
            while len(self.ahead) > _AHEAD:  # not requested after all (a seek): drop the oldest
                self.ahead.popitem(last=False)
            queued += 1
            if queued >= _AHEAD // 2:
                break

    def _stamp(
        self, out: vs.VideoFrame, left: vs.VideoFrame, right: vs.VideoFrame | None, n: int, action: str
    ) -> vs.VideoFrame:
        i, t = self.timing.source(n)
        self._set_duration(out, n, left, right)
        self._set_scene_change(out, n, i, t, action)
        if t and "_AbsoluteTime" in left.props:
            self._set_time(out, left, t)
        out.props["VsrifeSource"] = i
        out.props["VsrifeT"] = float(t)
        out.props["VsrifeAction"] = action
        return out

    def _set_scene_change(self, out: vs.VideoFrame, n: int, i: int, t: Fraction, action: str) -> None:
        """``_SceneChangeNext``/``_SceneChangePrev`` of output frame ``n`` (at ``i + t``), not of its left frame.

        A cut between source frames i and i + 1 lies between the last output frame of pair i and the first
        one after it: output frames inside pair i neighbour frames of the same shot (a repeated frame on
        cuts), so there the props are 0; a cut found here is marked with ``_SceneChangeNext`` = 1. Where the
        neighbour lies in another pair the source frame's props (another filter's detection) stay.
        """
        props = out.props
        if n + 1 < self.timing.out_frames and self.timing.source(n + 1)[0] == i:  # next output frame: same pair
            if "_SceneChangeNext" in props:
                props["_SceneChangeNext"] = 0
        elif t and action == "cut":
            props["_SceneChangeNext"] = 1
        if t and n > 0 and self.timing.source(n - 1)[0] == i and "_SceneChangePrev" in props:
            props["_SceneChangePrev"] = 0

    @staticmethod
    def _new_frame(left: vs.VideoFrame) -> vs.VideoFrame:
        """A fresh frame with the left frame's props, for frames whose every pixel is written.

        ``left.copy()`` shares the pixels, so the first write makes VapourSynth copy the whole frame
        first (copy-on-write); at 1080p that copy cost as much as the network on a fast GPU.
        """
        create = getattr(core, "create_video_frame", None)
        if create is None:  # older VapourSynth
            return left.copy()
        out = create(left.format, left.width, left.height)
        out.props.update(left.props)
        return out

    # -------------------------------------------------------------- decisions

    def _classify(self, i: int, left: vs.VideoFrame, right: vs.VideoFrame) -> str:
        """'cut', 'static' or 'interpolate' for the pair (i, i + 1), computed once per pair."""
        if i in self.pairs:
            return self.pairs[i]
        action = "interpolate"
        if self.opts.sc and self._is_cut(i, left, right):
            action = "cut"
        elif self.opts.skip:
            f0, f1 = self._prepared(i, left), self._prepared(i + 1, right)
            h, w = f0.height, f0.width
            if psnr_db(f0.image[:, :, :h, :w], f1.image[:, :, :h, :w]) >= self.opts.skip_threshold:
                action = "static"
        self.pairs[i] = action
        while len(self.pairs) > 64:
            self.pairs.popitem(last=False)
        return action

    def _is_cut(self, i: int, left: vs.VideoFrame, right: vs.VideoFrame) -> bool:
        method = self.opts.sc_method
        if method in ("auto", "props"):
            flagged = cut_from_props(left.props, right.props)
            if flagged is not None or method == "props":
                return bool(flagged)
        score = cut_metric(self._thumb(i, left), self._thumb(i + 1, right))
        return score >= self.opts.sc_threshold

    def _thumb(self, index: int, frame: vs.VideoFrame) -> torch.Tensor:
        if index not in self.thumbs:
            if self.converter.fmt.color_family == "rgb":
                # The luma of the prepared network input: RGB frames are converted and uploaded once.
                img = self._prepared(index, frame)
                luma = rgb_luma(img.image[:, :, : img.height, : img.width].float())
            else:  # YUV / GRAY: the Y plane alone
                luma = self.converter.luma(_planes(frame), frame.props)
            self.thumbs[index] = thumbnail(luma)
            while len(self.thumbs) > self._THUMBS:
                self.thumbs.popitem(last=False)
        return self.thumbs[index]

    # -------------------------------------------------------------- pixels

    def _prepared(self, index: int, frame: vs.VideoFrame) -> PreparedFrame:
        """The source frame as a padded network input, converted and uploaded once per source frame."""
        cached = self.engine.cached(index)
        if cached is not None:
            return cached
        return self.engine.prepare(self.converter.to_rgb(_planes(frame), frame.props), key=index)

    def _blend(self, out: vs.VideoFrame, left: vs.VideoFrame, right: vs.VideoFrame, t: float) -> None:
        for p in range(out.format.num_planes):
            a = np.asarray(left[p], dtype=np.float32)
            b = np.asarray(right[p], dtype=np.float32)
            mixed = a * (1.0 - t) + b * t
            dst = np.asarray(out[p])
            if np.issubdtype(dst.dtype, np.integer):
                mixed = np.rint(mixed)
            np.copyto(dst, mixed.astype(dst.dtype))

    def _alpha(self, out: vs.VideoFrame, left: vs.VideoFrame, right: vs.VideoFrame, t: float, blend: bool) -> None:
        """A generated frame's ``_Alpha`` (the mask VapourSynth attaches to a frame), not the left one's: the
        neighbours' masks interpolated by the network (as a grey picture: its own motion estimate, as the
        colour one never sees the mask), or mixed at ``t`` where the colour is a blend (a cut)."""
        a0, a1 = left.props.get("_Alpha"), right.props.get("_Alpha")
        if not isinstance(a0, vs.VideoFrame):
            return
        shape = (a0.format.id, a0.width, a0.height)
        if not isinstance(a1, vs.VideoFrame) or (a1.format.id, a1.width, a1.height) != shape:
            del out.props["_Alpha"]  # no mask to interpolate with: none rather than a wrong one
            return
        mixed = core.create_video_frame(a0.format, a0.width, a0.height)
        if blend:
            self._blend(mixed, a0, a1, t)
        else:
            conv = self.alpha_converters.get(shape)
            if conv is None:
                conv = ColorConverter(PlaneFormat.from_vs(a0.format), a0.width, a0.height, self.engine.device)
                self.alpha_converters[shape] = conv
            full = {"_Range": 1}  # a mask's 0 and maximum mean transparent and opaque: never limited range
            f0, f1 = (self.engine.prepare(conv.to_rgb(_planes(a), full)) for a in (a0, a1))  # uncached
            self._write(mixed, _Result(conv.from_rgb(self.engine.interpolate_prepared(f0, f1, t), full), None))
        out.props["_Alpha"] = mixed

    def _download(self, planes: list[torch.Tensor]) -> _Result:
        """Start copying CUDA result planes into fresh pinned buffers (asynchronous; torch's pinned
        allocator recycles them); host planes as they are."""
        if planes[0].device.type != "cuda" or not self.converter.pinned:
            return _Result(planes, None)
        host = []
        for plane in planes:
            buf = torch.empty(plane.shape, dtype=plane.dtype, pin_memory=True)
            buf.copy_(plane, non_blocking=True)
            host.append(buf)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(planes[0].device))
        return _Result(host, done)

    def _write(self, out: vs.VideoFrame, result: _Result) -> None:
        """Wait for the result's download (if any), then fill the frame."""
        if result.done is not None:
            result.done.synchronize()
        for p, plane in enumerate(result.planes):
            copy_to_frame(np.asarray(out[p]), plane)

    def _set_duration(self, out: vs.VideoFrame, n: int, left: vs.VideoFrame, right: vs.VideoFrame | None) -> None:
        """1/fps for constant-rate clips. For fps-0 clips the time to the next output frame, where output
        frame (i, t) is at source frame i's start + t times its duration (as ``_AbsoluteTime``): the
        durations add up to the source's for any factor. ``right`` (source frame i + 1) is needed only
        when the next output frame lies inside pair i + 1, which happens after generated frames only."""
        if self.out_duration is not None:
            d = self.out_duration
        else:
            d_left = _duration(left)
            if d_left is None:
                return
            i, t = self.timing.source(n)
            j, u = self.timing.source(n + 1) if n + 1 < self.timing.out_frames else (i + 1, Fraction(0))
            if j == i:
                d = (u - t) * d_left
            else:  # j == i + 1: the factor is above 1
                d_right = _duration(right) if u and right is not None else None
                d = (1 - t) * d_left + u * (d_left if d_right is None else d_right)
            if max(d.numerator, d.denominator) >= 2**63:  # int64 props; microsecond-exact is plenty
                d = d.limit_denominator(2**40)
        out.props["_DurationNum"] = d.numerator
        out.props["_DurationDen"] = d.denominator

    def _set_time(self, out: vs.VideoFrame, left: vs.VideoFrame, t: Fraction) -> None:
        """``_AbsoluteTime`` of a frame t of the way past its left source frame (dropped when unknowable)."""
        if self.out_duration is not None:
            src_duration: Fraction | None = self.out_duration * Fraction(self.timing.num, self.timing.den)
        else:
            src_duration = _duration(left)
        if src_duration is None:
            del out.props["_AbsoluteTime"]  # a copy of the left frame's time would be wrong
        else:
            out.props["_AbsoluteTime"] = float(left.props["_AbsoluteTime"]) + float(t * src_duration)

    def _threads(self) -> None:
        """torch's intra-op thread count is per OS thread, and a VapourSynth worker starts with whatever
        count was global when it first touched torch: set it in each worker (the ``threads`` option, else
        the creating thread's count), so frames do not depend on which worker renders them (kernels
        split their sums by thread count: t = 2/3 on bikes changed by 4e-6 between 1 and 2 threads)."""
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)


@dataclass
class _Result:
    """One output frame's planes: pinned host copies in flight (``done`` marks the end of the
    download) or, without pinned transfers, the planes themselves (host or device)."""

    planes: list[torch.Tensor]
    done: torch.cuda.Event | None


def _duration(frame: vs.VideoFrame) -> Fraction | None:
    """The frame's ``_DurationNum``/``_DurationDen`` (None when absent or zero)."""
    num, den = frame.props.get("_DurationNum"), frame.props.get("_DurationDen")
    return Fraction(int(num), int(den)) if num and den else None


def _planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.asarray(frame[p]) for p in range(frame.format.num_planes)]
