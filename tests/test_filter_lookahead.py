"""Look-ahead and run-ahead (CUDA defaults): preparing source frame i + 2 early and interpolating the
next pair before this frame is written change no output bit; nor does mapping source frames per output
frame (long rate periods) instead of with SelectEvery."""

from __future__ import annotations

import random

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

import vsrife.filter.rife as rife_module  # noqa: E402
from vsrife.filter import RIFE  # noqa: E402
from vsrife.filter.source import open_video  # noqa: E402
from vsrife.samples import sample_path  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="needs BestSource (core.bs)")


def _frames(clip: vs.VideoNode, order: list[int]) -> dict[int, list[np.ndarray]]:
    return {n: [np.asarray(f[p]).copy() for p in range(f.format.num_planes)] for n in order
            for f in [clip.get_frame(n)]}  # fmt: skip


@pytest.mark.parametrize(("num", "den"), [(2, 1), (5, 2)])
def test_lookahead_changes_nothing(num: int, den: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off, look-ahead only, and look-ahead + run-ahead (in order and in random order) give the same bits."""
    src = vs.core.resize.Bilinear(open_video(sample_path("bikes"))[26:34], 160, 68)  # a cut at 29|30
    ahead: list[tuple[int, object]] = []  # pairs submitted by the run-ahead
    run_ahead, submit = rife_module._Renderer._run_ahead, rife_module._Renderer._submit
    state = {"inside": False}

    def spy_run_ahead(self: rife_module._Renderer, *args: object) -> None:
        state["inside"] = True
        try:
            run_ahead(self, *args)  # type: ignore[arg-type]
        finally:
            state["inside"] = False

    def spy_submit(self: rife_module._Renderer, i: int, t: object, *args: object) -> object:
        if state["inside"]:
            ahead.append((i, t))
        return submit(self, i, t, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(rife_module._Renderer, "_run_ahead", spy_run_ahead)
    monkeypatch.setattr(rife_module._Renderer, "_submit", spy_submit)
    results = {}
    variants = {
        "off": (False, None, False, rife_module._MAX_OFFSETS),
        "lookahead": (True, False, False, rife_module._MAX_OFFSETS),
        "run-ahead": (True, None, False, rife_module._MAX_OFFSETS),
        "run-ahead-random": (True, True, True, rife_module._MAX_OFFSETS),
        # source frames picked per output frame (long periods) instead of SelectEvery
        "picked": (False, None, True, 0),
        "picked-run-ahead": (True, None, False, 0),
    }
    for variant, (lookahead, pipeline, shuffle, max_offsets) in variants.items():
        monkeypatch.setattr(rife_module, "_MAX_OFFSETS", max_offsets)
        monkeypatch.setattr(rife_module, "_LOOKAHEAD", lookahead)
        monkeypatch.setattr(rife_module, "_PIPELINE", pipeline)
        out = RIFE(src, factor_num=num, factor_den=den, device="cpu")
        order = list(range(out.num_frames))
        if shuffle:
            random.Random(0).shuffle(order)  # random access: look-ahead / run-ahead work sometimes unused
        ahead.clear()
        results[variant] = (out.num_frames, _frames(out, order))
        if variant == "run-ahead":  # in order: every interpolated pair but the first is computed ahead
            actions = [str(out.get_frame(n).props["VsrifeAction"]) for n in range(out.num_frames)]
            interpolated = actions.count("interpolate")
            assert interpolated >= 6
            assert len(ahead) == len(set(ahead)) >= interpolated - 2, (ahead, actions)
    for variant in list(variants)[1:]:
        assert results[variant][0] == results["off"][0]
        for n, planes in results["off"][1].items():
            for a, b in zip(planes, results[variant][1][n], strict=True):
                assert np.array_equal(a, b), (variant, n)


@pytest.mark.parametrize("pipeline", [False, True])
def test_a_failing_look_ahead_frame_fails_only_its_own_frames(pipeline: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frame i + 2 prepared ahead with props the conversion cannot honour: the output frames of pair (i, i + 1)
    still render; the error comes with the frames that really need frame i + 2, naming them."""
    monkeypatch.setattr(rife_module, "_LOOKAHEAD", True)
    monkeypatch.setattr(rife_module, "_PIPELINE", pipeline)
    frames = [
        vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=1, color=[100 + 3 * k, 128, 128])
        for k in range(6)
    ]
    frames[2] = vs.core.std.SetFrameProps(frames[2], _Matrix=3)  # "reserved": no conversion exists
    out = RIFE(vs.core.std.Splice(frames), device="cpu", sc=False)
    for n in (0, 1, 2):  # 2 is source frame 1: needs no conversion of frame 2
        out.get_frame(n)
    assert str(out.get_frame(1).props["VsrifeAction"]) == "interpolate"
    with pytest.raises(vs.Error, match=r"RIFE: frame 3: .*_Matrix"):  # pair (1, 2) needs frame 2
        out.get_frame(3)
