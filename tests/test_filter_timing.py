"""Frame-rate arithmetic of the filter: frame counts, exact rates, per-frame durations, timestamps of the
generated frames, repeats after the last source frame and determinism of the output.

Most checks render every output frame; they run with ``skip=True, skip_threshold=0.001`` on tiny clips so
that each pair is classified "static" (copied) and the network does not run. Where the network matters
(what comes after the last frame, determinism) the clips are real footage at 160x68.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import Future
from fractions import Fraction
from typing import Any

import pytest
import torch
from helpers.vsclips import CLASSIFY_ONLY, digest, duration, same_pixels

vs = pytest.importorskip("vapoursynth")

core = vs.core


def _blank(length: int, fpsnum: int, fpsden: int) -> vs.VideoNode:
    return core.std.BlankClip(width=32, height=32, format=vs.YUV420P8, length=length, fpsnum=fpsnum, fpsden=fpsden)


@pytest.fixture(scope="module")
def bikes_small(sample_clip) -> vs.VideoNode:
    return core.resize.Bilinear(sample_clip("bikes"), 160, 68)


@pytest.mark.parametrize("length", [7, 10])
@pytest.mark.parametrize(("num", "den"), [(2, 1), (3, 1), (5, 2), (3, 2), (7, 3)])
def test_frame_count_and_rate_for_factors(length: int, num: int, den: int) -> None:
    clip = _blank(length, 25, 1)
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den)
    assert out.num_frames == math.ceil(length * num / den)
    assert out.fps == Fraction(25 * num, den)


@pytest.mark.parametrize(
    ("src", "target", "factor"),
    [
        ((25, 1), (60, 1), Fraction(12, 5)),
        ((24000, 1001), (60000, 1001), Fraction(5, 2)),
        ((30000, 1001), (60, 1), Fraction(1001, 500)),
        ((24000, 1001), (60, 1), Fraction(1001, 400)),
        ((25, 1), (50, 1), Fraction(2)),
        # 59.94 written as 59940/1000: a period of 999999 output frames (mapped per frame, not by SelectEvery)
        ((24000, 1001), (59940, 1000), Fraction(999999, 400000)),
    ],
)
def test_fps_target_gives_exact_rate_count_durations_and_positions(
    src: tuple[int, int], target: tuple[int, int], factor: Fraction
) -> None:
    length = 9
    clip = _blank(length, *src)
    out = core.rife.RIFE(clip, fps_num=target[0], fps_den=target[1], **CLASSIFY_ONLY)
    out_fps = Fraction(*target)
    assert (out.fps.numerator, out.fps.denominator) == (out_fps.numerator, out_fps.denominator)
    assert out.num_frames == math.ceil(length * factor)
    src_fps = Fraction(*src)
    for n in range(out.num_frames):
        f = out.get_frame(n)
        assert duration(f) == 1 / out_fps, n
        # output frame n is shown at n / out_fps: the source position there
        pos = Fraction(n) / out_fps * src_fps
        assert f.props["VsrifeSource"] == math.floor(pos)
        assert f.props["VsrifeT"] == float(pos - math.floor(pos))
    # every output timestamp lies before the end of the last source frame, and the next one would not
    assert Fraction(out.num_frames - 1) / out_fps < length / src_fps <= Fraction(out.num_frames) / out_fps


@pytest.mark.parametrize(("num", "den"), [(2, 1), (3, 1), (5, 2)])
def test_every_frame_has_duration_one_over_fps(num: int, den: int) -> None:
    clip = _blank(6, 30000, 1001)
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den, **CLASSIFY_ONLY)
    expected = 1 / (Fraction(30000, 1001) * Fraction(num, den))
    assert [duration(f) for f in out.frames()] == [expected] * out.num_frames


SOURCE_DURATIONS = [
    Fraction(1, 25),
    Fraction(1, 30),
    Fraction(1001, 24000),
    Fraction(2, 25),
    Fraction(1, 50),
    Fraction(1, 60),
    Fraction(3, 40),
]


def _vfr_clip() -> vs.VideoNode:
    """An fps-0 clip (like mpv's video_in) whose frames last different times."""
    clip = _blank(len(SOURCE_DURATIONS), 0, 1)
    frames = [
        core.std.SetFrameProps(clip[i], _DurationNum=d.numerator, _DurationDen=d.denominator)
        for i, d in enumerate(SOURCE_DURATIONS)
    ]
    out = core.std.Splice(frames)
    assert out.fps == 0
    return out


@pytest.mark.parametrize(("num", "den"), [(2, 1), (3, 1), (4, 1), (5, 2), (3, 2)])
def test_variable_rate_clip_durations_follow_the_source(num: int, den: int) -> None:
    clip = _vfr_clip()
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den, **CLASSIFY_ONLY)
    assert out.fps == 0
    assert out.num_frames == math.ceil(len(SOURCE_DURATIONS) * num / den)

    def time(n: int) -> Fraction:  # output frame n's time: t of the way through its left source frame
        i, t = n * den // num, Fraction(n * den % num, num)
        return sum(SOURCE_DURATIONS[:i], Fraction(0)) + t * SOURCE_DURATIONS[i]

    durations = []
    for n in range(out.num_frames):
        f = out.get_frame(n)
        assert f.props["VsrifeSource"] == n * den // num
        end = time(n + 1) if n + 1 < out.num_frames else sum(SOURCE_DURATIONS, Fraction(0))
        assert duration(f) == end - time(n), n  # lasts until the next frame: durations match the timeline
        durations.append(duration(f))
    assert sum(durations) == sum(SOURCE_DURATIONS)  # for any factor (5/2 made 1.2 and 0.8 source frames)
    if den == 1:  # integer factors: each source frame's duration split evenly
        assert durations == [SOURCE_DURATIONS[n // num] / num for n in range(out.num_frames)]


def test_variable_rate_clip_without_durations_gets_none() -> None:
    """An fps-0 clip whose frames carry no durations: the filter invents none (and does not fail)."""
    out = core.rife.RIFE(_blank(4, 0, 1), **CLASSIFY_ONLY)
    f = out.get_frame(1)
    assert "_DurationNum" not in f.props and "_DurationDen" not in f.props


@pytest.mark.parametrize(("num", "den"), [(2, 1), (3, 1), (5, 2)])
def test_frames_after_the_last_source_frame_repeat_it(bikes_small: vs.VideoNode, num: int, den: int) -> None:
    clip = bikes_small[:4]
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den)
    last = clip.get_frame(3)
    tail = [n for n in range(out.num_frames) if n * den // num == 3]
    assert tail and tail[-1] == out.num_frames - 1
    for n in tail:
        f = out.get_frame(n)
        assert same_pixels(f, last), n
        assert str(f.props["VsrifeAction"]) == "source"
    assert not same_pixels(clip.get_frame(2), last)  # the footage does move


@pytest.mark.parametrize("fpsnum", [24, 0])
@pytest.mark.parametrize(("num", "den"), [(2, 1), (5, 2), (999999, 400000)])  # the last: per-frame mapping
def test_one_frame_clip_gives_its_frame_repeated(fpsnum: int, num: int, den: int) -> None:
    """A one-frame shot (scene-by-scene processing) gives ceil(factor) copies spanning its duration; it was
    refused."""
    clip = _blank(1, fpsnum, 1).std.SetFrameProps(_DurationNum=1, _DurationDen=10, _AbsoluteTime=2.0)
    clip = core.std.Expr(clip, [f"x {v} +" for v in (10, 20, 30)])  # not the blank colour
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den)
    assert out.num_frames == math.ceil(Fraction(num, den))
    assert out.fps == (Fraction(fpsnum * num, den) if fpsnum else 0)
    frames = [out.get_frame(n) for n in range(out.num_frames)]
    assert all(same_pixels(f, clip.get_frame(0)) for f in frames)
    if fpsnum == 0:
        assert sum(duration(f) for f in frames) == Fraction(1, 10)
        assert [f.props["_AbsoluteTime"] for f in frames] == pytest.approx(
            [2 + n * den / num / 10 for n in range(out.num_frames)]
        )


def _hashes(out: vs.VideoNode, order: list[int], threads: int, concurrent: bool) -> dict[int, str]:
    """Digests of the frames of ``out`` requested in ``order`` with ``threads`` VapourSynth threads."""
    before = core.num_threads
    core.num_threads = threads
    assert core.num_threads == threads
    try:
        if concurrent:
            futures: dict[int, Future] = {n: out.get_frame_async(n) for n in order}
            return {n: digest(fut.result()) for n, fut in futures.items()}
        return {n: digest(out.get_frame(n)) for n in order}
    finally:
        core.num_threads = before


def test_output_is_deterministic_whatever_the_order_and_threads(bikes_small: vs.VideoNode) -> None:
    """Each run builds a fresh filter (no shared caches), requests the frames in another order and thread
    count, and must give bit-identical frames."""
    clip = bikes_small[40:44]
    n_out = 8
    forward = list(range(n_out))
    shuffled = forward[:]
    random.Random(1).shuffle(shuffled)
    runs = {
        "1 thread, in order": (forward, 1, False),
        "1 thread, reverse": (forward[::-1], 1, False),
        "4 threads, random order, concurrent": (shuffled, 4, True),
        "4 threads, reverse, concurrent": (forward[::-1], 4, True),
    }
    results = {}
    for label, (order, threads, concurrent) in runs.items():
        core.clear_cache()
        out = core.rife.RIFE(clip)
        assert out.num_frames == n_out
        results[label] = _hashes(out, order, threads, concurrent)
    reference = results["1 thread, in order"]
    assert len(set(reference.values())) >= 7  # real content: distinct frames (only the final repeat is equal)
    for label, hashes in results.items():
        assert hashes == reference, f"{label}: frames {[n for n in forward if hashes[n] != reference[n]]} differ"


def test_callbacks_run_with_the_creating_threads_count(
    bikes_small: vs.VideoNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VapourSynth workers keep the torch thread count that was global when they first touched torch;
    the filter gives every callback the count of the thread that created it (or ``threads=``), so a
    frame does not depend on which worker rendered it."""
    from vsrife.engine import Interpolator

    seen: list[int] = []
    original = Interpolator.interpolate_prepared

    def spy(self: Interpolator, *args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Interpolator, "interpolate_prepared", spy)
    before = torch.get_num_threads()
    try:
        for creating, option in ((before + 1, 0), (before, 1)):
            torch.set_num_threads(creating)
            out = core.rife.RIFE(bikes_small[40:43], factor_num=3, threads=option)
            torch.set_num_threads(before)
            seen.clear()
            _hashes(out, list(range(9))[::-1], 2, True)
            assert seen and set(seen) == {option or creating}, (creating, option, seen)
    finally:
        torch.set_num_threads(before)


def test_fractional_factor_is_deterministic_in_reverse(bikes_small: vs.VideoNode) -> None:
    """t = 1/3 and 2/3 (4.x-style timesteps on 3.6: linear flow scaling) do not depend on request order."""
    clip = bikes_small[40:43]
    first = _hashes(core.rife.RIFE(clip, factor_num=3), list(range(9)), 1, False)
    second = _hashes(core.rife.RIFE(clip, factor_num=3), list(range(9))[::-1], 2, True)
    assert first == second


@pytest.mark.parametrize(("length", "num", "den"), [(2**30 + 1, 5, 4), (2**31 - 1, 3, 2)])
def test_clips_too_long_to_interleave(length: int, num: int, den: int) -> None:
    """Over 2^30 frames the two-frame interleave would exceed VapourSynth's count: mapped per frame instead."""
    clip = _blank(length, 25, 1)
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den, **CLASSIFY_ONLY)
    assert out.num_frames == min(2**31 - 1, math.ceil(length * num / den))
    for n in (0, 1, out.num_frames - 1):
        f = out.get_frame(n)
        assert f.props["VsrifeSource"] == n * den // num and duration(f) == Fraction(25 * num, den) ** -1


def _timed(clip: vs.VideoNode, starts: list[float]) -> vs.VideoNode:
    return core.std.Splice([core.std.SetFrameProps(clip[i], _AbsoluteTime=s) for i, s in enumerate(starts)])


@pytest.mark.parametrize(("num", "den"), [(2, 1), (5, 2)])
def test_absolute_time_of_generated_frames(num: int, den: int) -> None:
    """``_AbsoluteTime`` (seconds, set by source filters) of frame n is its own time, not its left frame's."""
    clip = _timed(_blank(5, 25, 1), [10 + i / 25 for i in range(5)])
    out = core.rife.RIFE(clip, factor_num=num, factor_den=den, **CLASSIFY_ONLY)
    for n in range(out.num_frames):
        assert out.get_frame(n).props["_AbsoluteTime"] == pytest.approx(10 + n / (25 * num / den), abs=1e-9), n
    # fps 0: from each source frame's own duration
    vfr = _timed(_vfr_clip(), [float(sum(SOURCE_DURATIONS[:i])) for i in range(len(SOURCE_DURATIONS))])
    out = core.rife.RIFE(vfr, factor_num=num, factor_den=den, **CLASSIFY_ONLY)
    for n in range(out.num_frames):
        i, t = n * den // num, Fraction(n * den % num, num)
        expected = float(sum(SOURCE_DURATIONS[:i]) + t * SOURCE_DURATIONS[i])
        assert out.get_frame(n).props["_AbsoluteTime"] == pytest.approx(expected, abs=1e-9), n
    # no duration known: the stale left-frame time is dropped rather than copied
    out = core.rife.RIFE(_timed(_blank(3, 0, 1), [0.0, 1.0, 2.0]), **CLASSIFY_ONLY)
    assert out.get_frame(0).props["_AbsoluteTime"] == 0.0 and "_AbsoluteTime" not in out.get_frame(1).props
