"""Every format family goes through the filter in its own format, on a real triplet.

The triplet is bikes.mp4 frames 40, 41, 42 (a moving taxi; the average of 40 and 42 is 25.6 dB from 41 on
luma, RIFE about 33 dB), downscaled to 160x68. The filter gets frames 40 and 42 only; its t = 1/2 frame is
compared with the real frame 41 in each format.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
from helpers.vsclips import duration, normalised, psnr, same_pixels

vs = pytest.importorskip("vapoursynth")

core = vs.core

LEFT, MIDDLE, RIGHT = 40, 41, 42
WIDTH, HEIGHT = 160, 68
MARGIN_DB = 3.0  # RIFE's t = 1/2 frame must beat the average of the neighbours by this much
BLOCKS = (2, 4)  # region grid (rows, columns) for the block-mean sanity check

FORMATS = [
    "RGB24",
    "RGB48",
    "RGBH",
    "RGBS",
    "YUV420P8",
    "YUV420P10",
    "YUV422P8",
    "YUV444P16",
    "YUV444PS",
    "GRAY8",
    "GRAY16",
    "GRAYS",
]


@pytest.fixture(scope="module")
def base(sample_clip) -> vs.VideoNode:
    """bikes, 160x68 YUV420P8 limited range, tagged BT.709 (the file says "unspecified")."""
    clip = core.resize.Bicubic(sample_clip("bikes"), WIDTH, HEIGHT)
    return core.std.SetFrameProps(clip, _Matrix=1)


def _convert(clip: vs.VideoNode, name: str) -> vs.VideoNode:
    fmt = getattr(vs, name)
    return core.resize.Bicubic(clip, format=fmt)


def _triplet(clip: vs.VideoNode) -> vs.VideoNode:
    """Frames LEFT and RIGHT, each with its own custom props (plus one shared)."""
    a = core.std.SetFrameProps(clip[LEFT], MyTag="left", MySource=LEFT, MyShared=7)
    b = core.std.SetFrameProps(clip[RIGHT], MyTag="right", MySource=RIGHT, MyShared=7)
    return a + b


def _block_means(planes: list[np.ndarray]) -> Iterator[float]:
    rows, cols = BLOCKS
    for p in planes:
        h, w = p.shape
        for r in range(rows):
            for c in range(cols):
                yield float(p[r * h // rows : (r + 1) * h // rows, c * w // cols : (c + 1) * w // cols].mean())


@pytest.mark.parametrize("name", FORMATS)
def test_format_round_trip_on_real_triplet(base: vs.VideoNode, name: str) -> None:
    clip = _convert(base, name)
    assert clip.format.id == getattr(vs, name)
    pair = _triplet(clip)
    out = core.rife.RIFE(pair)

    assert out.format.id == clip.format.id, f"{out.format.name} != {clip.format.name}"
    assert (out.width, out.height) == (clip.width, clip.height)
    assert out.num_frames == 4 and (out.fps.numerator, out.fps.denominator) == (50, 1)

    frames = [out.get_frame(n) for n in range(4)]
    left, right = pair.get_frame(0), pair.get_frame(1)
    # t = 0 frames and the repeat after the last source frame are the inputs, bit for bit
    assert same_pixels(frames[0], left)
    assert same_pixels(frames[2], right)
    assert same_pixels(frames[3], right)
    assert [str(f.props["VsrifeAction"]) for f in frames] == ["source", "interpolate", "source", "source"]
    assert frames[1].props["VsrifeSource"] == 0 and frames[1].props["VsrifeT"] == 0.5

    # props of the left source frame are carried over (not the right one's)
    for n, tag, src in ((0, "left", LEFT), (1, "left", LEFT), (2, "right", RIGHT), (3, "right", RIGHT)):
        props = frames[n].props
        got = props["MyTag"]
        assert (got.decode() if isinstance(got, bytes) else got) == tag, n
        assert props["MySource"] == src and props["MyShared"] == 7
    for f in frames:
        assert (f.props["_DurationNum"], f.props["_DurationDen"]) == (1, 50) and duration(f) == Fraction(1, 50)
    # every prop of the left frame (_Matrix, _Range, _ChromaLocation, _PictType...) is on the interpolated frame
    carried = {k: v for k, v in frames[1].props.items() if not k.startswith(("Vsrife", "_Duration"))}
    expected = {k: v for k, v in left.props.items() if not k.startswith("_Duration")}
    assert carried == expected

    # quality: closer to the real middle frame than the average of the neighbours
    truth = normalised(clip.get_frame(MIDDLE))
    a, b = normalised(left), normalised(right)
    average = [(x + y) / 2 for x, y in zip(a, b, strict=True)]
    mid = normalised(frames[1])
    assert all(np.isfinite(p).all() for p in mid)
    got, baseline = psnr(mid, truth), psnr(average, truth)
    assert got > baseline + MARGIN_DB, f"{name}: RIFE {got:.2f} dB vs neighbour average {baseline:.2f} dB"
    # region-wise sanity: every plane's block means follow the average of the neighbours (no swapped planes,
    # range or offset errors, no shifted image)
    diffs = [abs(x - y) for x, y in zip(_block_means(mid), _block_means(average), strict=True)]
    assert max(diffs) < 0.04, f"{name}: block means off by {max(diffs):.3f}"


def _rgb_reference(yuv: vs.VideoNode, matrix: int, full: bool) -> vs.VideoNode:
    """The same interpolation done in RGBS with core.resize doing both conversions from the clip's tags."""
    rgb = core.resize.Bicubic(yuv, format=vs.RGBS)
    out = core.rife.RIFE(rgb, precision="fp32")
    return core.resize.Bicubic(out, format=yuv.format.id, matrix=matrix, range=int(full))


