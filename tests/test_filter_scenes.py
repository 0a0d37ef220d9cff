"""Scene cuts on real footage: bikes.mp4 has five hard cuts, between 0-based source frames 29|30, 75|76,
136|137, 186|187 and 241|242 (checked by eye on a contact sheet of the frames around them; the highest
non-cut pairs, 96..99, are a car driving through the taxi shot).

The whole-clip checks request every t = 1/2 frame with ``skip=True, skip_threshold=0.001``: scene cuts are
decided first, with the default (or given) sc arguments, and every other pair is then "static", so no
network runs and each pair's classification is visible in ``VsrifeAction``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers.vsclips import CLASSIFY_ONLY, actions, normalised, planes, psnr, same_pixels, with_props

vs = pytest.importorskip("vapoursynth")

from vsrife.filter.convert import ColorConverter, PlaneFormat  # noqa: E402
from vsrife.filter.scenechange import DEFAULT_SC_THRESHOLD, cut_metric, thumbnail  # noqa: E402

core = vs.core

BIKES_CUTS = {29, 75, 136, 186, 241}  # pair (i, i + 1) is a cut


@pytest.fixture(scope="module")
def bikes(sample_clip) -> vs.VideoNode:
    return sample_clip("bikes")


@pytest.fixture(scope="module")
def bikes_small(bikes: vs.VideoNode) -> vs.VideoNode:
    return core.resize.Bilinear(bikes, 160, 68)


def _cuts(clip: vs.VideoNode, **kwargs: object) -> set[int]:
    """Source pairs classified as cuts over the whole clip (factor 2: output 2i + 1 is pair i at t = 1/2)."""
    out = core.rife.RIFE(clip, **{**CLASSIFY_ONLY, **kwargs})
    found = actions(out, range(1, 2 * (clip.num_frames - 1), 2))
    unexpected = {a for a in found.values()} - {"cut", "static"}
    assert not unexpected, f"network ran or unknown action: {unexpected}"
    return {n // 2 for n, a in found.items() if a == "cut"}


@pytest.mark.parametrize("size", [None, (320, 136), (160, 68)], ids=["640x272", "320x136", "160x68"])
def test_builtin_detector_finds_exactly_the_real_cuts(bikes: vs.VideoNode, size: tuple[int, int] | None) -> None:
    clip = bikes if size is None else core.resize.Bilinear(bikes, *size)
    assert clip.num_frames == 250
    assert _cuts(clip) == BIKES_CUTS


def test_metric_margin_on_bikes(bikes_small: vs.VideoNode) -> None:
    """The built-in metric separates cuts from motion with room on both sides of the default threshold."""
    conv = ColorConverter(PlaneFormat.from_vs(bikes_small.format), 160, 68, torch.device("cpu"))
    thumbs = [thumbnail(conv.luma(planes(f), f.props)) for f in bikes_small.frames()]
    scores = [cut_metric(a, b) for a, b in itertools.pairwise(thumbs)]
    cut_scores = [scores[i] for i in BIKES_CUTS]
    other = [s for i, s in enumerate(scores) if i not in BIKES_CUTS]
    # measured: cuts >= 0.135, everything else <= 0.034 (threshold 0.07)
    assert min(cut_scores) > 1.5 * DEFAULT_SC_THRESHOLD, min(cut_scores)
    assert max(other) < 0.6 * DEFAULT_SC_THRESHOLD, max(other)


@pytest.mark.parametrize(("num", "den"), [(2, 1), (3, 1), (5, 2)])
def test_no_frame_across_a_cut_mixes_the_shots(bikes_small: vs.VideoNode, num: int, den: int) -> None:
    """on_cut="repeat" (default): every generated frame between the two sides of a cut is the left frame."""
    out = core.rife.RIFE(bikes_small, factor_num=num, factor_den=den)
    for i in sorted(BIKES_CUTS):
        left = bikes_small.get_frame(i)
        between = [n for n in range(out.num_frames) if n * den // num == i and n * den % num]
        assert between, i
        for n in between:
            f = out.get_frame(n)
            assert str(f.props["VsrifeAction"]) == "cut", (i, n)
            assert same_pixels(f, left), (i, n)
        # the next source frame starts the new shot
        first_after = next(n for n in range(out.num_frames) if n * den >= (i + 1) * num)
        if first_after * den == (i + 1) * num:
            assert same_pixels(out.get_frame(first_after), bikes_small.get_frame(i + 1))


@pytest.mark.parametrize(("name", "frames"), [("bigbuckbunny", 60), ("carphone", None)])
def test_no_false_cut_on_clips_without_cuts(sample_clip, name: str, frames: int | None) -> None:
    clip = sample_clip(name)
    clip = clip[:frames] if frames else clip
    clip = core.resize.Bilinear(clip, 160, 90) if clip.width > 320 else clip
    assert _cuts(clip) == set()


def test_sc_false_interpolates_across_a_cut(bikes_small: vs.VideoNode) -> None:
    clip = bikes_small[28:32]  # pair 1|2 is the cut 29|30
    out = core.rife.RIFE(clip, sc=False)
    f = out.get_frame(3)
    assert str(f.props["VsrifeAction"]) == "interpolate"
    a, b = clip.get_frame(1), clip.get_frame(2)
    assert not same_pixels(f, a) and not same_pixels(f, b)


def test_on_cut_blend_gives_the_t_weighted_blend(bikes_small: vs.VideoNode) -> None:
    clip = bikes_small[28:32]
    out = core.rife.RIFE(clip, factor_num=3, on_cut="blend")
    left, right = planes(clip.get_frame(1)), planes(clip.get_frame(2))
    for n, t in ((4, 1 / 3), (5, 2 / 3)):
        f = out.get_frame(n)
        assert str(f.props["VsrifeAction"]) == "cut" and f.props["VsrifeT"] == pytest.approx(t)
        for got, x, y in zip(planes(f), left, right, strict=True):
            expected = np.rint(x.astype(np.float64) * (1 - t) + y.astype(np.float64) * t)
            assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1
    # float formats blend exactly too
    rgbs = core.resize.Bicubic(clip, format=vs.RGBS, matrix_in=1)
    f = core.rife.RIFE(rgbs, factor_num=2, on_cut="blend").get_frame(3)
    mixed = [(x + y) / 2 for x, y in zip(normalised(rgbs.get_frame(1)), normalised(rgbs.get_frame(2)), strict=True)]
    assert psnr(normalised(f), mixed) > 100


def test_props_method_follows_frame_props_only(bikes_small: vs.VideoNode) -> None:
    clip = bikes_small[:40]  # real cut at 29|30
    tagged = with_props(clip, 10, _SceneChangeNext=1)  # a "cut" after frame 10
    tagged = with_props(tagged, 16, _SceneChangePrev=1)  # and one before frame 16
    assert _cuts(tagged, sc_method="props") == {10, 15}  # the real cut has no props: ignored
    assert _cuts(tagged, sc_method="auto") == {10, 15, 29}  # props where present, built-in metric elsewhere
    assert _cuts(tagged, sc_method="builtin") == {29}  # props ignored
    assert _cuts(tagged, sc=False) == set()
    # "auto" trusts props that say "no cut"
    denied = with_props(clip, 29, _SceneChangeNext=0)
    assert _cuts(denied, sc_method="auto") == set()
    assert _cuts(denied, sc_method="builtin") == {29}


def test_props_cut_is_repeated_not_interpolated(bikes_small: vs.VideoNode) -> None:
    clip = with_props(bikes_small[:14], 10, _SceneChangeNext=1)
    f = core.rife.RIFE(clip, sc_method="props").get_frame(21)
    assert str(f.props["VsrifeAction"]) == "cut"
    assert same_pixels(f, clip.get_frame(10))


def test_honours_the_scenechange_plugin(bikes_small: vs.VideoNode) -> None:
    """vapoursynth-scenechange (core.scd.Detect) sets _SceneChangeNext/_SceneChangePrev: "auto" uses them."""
    if not hasattr(core, "scd"):
        pytest.skip("vapoursynth-scenechange (core.scd) is not installed")
    detected = core.scd.Detect(bikes_small)
    flagged = set()
    for i, f in enumerate(detected.frames()):
        if f.props.get("_SceneChangeNext"):
            flagged.add(i)
        if f.props.get("_SceneChangePrev") and i > 0:
            flagged.add(i - 1)
    flagged.discard(bikes_small.num_frames - 1)  # no pair after the last frame
    assert flagged >= BIKES_CUTS  # the plugin finds the real cuts (and, being cruder, some more)
    assert _cuts(detected) == flagged
    assert _cuts(detected, sc_method="props") == flagged
    assert _cuts(detected, sc_method="builtin") == BIKES_CUTS


def _marks(clip: vs.VideoNode) -> tuple[set[int], set[int]]:
    """Output frames with _SceneChangeNext = 1 and with _SceneChangePrev = 1."""
    nxt, prev = set(), set()
    for n, f in enumerate(clip.frames()):
        if f.props.get("_SceneChangeNext"):
            nxt.add(n)
        if f.props.get("_SceneChangePrev"):
            prev.add(n)
    return nxt, prev


@pytest.mark.parametrize("tagged", [True, False], ids=["scd-props", "builtin"])
@pytest.mark.parametrize("factor", [2, 3])
def test_output_marks_the_cut_where_it_is(bikes_small: vs.VideoNode, tagged: bool, factor: int) -> None:
    """Output frames carry scene-change props of their own, not their left source frame's: the cut between
    source frames 9|10 lies between the last output frame of pair 9 and source frame 10's output frame. A
    second RIFE (4x as 2x twice) then finds that one cut, no false cut inside a shot."""
    clip = bikes_small[20:34]  # the real cut 29|30 at 9|10
    if tagged:  # as misc.SCDetect / scd.Detect mark it
        clip = with_props(with_props(clip, 9, _SceneChangeNext=1), 10, _SceneChangePrev=1)
    first = core.rife.RIFE(clip, factor_num=factor, **CLASSIFY_ONLY)
    last_of_pair, source_10 = factor * 10 - 1, factor * 10
    nxt, prev = _marks(first)
    assert nxt == {last_of_pair}
    assert prev == ({source_10} if tagged else set())  # a built-in detection cannot mark frame 10 itself
    again = core.rife.RIFE(first, sc_method="props", **CLASSIFY_ONLY)
    found = actions(again, range(1, 2 * (first.num_frames - 1), 2))
    assert {n // 2 for n, a in found.items() if a == "cut"} == {last_of_pair}
