"""skip=True: pairs of (near-)identical neighbours are copied, not interpolated.

bigbuckbunny.mp4 repeats a frame every 25: pairs 6|7, 31|32, 56|57, 81|82 and 106|107. After lossy coding
the repeats are not bit-identical: the filter's RGB PSNR between them is 51.9..56.2 dB at 1280x720 and
57.1..61.5 dB at 320x180 (bilinear), while the closest other pair (117|118) is 45.4 / 49.1 dB.
"""

from __future__ import annotations

import pytest
from helpers.vsclips import same_pixels

vs = pytest.importorskip("vapoursynth")


core = vs.core

DUPLICATES = [6, 31, 56, 81, 106]  # pair (i, i + 1) shows the same picture
THRESHOLD_320 = 53.0  # between the repeats (>= 57.1 dB) and everything else (<= 49.1 dB) at 320x180


@pytest.fixture(scope="module")
def bbb(sample_clip) -> vs.VideoNode:
    return sample_clip("bigbuckbunny")


@pytest.fixture(scope="module")
def bbb_small(bbb: vs.VideoNode) -> vs.VideoNode:
    return core.resize.Bilinear(bbb, 320, 180)


def test_repeated_frames_are_static_copies(bbb_small: vs.VideoNode) -> None:
    out = core.rife.RIFE(bbb_small, skip=True, skip_threshold=THRESHOLD_320)
    for i in DUPLICATES:
        f = out.get_frame(2 * i + 1)
        assert str(f.props["VsrifeAction"]) == "static", i
        assert same_pixels(f, bbb_small.get_frame(i)), i
        assert f.props["VsrifeSource"] == i and f.props["VsrifeT"] == 0.5
    # neighbours of a repeat and the closest non-repeat pair of the clip are interpolated
    for i in (5, 7, 117):
        f = out.get_frame(2 * i + 1)
        assert str(f.props["VsrifeAction"]) == "interpolate", i
        assert not same_pixels(f, bbb_small.get_frame(i)), i


def test_skip_false_interpolates_repeated_frames(bbb_small: vs.VideoNode) -> None:
    out = core.rife.RIFE(bbb_small)  # skip defaults to False
    f = out.get_frame(2 * 106 + 1)
    assert str(f.props["VsrifeAction"]) == "interpolate"


def test_bit_identical_neighbours_are_static_with_the_default_threshold(bbb_small: vs.VideoNode) -> None:
    clip = bbb_small[10] * 2 + bbb_small[11]
    out = core.rife.RIFE(clip, skip=True)
    assert str(out.get_frame(1).props["VsrifeAction"]) == "static"
    assert same_pixels(out.get_frame(1), clip.get_frame(0))
    assert str(out.get_frame(3).props["VsrifeAction"]) == "interpolate"


def test_default_threshold_catches_repeats_at_native_resolution(bbb: vs.VideoNode) -> None:
    """A native-resolution crop (no resampling, so the coding noise is as at 1280x720) of repeat 106|107."""
    crop = core.std.CropAbs(bbb, 320, 176, 480, 272)[106:108]
    f = core.rife.RIFE(crop, skip=True).get_frame(1)
    assert str(f.props["VsrifeAction"]) == "static"