def _max_diff(a: vs.VideoFrame, b: vs.VideoFrame) -> int:
    return max(int(np.abs(np.asarray(a[p], np.int32) - np.asarray(b[p], np.int32)).max()) for p in range(3))


def test_range_prop_is_honoured(base: vs.VideoNode) -> None:
    """Same YUV codes tagged full or limited: the filter converts each as tagged (it matches doing the work in
    RGB with core.resize), so the two interpolated frames differ, and limited range keeps luma in 16..235."""
    full_codes = core.resize.Bicubic(base, range=1)  # the picture in full-range codes (luma down to ~20)
    pair = full_codes[LEFT] + full_codes[RIGHT]
    results = {}
    for full in (True, False):
        tagged = core.std.SetFrameProps(pair, _Range=int(full))
        out = core.rife.RIFE(tagged, precision="fp32").get_frame(1)
        ref = _rgb_reference(tagged, 1, full).get_frame(1)
        assert _max_diff(out, ref) <= 1, f"range {'full' if full else 'limited'}: differs from the RGB path"
        results[full] = out
    y_full, y_limited = np.asarray(results[True][0]), np.asarray(results[False][0])
    assert not same_pixels(results[True], results[False])
    assert psnr(normalised(results[True]), normalised(results[False])) < 50
    assert y_limited.min() >= 16 and y_limited.max() <= 235
    assert y_full.max() > 235  # full-range highlights survive


def test_matrix_prop_is_honoured(base: vs.VideoNode) -> None:
    pair = base[LEFT] + base[RIGHT]
    results = {}
    for matrix in (1, 5):  # BT.709, BT.470BG (601)
        tagged = core.std.SetFrameProps(pair, _Matrix=matrix)
        out = core.rife.RIFE(tagged, precision="fp32").get_frame(1)
        assert _max_diff(out, _rgb_reference(tagged, matrix, False).get_frame(1)) <= 1, matrix
        results[matrix] = out
    assert not same_pixels(results[1], results[5])


@pytest.mark.parametrize(("prop", "value"), [("_Matrix", 3), ("_Range", 5), ("_ChromaLocation", 7)])
def test_unusable_colour_prop_names_frame_and_prop(base: vs.VideoNode, prop: str, value: int) -> None:
    pair = core.std.SetFrameProps(base[LEFT] + base[RIGHT], **{prop: value})
    with pytest.raises(vs.Error) as info:
        core.rife.RIFE(pair).get_frame(1)
    last = str(info.value).strip().splitlines()[-1]
    assert "RIFE: frame 1: unsupported" in last and f"{prop}={value}" in last, last


