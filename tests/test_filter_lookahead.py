"""Look-ahead and run-ahead (CUDA defaults): preparing source frame i + 2 early and interpolating the
next pair before this frame is written change no output bit."""

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
    for variant, (lookahead, pipeline, shuffle) in {
        "off": (False, None, False),
        "lookahead": (True, False, False),
        "run-ahead": (True, None, False),
        "run-ahead-random": (True, True, True),
    }.items():
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
    for variant in ("lookahead", "run-ahead", "run-ahead-random"):
        assert results[variant][0] == results["off"][0]
        for n, planes in results["off"][1].items():
            for a, b in zip(planes, results[variant][1][n], strict=True):
                assert np.array_equal(a, b), (variant, n)
