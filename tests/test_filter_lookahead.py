"""Look-ahead (CUDA default): preparing source frame i + 2 early changes no output bit."""

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
    src = vs.core.resize.Bilinear(open_video(sample_path("bikes"))[26:34], 160, 68)  # a cut at 29|30
    results = {}
    for lookahead in (False, True):
        monkeypatch.setattr(rife_module, "_LOOKAHEAD", lookahead)
        out = RIFE(src, factor_num=num, factor_den=den, device="cpu")
        order = list(range(out.num_frames))
        if lookahead:
            random.Random(0).shuffle(order)  # random access: the look-ahead frame is sometimes unused
        results[lookahead] = (out.num_frames, _frames(out, order))
    assert results[False][0] == results[True][0]
    for n, planes in results[False][1].items():
        for a, b in zip(planes, results[True][1][n], strict=True):
            assert np.array_equal(a, b), n