@pytest.mark.parametrize("field_based", [1, 2])
def test_interlaced_clips_are_refused_where_frames_would_be_made(base: vs.VideoNode, field_based: int) -> None:
    """Interpolating combed frames makes garbage: the first generated frame names the prop and the way out;
    source frames still pass, and a clip marked progressive interpolates."""
    pair = base[LEFT] + base[RIGHT]
    out = core.rife.RIFE(core.std.SetFieldBased(pair, field_based))
    assert same_pixels(out.get_frame(0), pair.get_frame(0))
    with pytest.raises(vs.Error) as info:
        out.get_frame(1)
    last = str(info.value).strip().splitlines()[-1]
    assert f"RIFE: frame 1: the clip is interlaced (_FieldBased={field_based})" in last and "SetFieldBased" in last
    progressive = core.rife.RIFE(core.std.SetFieldBased(core.std.SetFieldBased(pair, field_based), 0))
    assert str(progressive.get_frame(1).props["VsrifeAction"]) == "interpolate"


def test_unspecified_matrix_means_bt709(base: vs.VideoNode) -> None:
    """bikes.mp4 says _Matrix=2 (unspecified): treated as BT.709."""
    pair = base[LEFT] + base[RIGHT]
    a = core.rife.RIFE(core.std.SetFrameProps(pair, _Matrix=2)).get_frame(1)
    b = core.rife.RIFE(core.std.SetFrameProps(pair, _Matrix=1)).get_frame(1)
    assert same_pixels(a, b)


def _moving_square(fmt: int, frames: int = 3) -> vs.VideoNode:
    """A 16x16 square moving 16 px to the right per frame on black (full-range values)."""

    def draw(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(out.format.num_planes):
            a = np.asarray(out[p])
            a[:] = 0
            a[24:40, 16 + 16 * n : 32 + 16 * n] = 255
        return out

    blank = core.std.BlankClip(width=128, height=64, format=fmt, length=frames, fpsnum=24)
    return core.std.SetFrameProps(core.std.ModifyFrame(blank, blank, draw), _Range=1)


def test_alpha_mask_is_interpolated_with_the_frame(base: vs.VideoNode) -> None:
    """Generated frames carried their left frame's ``_Alpha``: a moving object's mask stayed behind it. Now
    the mask is interpolated by the network like a grey picture (equal to RIFE on the mask clip itself),
    and mixed at t where the colour is mixed (a cut with on_cut="blend")."""
    alpha = _moving_square(vs.GRAY8)
    clip = core.std.ClipToProp(_moving_square(vs.RGB24), alpha, prop="_Alpha")
    out = core.rife.RIFE(clip)
    generated = out.get_frame(1)
    assert generated.props["VsrifeAction"] == "interpolate"

    def columns(plane: object) -> tuple[int, int]:
        cols = np.nonzero(np.asarray(plane)[32] > 127)[0]
        return int(cols.min()), int(cols.max())

    mask = generated.props["_Alpha"]
    assert columns(generated[0]) == columns(mask[0]) == (24, 39)  # both half way (the left one: 16..31)
    assert same_pixels(mask, core.rife.RIFE(alpha).get_frame(1))
    assert same_pixels(out.get_frame(2).props["_Alpha"], alpha.get_frame(1))  # source frames keep their own
    # on real footage across a cut: colour and mask both mixed at t
    shots = core.resize.Bicubic(base[29:31], format=vs.RGB24)  # bikes cuts between 29 and 30
    mask_clip = core.std.SetFrameProps(core.std.ShufflePlanes(shots, 1, vs.GRAY), _Range=1)
    cut = core.rife.RIFE(core.std.ClipToProp(shots, mask_clip, prop="_Alpha"), on_cut="blend").get_frame(1)
    assert cut.props["VsrifeAction"] == "cut"
    a, b = (np.asarray(mask_clip.get_frame(k)[0], np.float32) for k in (0, 1))
    assert np.array_equal(np.asarray(cut.props["_Alpha"][0]), np.rint((a + b) / 2).astype(np.uint8))
    # a mask on one neighbour only: none rather than a stale one
    partial = core.std.ClipToProp(clip[0], alpha[0], prop="_Alpha") + clip[1:].std.RemoveFrameProps("_Alpha")
    assert "_Alpha" not in core.rife.RIFE(partial).get_frame(1).props
