"""vsrife.filter.convert against VapourSynth's own resize (zimg), on real footage.

Inputs in every format are made from the ``bikes`` sample with ``core.resize.Bicubic`` (cropped to 628x272 so
that every plane has padded, non-contiguous rows) and read back as read-only frames, exactly as the filter
sees them. ``to_rgb`` must equal ``core.resize.Bicubic(..., format=RGBS)`` to float rounding (the chroma
upsampler replicates zimg's Catmull-Rom taps and borders), ``from_rgb`` must equal zimg's conversion back
to within one code value, and ``from_rgb(to_rgb(x))`` must return ``x`` (exactly where that is possible).
Everything runs on CPU, and again on CUDA (``-m cuda``) when a GPU is present.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

vs = pytest.importorskip("vapoursynth")

from vsrife.filter.convert import ColorConverter, PlaneFormat, _stage  # noqa: E402

core = vs.core
COLOR_PROPS = ("_Matrix", "_Range", "_ColorRange", "_ChromaLocation", "_Primaries", "_Transfer")
WIDTH, HEIGHT = 628, 272  # bikes is 640x272; 628 keeps 4:1:0 / 4:1:1 legal and makes every row strided

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")],
    ),
]


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def source() -> Any:
    """Two real frames (bikes) as a VapourSynth RGB24 clip, cropped to WIDTH x HEIGHT."""
    from vsrife.media import read_frames
    from vsrife.samples import sample_path

    try:
        frames = read_frames(sample_path("bikes"), 0, 2)
    except (RuntimeError, OSError) as exc:  # no cached sample and no network / no ffmpeg
        pytest.skip(f"bikes sample unavailable: {exc}")
    h, w = frames.shape[1:3]
    blank = core.std.BlankClip(width=w, height=h, format=vs.RGB24, length=len(frames))

    def fill(n: int, f: Any) -> Any:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), frames[n, :, :, p])
        return out

    return core.std.ModifyFrame(blank, blank, fill).std.Crop(right=w - WIDTH, bottom=h - HEIGHT)


def family(fmt: int) -> int:
    return core.get_video_format(fmt).color_family


def convert(clip: Any, fmt: int, matrix: str = "709", rng: str = "limited", loc: str = "left") -> Any:
    """``clip`` (RGB) -> ``fmt`` with zimg; the result carries _Matrix / _Range / _ChromaLocation props."""
    kw: dict[str, Any] = {"format": fmt, "range_s": rng}
    if family(fmt) != vs.RGB:
        kw["matrix_s"] = matrix
    if family(fmt) == vs.YUV:
        kw["chromaloc_s"] = loc
    return core.resize.Bicubic(clip, **kw)


def to_rgbs(clip: Any, matrix: str = "709", rng: str = "limited", loc: str = "left") -> Any:
    """zimg's RGBS rendering of ``clip`` with explicit input colorimetry (frame props would override the
    ``*_in`` arguments, so they are removed first)."""
    kw: dict[str, Any] = {"format": vs.RGBS, "range_in_s": rng}
    if family(clip.format.id) == vs.YUV:
        kw.update(matrix_in_s=matrix, chromaloc_in_s=loc)
    return core.resize.Bicubic(core.std.RemoveFrameProps(clip, list(COLOR_PROPS)), **kw)


def read(clip: Any, n: int = 0) -> tuple[list[np.ndarray], dict[str, Any], Any]:
    """Planes as the filter gets them (read-only, strided views), the frame props, the frame."""
    frame = clip.get_frame(n)
    return [np.asarray(frame[p]) for p in range(frame.format.num_planes)], dict(frame.props), frame


def rgb_array(clip: Any, n: int = 0) -> np.ndarray:
    planes, _, _ = read(clip, n)
    return np.stack(planes).astype(np.float32)


def converter(clip: Any, device: str, **kw: Any) -> ColorConverter:
    return ColorConverter(PlaneFormat.from_vs(clip.format), clip.width, clip.height, torch.device(device), **kw)


def code_unit(fmt: int) -> float:
    """One 8-bit code value in this format's units."""
    f = core.get_video_format(fmt)
    return 1 / 255 if f.sample_type == vs.FLOAT else float(1 << (f.bits_per_sample - 8))


def back(planes: list[torch.Tensor]) -> list[np.ndarray]:
    return [p.cpu().numpy().astype(np.float64) for p in planes]


# ---------------------------------------------------------------------------------------------- to_rgb


SUBSAMPLED = [vs.YUV420P8, vs.YUV422P10, vs.YUV420PS, vs.YUV410P8]
FULL_RES = [vs.YUV444P16, vs.YUV444PH, vs.YUV444P8]
YUV_CASES = [
    (fmt, matrix, rng, loc)
    for fmt in SUBSAMPLED + FULL_RES
    for matrix in ("709", "470bg", "2020ncl")
    for rng in ("limited", "full")
    for loc in ("left", "center")
] + [(vs.YUV420P8, "ycgco", rng, "left") for rng in ("limited", "full")]
YUV_CASES += [(vs.YUV420P10, "709", "limited", loc) for loc in ("top_left", "top", "bottom_left", "bottom")]
OTHER_CASES = [
    (fmt, rng)
    for fmt in (vs.GRAY8, vs.GRAY16, vs.GRAYS, vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBS, vs.RGBH)
    for rng in ("full", "limited")
]


def _name(fmt: int) -> str:
    return core.get_video_format(fmt).name


def _ids(case: tuple[Any, ...]) -> str:
    return "-".join([core.get_video_format(case[0]).name, *case[1:]])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", YUV_CASES, ids=_ids)
def test_to_rgb_yuv_matches_zimg(source: Any, case: tuple[int, str, str, str], device: str) -> None:
    """Max |ours - resize.Bicubic| <= 1e-5 for every YUV format, subsampled ones included (measured <= 4e-7)."""
    fmt, matrix, rng, loc = case
    clip = convert(source, fmt, matrix, rng, loc)
    planes, props, _ = read(clip)
    ours = converter(clip, device).to_rgb(planes, props)
    assert ours.shape == (1, 3, HEIGHT, WIDTH) and ours.dtype == torch.float32 and ours.device.type == device
    ref = rgb_array(to_rgbs(clip, matrix, rng, loc))
    err = np.abs(ours[0].cpu().numpy() - ref)
    assert err.max() <= 1e-5, f"max {err.max():.3g}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", OTHER_CASES, ids=_ids)
def test_to_rgb_rgb_gray_matches_zimg(source: Any, case: tuple[int, str], device: str) -> None:
    fmt, rng = case
    clip = convert(source, fmt, rng=rng)
    planes, props, _ = read(clip)
    ours = converter(clip, device).to_rgb(planes, props)[0].cpu().numpy()
    ref = rgb_array(to_rgbs(clip, rng=rng))
    assert np.abs(ours - ref).max() <= 1e-5
    if family(fmt) == vs.GRAY:
        assert np.array_equal(ours[0], ours[1]) and np.array_equal(ours[0], ours[2])


# ---------------------------------------------------------------------------------------------- from_rgb


DOWN_CASES = [(fmt, "709", "limited", loc) for fmt in SUBSAMPLED for loc in ("left", "center", "top_left")]
DOWN_CASES += [(vs.YUV444P16, "2020ncl", "full", "left"), (vs.YUV422P10, "470bg", "full", "center")]
DOWN_CASES += [(vs.YUV420P16, "ycgco", "limited", "bottom")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", DOWN_CASES, ids=_ids)
def test_from_rgb_matches_zimg(source: Any, case: tuple[int, str, str, str], device: str) -> None:
    """The default (bicubic) chroma downsampler is zimg's: within one code value of resize.Bicubic."""
    fmt, matrix, rng, loc = case
    rgbs = core.resize.Bicubic(source, format=vs.RGBS)
    ref_planes, props, _ = read(convert(rgbs, fmt, matrix, rng, loc))
    conv = ColorConverter(PlaneFormat.from_vs(core.get_video_format(fmt)), WIDTH, HEIGHT, torch.device(device))
    ours = back(conv.from_rgb(torch.from_numpy(rgb_array(rgbs)), props))
    float_fmt = core.get_video_format(fmt).sample_type == vs.FLOAT
    for mine, ref in zip(ours, ref_planes, strict=True):
        assert mine.shape == ref.shape
        assert np.abs(mine - ref).max() <= (1e-5 if float_fmt else 1.0)


# ---------------------------------------------------------------------------------------------- round trip


EXACT_FORMATS = [
    vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBS, vs.RGBH, vs.GRAY8, vs.GRAY16, vs.GRAYS, vs.GRAYH,
    vs.YUV444P8, vs.YUV444P10, vs.YUV444P16,
]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rng", ["limited", "full"])
@pytest.mark.parametrize("fmt", EXACT_FORMATS, ids=_name)
def test_round_trip_exact(source: Any, fmt: int, rng: str, device: str) -> None:
    """RGB / GRAY (integer and float) and integer 4:4:4 come back bit-exact."""
    clip = convert(source, fmt, "470bg", rng)
    conv = converter(clip, device)
    for n in range(2):
        planes, props, _ = read(clip, n)
        out = conv.from_rgb(conv.to_rgb(planes, props), props)
        for mine, orig in zip(out, planes, strict=True):
            assert mine.dtype == conv.fmt.torch_dtype and mine.is_contiguous()
            np.testing.assert_array_equal(mine.cpu().numpy(), orig)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fmt", [vs.YUV444PS, vs.YUV444PH], ids=["YUV444PS", "YUV444PH"])
def test_round_trip_float_444(source: Any, fmt: int, device: str) -> None:
    """Float 4:4:4 goes through a 3x3 matrix and its inverse in float32: within 3e-7 (measured 1.2e-7)."""
    planes, props, _ = read(convert(source, fmt, "2020ncl"))
    conv = converter(convert(source, fmt), device)
    for mine, orig in zip(back(conv.from_rgb(conv.to_rgb(planes, props), props)), planes, strict=True):
        assert np.abs(mine - orig).max() <= 3e-7


# (format, matrix): luma exact; chroma max / mean error bounds in 8-bit code values (measured in comments)
SUBSAMPLED_RT = [
    (vs.YUV420P8, "709"),  # chroma max 2, mean 0.001
    (vs.YUV420P8, "ycgco"),  # max 2
    (vs.YUV422P10, "709"),  # max 5 (10-bit codes) = 1.25
    (vs.YUV420P16, "470bg"),
    (vs.YUV410P8, "2020ncl"),  # max 2
    (vs.YUV411P8, "709"),
    (vs.YUV440P8, "709"),
    (vs.YUV420PS, "709"),  # max 0.01 (float), i.e. ~2.6 codes
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loc", ["left", "center"])
@pytest.mark.parametrize("case", SUBSAMPLED_RT, ids=_ids)
def test_round_trip_subsampled(source: Any, case: tuple[int, str], loc: str, device: str) -> None:
    """Default (zimg bicubic) downsampler: luma exact, chroma within 3 code values (8-bit units), mean < 0.05."""
    fmt, matrix = case
    unit = code_unit(fmt)
    planes, props, _ = read(convert(source, fmt, matrix, "limited", loc))
    conv = converter(convert(source, fmt), device)
    out = back(conv.from_rgb(conv.to_rgb(planes, props), props))
    luma_err = np.abs(out[0] - planes[0])
    assert luma_err.max() <= (1e-6 if unit < 1 else 0)
    for mine, orig in zip(out[1:], planes[1:], strict=True):
        err = np.abs(mine - orig) / unit
        assert err.max() <= 3 and err.mean() < 0.05, f"chroma max {err.max():.3g} mean {err.mean():.3g}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loc", ["left", "center", "top_left", "bottom"])
@pytest.mark.parametrize(
    "fmt",
    [vs.YUV420P8, vs.YUV422P10, vs.YUV420P16, vs.YUV410P8, vs.YUV411P16],
    ids=lambda f: core.get_video_format(f).name,
)
def test_round_trip_inverse_downsampler_exact(source: Any, fmt: int, loc: str, device: str) -> None:
    """``chroma_down="inverse"`` is a left inverse of the upsampler: 4:2:0 / 4:2:2 / 4:1:x come back bit-exact."""
    planes, props, _ = read(convert(source, fmt, "709", "limited", loc))
    conv = converter(convert(source, fmt), device, chroma_down="inverse")
    out = conv.from_rgb(conv.to_rgb(planes, props), props)
    for mine, orig in zip(out, planes, strict=True):
        np.testing.assert_array_equal(mine.cpu().numpy(), orig)


@pytest.mark.parametrize("chroma_down", ["bicubic", "inverse"])
def test_round_trip_synthetic_gray_and_extremes(chroma_down: Any) -> None:
    """A gray RGB image comes back bit-exact in GRAY formats; out-of-range RGB clamps to the code range."""
    rng = np.random.default_rng(1)
    gray = torch.from_numpy(rng.random((1, 1, 64, 96), dtype=np.float32)).expand(1, 3, 64, 96)
    for fmt in (PlaneFormat("gray", True, 32), PlaneFormat("gray", True, 16)):
        conv = ColorConverter(fmt, 96, 64, "cpu", chroma_down=chroma_down)
        (y,) = conv.from_rgb(gray.to(fmt.torch_dtype).float(), {})
        np.testing.assert_array_equal(y.float().numpy(), gray[0, 0].to(fmt.torch_dtype).float().numpy())
    conv = ColorConverter(PlaneFormat("yuv", False, 10, 1, 1), 96, 64, "cpu", chroma_down=chroma_down)
    magenta = torch.full((1, 3, 64, 96), 4.0) * torch.tensor([1.0, -1.0, 1.0])[:, None, None]  # far out of gamut
    y, u, v = conv.from_rgb(magenta, {})
    assert y.numpy().max() == 0 and u.numpy().min() == 1023 and v.numpy().min() == 1023


# ---------------------------------------------------------------------------------------------- props


def test_absent_props_mean_709_limited_left(source: Any) -> None:
    clip = convert(source, vs.YUV420P8, "709", "limited", "left")
    planes, _, _ = read(clip)
    ours = converter(clip, "cpu").to_rgb(planes, {})[0].numpy()
    assert np.abs(ours - rgb_array(to_rgbs(clip, "709", "limited", "left"))).max() <= 1e-5


@pytest.mark.parametrize(
    "props",
    [
        {"_Matrix": 5},
        {"_Matrix": 6, "_Range": 1},
        {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 1},
        {"_Matrix": 1, "_Range": 1, "_ChromaLocation": 2},
        {"_Matrix": 4, "_ChromaLocation": 5},
        {"_Matrix": 7, "_ChromaLocation": 3},
        {"_Matrix": 8, "_Range": 1},
    ],
)
def test_props_are_read_like_vapoursynth(source: Any, props: dict[str, int]) -> None:
    """Frame props set with std.SetFrameProps: resize (no *_in arguments) reads them, and so do we."""
    base = core.std.RemoveFrameProps(convert(source, vs.YUV420P10), list(COLOR_PROPS))
    clip = core.std.SetFrameProps(base, **props)
    planes, frame_props, _ = read(clip)
    assert not any(k in frame_props for k in {"_Matrix", "_Range", "_ChromaLocation"} - props.keys())
    ours = converter(clip, "cpu").to_rgb(planes, frame_props)[0].numpy()
    ref = rgb_array(core.resize.Bicubic(clip, format=vs.RGBS))
    assert np.abs(ours - ref).max() <= 1e-5


def test_range_prop_numbering(source: Any) -> None:
    """VapourSynth R5x+ ``_Range``: 0 limited, 1 full (vs.Range); deprecated ``_ColorRange``: 0 full, 1 limited."""
    assert int(vs.Range.RANGE_LIMITED) == 0 and int(vs.Range.RANGE_FULL) == 1
    clip = convert(source, vs.YUV444P8)
    planes, _, _ = read(clip)
    conv = converter(clip, "cpu")
    full = conv.to_rgb(planes, {"_Range": 1})
    limited = conv.to_rgb(planes, {"_Range": 0})
    assert torch.equal(conv.to_rgb(planes, {}), limited)
    assert torch.equal(conv.to_rgb(planes, {"_ColorRange": 0}), full)
    assert torch.equal(conv.to_rgb(planes, {"_ColorRange": 1}), limited)
    assert torch.equal(conv.to_rgb(planes, {"_Range": 1, "_ColorRange": 1}), full)  # _Range wins
    assert not torch.allclose(full, limited)
    ref = rgb_array(to_rgbs(clip, rng="full"))
    assert np.abs(full[0].numpy() - ref).max() <= 1e-5


def test_matrix_prop_changes_result_consistently(source: Any) -> None:
    clip = convert(source, vs.YUV420P8, "470bg")
    planes, _, _ = read(clip)
    conv = converter(clip, "cpu")
    as_601 = conv.to_rgb(planes, {"_Matrix": 5})[0].numpy()
    as_709 = conv.to_rgb(planes, {"_Matrix": 1})[0].numpy()
    assert np.abs(as_601 - rgb_array(to_rgbs(clip, "470bg"))).max() <= 1e-5
    assert np.abs(as_709 - rgb_array(to_rgbs(clip, "709"))).max() <= 1e-5
    assert np.abs(as_601 - as_709).mean() > 1e-3
    # unspecified / RGB matrix values fall back to BT.709; BT.2020 CL is approximated by NCL
    assert np.array_equal(conv.to_rgb(planes, {"_Matrix": 2})[0].numpy(), as_709)
    assert np.array_equal(conv.to_rgb(planes, {"_Matrix": 0})[0].numpy(), as_709)
    assert torch.equal(conv.to_rgb(planes, {"_Matrix": 10}), conv.to_rgb(planes, {"_Matrix": 9}))


def test_defaults_for_rgb_and_gray_are_full_range(source: Any) -> None:
    """Absent ``_Range``: RGB and GRAY are full range (zimg assumes limited for GRAY; full never clips masks)."""
    gray = PlaneFormat("gray", False, 8)
    conv = ColorConverter(gray, 4, 2, "cpu")
    plane = np.array([[0, 16, 235, 255]] * 2, dtype=np.uint8)
    np.testing.assert_allclose(conv.to_rgb([plane], {})[0, 0, 0].numpy(), [0, 16 / 255, 235 / 255, 1], atol=1e-7)
    np.testing.assert_allclose(conv.to_rgb([plane], {"_Range": 0})[0, 1, 0, 1:3].numpy(), [0, 1], atol=1e-7)
    rgb = core.std.RemoveFrameProps(convert(source, vs.RGB24, rng="full"), "_Range")
    planes, props, _ = read(rgb)
    ours = converter(rgb, "cpu").to_rgb(planes, props)[0].numpy()
    assert np.abs(ours - rgb_array(core.resize.Bicubic(rgb, format=vs.RGBS))).max() <= 1e-6
    limited = core.std.SetFrameProps(rgb, _Range=0)  # limited-range RGB is honoured, as in resize
    planes, props, _ = read(limited)
    ours = converter(limited, "cpu").to_rgb(planes, props)[0].numpy()
    assert np.abs(ours - rgb_array(core.resize.Bicubic(limited, format=vs.RGBS))).max() <= 1e-5


def test_per_frame_props_switch(source: Any) -> None:
    """Props are honoured per call (caches keyed by matrix / range / siting)."""
    clip = convert(source, vs.YUV420P8)
    planes, _, _ = read(clip)
    conv = converter(clip, "cpu")
    results = [conv.to_rgb(planes, p)[0].numpy() for p in ({"_Matrix": 1}, {"_Matrix": 5}, {"_Matrix": 1})]
    assert np.array_equal(results[0], results[2]) and not np.array_equal(results[0], results[1])
    left = conv.to_rgb(planes, {"_ChromaLocation": 0})
    assert not torch.equal(left, conv.to_rgb(planes, {"_ChromaLocation": 1}))


@pytest.mark.parametrize("props", [{"_Matrix": 14}, {"_Matrix": 3}, {"_ChromaLocation": 6}, {"_Range": 5}])
def test_unsupported_props_raise(props: dict[str, int]) -> None:
    conv = ColorConverter(PlaneFormat("yuv", False, 8, 1, 1), 8, 8, "cpu")
    planes = [np.zeros((8, 8), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)]
    with pytest.raises(ValueError, match=next(iter(props))):
        conv.to_rgb(planes, props)


# ---------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "fmt",
    [vs.YUV420P8, vs.YUV422P10, vs.YUV444P16, vs.YUV420PS, vs.YUV444PH, vs.YUV410P8, vs.GRAY8, vs.GRAYS,
     vs.RGB24, vs.RGB48, vs.RGBS, vs.RGBH],
)  # fmt: skip
def test_plane_format_from_vs(fmt: int) -> None:
    vf = core.get_video_format(fmt)
    pf = PlaneFormat.from_vs(vf)
    assert str(pf).upper() == vf.name.upper()
    assert pf.num_planes == vf.num_planes
    assert pf.numpy_dtype.itemsize == vf.bytes_per_sample
    assert pf.torch_dtype.itemsize == vf.bytes_per_sample
    assert pf.numpy_dtype.kind == ("f" if vf.sample_type == vs.FLOAT else "u")


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((vs.GRAY, vs.INTEGER, 32, 0, 0), "Gray32"),
        ((vs.GRAY, vs.INTEGER, 17, 0, 0), "Gray17"),
        ((vs.RGB, vs.INTEGER, 24, 0, 0), "RGB72"),
        ((vs.YUV, vs.INTEGER, 8, 3, 0), "YUVssw3ssh0P8"),
    ],
)
def test_unsupported_vs_formats_raise(args: tuple[int, ...], name: str) -> None:
    fmt = core.query_video_format(*args)
    assert fmt.name == name
    with pytest.raises(ValueError, match=name):
        PlaneFormat.from_vs(fmt)


def test_variable_format_and_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="variable"):
        PlaneFormat.from_vs(core.std.BlankClip(varformat=True).format)
    with pytest.raises(ValueError, match="variable"):
        PlaneFormat.from_vs(None)
    with pytest.raises(ValueError, match="GRAY"):
        PlaneFormat("gray", True, 64)
    with pytest.raises(ValueError, match="divisible"):
        ColorConverter(PlaneFormat("yuv", False, 8, 1, 1), 7, 8, "cpu")
    with pytest.raises(ValueError, match="shape"):
        ColorConverter(PlaneFormat("gray", False, 8), 8, 8, "cpu").to_rgb([np.zeros((4, 8), np.uint8)], {})


# ---------------------------------------------------------------------------------------------- plumbing


def test_readonly_strided_planes_without_warnings_or_copies(source: Any) -> None:
    clip = convert(source, vs.YUV420P16)
    planes, props, frame = read(clip)
    assert all(not p.flags.writeable and not p.flags.c_contiguous for p in planes)
    conv = converter(clip, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = conv.to_rgb(planes, props)
        out = [p.cpu().numpy() for p in conv.from_rgb(rgb, props)]
    dst = frame.copy()  # what the filter does next: copy into a new frame
    for p, arr in enumerate(out):
        np.copyto(np.asarray(dst[p]), arr)
        assert arr.dtype == np.uint16 and arr.flags.c_contiguous


def test_tensor_planes_and_int16_paths(source: Any) -> None:
    """Torch tensors are accepted as planes; 16-bit data round-trips through the int16 views used on CUDA."""
    clip = convert(source, vs.YUV444P16, rng="full")
    planes, props, _ = read(clip)
    assert max(int(p.max()) for p in planes) > 32767
    conv = converter(clip, "cpu")
    ref = conv.to_rgb(planes, props)
    tensors = [torch.from_numpy(np.array(p)) for p in planes]
    assert tensors[0].dtype == torch.uint16
    assert torch.equal(conv.to_rgb(tensors, props), ref)
    staged = [_stage(p, conv.fmt, pin=False) for p in planes]
    assert staged[0].dtype == torch.int16 and torch.equal(conv.to_rgb(staged, props), ref)
    direct = conv.from_rgb(ref, props)
    conv._direct_uint16 = False  # the CUDA store path
    via_int16 = conv.from_rgb(ref, props)
    for a, b, orig in zip(direct, via_int16, planes, strict=True):
        assert b.dtype == torch.uint16 and torch.equal(a, b)
        np.testing.assert_array_equal(b.numpy(), orig)


def test_from_rgb_does_not_alias_or_modify_input(source: Any) -> None:
    clip = convert(source, vs.RGBS)
    planes, props, _ = read(clip)
    conv = converter(clip, "cpu")
    rgb = conv.to_rgb(planes, props)
    keep = rgb.clone()
    out = conv.from_rgb(rgb, props)
    out[0].fill_(7.0)
    assert torch.equal(rgb, keep)


@pytest.mark.parametrize("fmt", [vs.YUV420P10, vs.GRAY16, vs.RGB24, vs.YUV444PS])
def test_luma(source: Any, fmt: int) -> None:
    clip = convert(source, fmt, "709", "limited")
    planes, props, _ = read(clip)
    conv = converter(clip, "cpu")
    luma = conv.luma(planes, props)
    assert luma.shape == (1, 1, HEIGHT, WIDTH)
    if family(fmt) == vs.RGB:
        rgb = conv.to_rgb(planes, props)[0]
        expect = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    else:
        gray = core.std.ShufflePlanes(clip, 0, vs.GRAY).resize.Point(format=vs.GRAYS, range_in_s="limited")
        expect = torch.from_numpy(rgb_array(gray)[0])
    assert torch.allclose(luma[0, 0], expect, atol=1e-6)


@pytest.mark.parametrize("size", [(8, 8), (16, 6), (12, 20), (24, 10)])
def test_small_frames_match_zimg(size: tuple[int, int]) -> None:
    """Frames barely larger than the kernel (dense fallback, overlapping borders)."""
    w, h = size
    rng = np.random.default_rng(w * h)
    data = {p: rng.integers(16, 236, (h, w) if p == 0 else (h // 2, w // 2), dtype=np.uint8) for p in range(3)}
    blank = core.std.BlankClip(width=w, height=h, format=vs.YUV420P8, length=1)

    def fill(n: int, f: Any) -> Any:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), data[p])
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    planes, props, _ = read(clip)
    for loc in ("left", "center", "top_left"):
        ours = converter(clip, "cpu").to_rgb(planes, {"_ChromaLocation": ["left", "center", "top_left"].index(loc)})
        assert np.abs(ours[0].numpy() - rgb_array(to_rgbs(clip, loc=loc))).max() <= 1e-5
    conv = converter(clip, "cpu", chroma_down="inverse")
    for mine, orig in zip(conv.from_rgb(conv.to_rgb(planes, props), props), planes, strict=True):
        np.testing.assert_array_equal(mine.numpy(), orig)


def test_tiny_frame_runs() -> None:
    """2x2 4:2:0 (one chroma sample; zimg refuses it): still converts and keeps luma exact."""
    conv = ColorConverter(PlaneFormat("yuv", False, 8, 1, 1), 2, 2, "cpu")
    planes = [np.array([[20, 40], [60, 80]], np.uint8), np.array([[100]], np.uint8), np.array([[150]], np.uint8)]
    out = conv.from_rgb(conv.to_rgb(planes, {}), {})
    for mine, orig in zip(out, planes, strict=True):
        np.testing.assert_array_equal(mine.numpy(), orig)


def test_module_does_not_import_vapoursynth() -> None:
    path = Path(__file__).resolve().parents[1] / "vsrife" / "filter" / "convert.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('convert_probe', {str(path)!r})\n"
        "mod = sys.modules['convert_probe'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "assert 'vapoursynth' not in sys.modules, 'vapoursynth imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
