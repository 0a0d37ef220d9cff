"""CLI argument syntax, stream planning, encoder options and usage errors (no rendering)."""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from vsrife.cli.args import FrameRange, Segment, parse_factor, parse_fps, parse_frames, parse_segment
from vsrife.cli.errors import UsageError
from vsrife.cli.ffmpeg import Stream, encoder_info, plan_streams

try:
    from tests.test_cli_support import cli, leftovers, make_bunny, vsrife_executable
except ImportError:
    from test_cli_support import cli, leftovers, make_bunny, vsrife_executable  # type: ignore[no-redef]


@pytest.fixture(autouse=True)
def _bs_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSRIFE_BS_CACHE", str(tmp_path / "bs"))


@pytest.fixture(scope="module")
def bunny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bunny(tmp_path_factory.mktemp("args"), frames=4, size="64:36")


# ------------------------------------------------------------------ value syntaxes


@pytest.mark.parametrize(
    ("text", "value"),
    [("60000/1001", Fraction(60000, 1001)), ("60", Fraction(60)), ("59.94", Fraction(5994, 100)), (" 50 / 1 ", 50)],
)
def test_fps_accepts_integers_decimals_and_fractions(text: str, value: Fraction) -> None:
    assert parse_fps(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("60/0", "zero denominator"),
        ("abc", "not a number"),
        ("-5", "must be positive"),
        ("0", "must be positive"),
        ("60/-1", "must be positive"),
        ("", "not a number"),
        ("1/2/3", "not a number"),
        ("inf", "not a number"),
    ],
)
def test_fps_rejects_malformed_values(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_fps(text)


def test_factor() -> None:
    assert parse_factor("2") == 2
    assert parse_factor("5/2") == Fraction(5, 2)
    assert parse_factor("2.5") == Fraction(5, 2)
    for bad, message in (("1", "greater than 1"), ("1/2", "greater than 1"), ("x", "not a number"), ("2/0", "zero")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse_factor(bad)


def test_frame_ranges_are_python_slices() -> None:
    assert parse_frames("10:20").resolve(100) == (10, 20)
    assert parse_frames(":5").resolve(100) == (0, 5)
    assert parse_frames("90:").resolve(100) == (90, 100)
    assert parse_frames("-10:").resolve(100) == (90, 100)
    assert parse_frames("0:1000").resolve(100) == (0, 100)
    with pytest.raises(ValueError, match="selects no frames"):
        FrameRange(5, 2).resolve(100)
    for bad in ("5", "a:b", "1:2:3"):
        with pytest.raises(argparse.ArgumentTypeError, match="A:B"):
            parse_frames(bad)


@pytest.mark.parametrize("total", [1, 2, 7, 24, 25, 1001])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_segments_tile_the_output_in_near_equal_contiguous_ranges(total: int, count: int) -> None:
    if count > total:
        with pytest.raises(ValueError, match="empty"):
            [Segment(i, count).resolve(total) for i in range(1, count + 1)]
        return
    ranges = [Segment(i, count).resolve(total) for i in range(1, count + 1)]
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_segment_syntax() -> None:
    assert parse_segment("2/5") == Segment(2, 5)
    for bad in ("0/3", "4/3", "1/0", "x", "1-3"):
        with pytest.raises(argparse.ArgumentTypeError, match="i/n"):
            parse_segment(bad)


# ------------------------------------------------------------------ streams and encoder options


def _streams(*specs: tuple[str, str]) -> list[Stream]:
    return [Stream(i + 1, kind, codec) for i, (kind, codec) in enumerate(specs)]


def test_subtitles_and_audio_follow_the_container() -> None:
    src = _streams(("audio", "aac"), ("subtitle", "subrip"), ("subtitle", "hdmv_pgs_subtitle"))
    mp4 = plan_streams(src, Path("o.mp4"), 1)
    assert mp4.args == ["-map", "1:1", "-c:a:0", "copy", "-map", "1:2", "-c:s:0", "mov_text"]
    assert any("converted to mov_text" in w for w in mp4.warnings)
    assert any("hdmv_pgs_subtitle" in w and "dropped" in w for w in mp4.warnings)
    mkv = plan_streams(src, Path("o.mkv"), 1)
    assert mkv.subtitles == 2 and "-c:s:1" in mkv.args and mkv.args.count("copy") >= 3 and not mkv.warnings
    webm = plan_streams(src, Path("o.webm"), 1)
    assert webm.args[:4] == ["-map", "1:1", "-c:a:0", "libopus"] and "webvtt" in webm.args
    pcm = plan_streams(_streams(("audio", "pcm_s16le")), Path("o.mp4"), 1)
    assert "aac" in pcm.args and pcm.warnings
    cover = plan_streams([Stream(0, "video", "h264"), Stream(3, "video", "mjpeg", attached_pic=True)], Path("o.mp4"), 1)
    assert cover.args == [] and cover.warnings == ["stream 3: the cover picture (mjpeg) is not carried over; dropped"]
    avi = plan_streams(src, Path("o.avi"), 1)
    assert avi.subtitles == 0 and avi.audio == 1
    assert plan_streams(src, Path("o.mkv"), 1, audio=False, subtitles=False).args == []


def test_streams_the_container_refuses_are_re_encoded_or_dropped() -> None:
    """What the tables allow can still fail to mux (FLAC in MP4 on ffmpeg 5, Opus in .m4v, anything in
    .gif): each choice is test-written, then AAC/Opus, then the stream is dropped, each with a warning."""
    src = _streams(("audio", "flac"), ("audio", "opus"), ("subtitle", "subrip"))
    tried: list[list[str]] = []

    def muxes(args: list[str]) -> str | None:  # this "container" takes AAC audio only, and no subtitles
        tried.append(args)
        return None if args[-1] == "aac" else "refused"

    plan = plan_streams(src, Path("o.m4v"), 1, muxes=muxes)
    assert plan.args == ["-map", "1:1", "-c:a:0", "aac", "-map", "1:2", "-c:a:1", "aac"]
    assert [w.split(":")[0] for w in plan.warnings] == ["stream 1", "stream 2", "stream 3"]
    assert "re-encoding it to AAC" in plan.warnings[0] and "dropped" in plan.warnings[2]
    assert tried[0] == ["-map", "1:1", "-c:a", "copy"] and tried[1] == ["-map", "1:1", "-c:a", "aac"]
    nothing = plan_streams(src, Path("o.gif"), 1, muxes=lambda args: "refused")
    assert nothing.args == [] and nothing.audio == 0 and len(nothing.warnings) == 3
    assert all("dropped" in w for w in nothing.warnings)
    webm = plan_streams(src[:1], Path("o.webm"), 1, muxes=lambda args: None if args[-1] == "libopus" else "no")
    assert webm.args[-1] == "libopus" and webm.audio == 1


def _enc_args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"crf": None, "preset": None, "pix_fmt": None, "encoder_args": None}
    return argparse.Namespace(**{**base, **kw})


def test_encoder_options() -> None:
    from vsrife.cli.encode import video_args

    x264, ffv1 = encoder_info("libx264"), encoder_info("ffv1")
    args, warnings, fmt = video_args(x264, "yuv420p", _enc_args())
    assert args == ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "medium"] and not warnings
    assert fmt == "yuv420p"
    args, _, _ = video_args(x264, "yuv420p", _enc_args(encoder_args="-qp 0 -g 1"))
    assert "-crf" not in args and args[-4:] == ["-qp", "0", "-g", "1"]
    args, _, fmt = video_args(x264, "yuv420p", _enc_args(crf=20.5, encoder_args="-preset slow -pix_fmt yuv444p"))
    assert args == ["-c:v", "libx264", "-crf", "20.5", "-preset", "slow", "-pix_fmt", "yuv444p"]
    assert fmt == "yuv444p"  # from --encoder-args: its colour family decides a conversion
    args, _, _ = video_args(ffv1, "yuv420p10le", _enc_args())
    assert args == ["-c:v", "ffv1", "-pix_fmt", "yuv420p10le"]
    # what the encoder cannot take: the closest it can (family, then depth not lower, then chroma), said
    args, warnings, fmt = video_args(x264, "yuv420p16le", _enc_args())
    assert fmt == "yuv420p10le" and args[2:4] == ["-pix_fmt", "yuv420p10le"]
    assert warnings and "yuv420p16le: encoding yuv420p10le" in warnings[0]
    _, warnings, fmt = video_args(ffv1, "gbrp", _enc_args())
    assert fmt == "bgr0" and "converted" not in warnings[0]
    _, warnings, fmt = video_args(x264, "gbrp", _enc_args())
    assert fmt == "yuv444p" and "converted with BT.709" in warnings[0]
    with pytest.raises(UsageError, match="--crf is not an option of encoder ffv1"):
        video_args(ffv1, "yuv420p", _enc_args(crf=10))
    with pytest.raises(UsageError, match="not supported by libx264"):
        video_args(x264, "yuv420p", _enc_args(pix_fmt="rgb48le"))
    with pytest.raises(UsageError, match="cannot be split"):
        video_args(x264, "yuv420p", _enc_args(encoder_args='-tune "film'))
    with pytest.raises(UsageError, match="unknown encoder 'nope'"):
        encoder_info("nope")
    with pytest.raises(UsageError, match="audio encoder"):
        encoder_info("aac")


def test_default_preset_only_where_the_encoder_names_it() -> None:
    """SVT-AV1's presets are numbers: "-preset medium" made every libsvtav1 encode fail at the test encode."""
    from vsrife.cli.encode import video_args

    svt = encoder_info("libsvtav1") if "libsvtav1" in _encoders() else None
    if svt is None:
        pytest.skip("this ffmpeg has no libsvtav1")
    assert svt.accepts("preset", "8") and not svt.accepts("preset", "medium")
    args, _, _ = video_args(svt, "yuv420p10le", _enc_args())
    assert "-preset" not in args and args[-2:] == ["-crf", "18"]
    args, _, _ = video_args(svt, "yuv420p10le", _enc_args(preset="6"))
    assert args[-2:] == ["-preset", "6"]
    x265 = encoder_info("libx265")
    assert x265.accepts("preset", "medium") and x265.kinds["preset"][0] == "string"


def _encoders() -> str:
    import subprocess

    return subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout


_HDR10 = {
    "MasteringDisplayPrimariesX": [0.68, 0.265, 0.15],  # R, G, B as BestSource reports them
    "MasteringDisplayPrimariesY": [0.32, 0.69, 0.06],
    "MasteringDisplayWhitePointX": 0.3127,
    "MasteringDisplayWhitePointY": 0.329,
    "MasteringDisplayMaxLuminance": 1000.0,
    "MasteringDisplayMinLuminance": 0.0001,
    "ContentLightLevelMax": 1000,
    "ContentLightLevelAverage": 400,
}


def test_hdr10_metadata_goes_to_the_encoder_parameters() -> None:
    from vsrife.cli.encode import hdr_args

    x265 = ["-c:v", "libx265", "-crf", "18"]
    args, warnings = hdr_args(_HDR10, x265)
    assert not warnings and args[:4] == x265
    assert args[4:] == [
        "-x265-params",
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
    ]
    args, _ = hdr_args(_HDR10, ["-c:v", "libsvtav1"])
    assert args[2:] == [
        "-svtav1-params",
        "mastering-display=G(0.265,0.69)B(0.15,0.06)R(0.68,0.32)WP(0.3127,0.329)L(1000,0.0001):content-light=1000,400",
    ]
    # the user's own parameters stay, and win where they set the same one
    args, _ = hdr_args(_HDR10, [*x265, "-x265-params", "max-cll=500,100:keyint=10"])
    assert args[-1].startswith("max-cll=500,100:keyint=10:master-display=G(13250,") and args.count("-x265-params") == 1
    # only the content light level, or nothing: only that, or the arguments unchanged
    light = {"ContentLightLevelMax": 800, "ContentLightLevelAverage": 0}
    assert hdr_args(light, x265)[0][-1] == "max-cll=800,0"
    assert hdr_args({"_Transfer": 16}, x265) == (x265, [])
    assert hdr_args({**_HDR10, "MasteringDisplayPrimariesX": 0.5, "ContentLightLevelMax": 0}, x265) == (x265, [])
    # encoders that cannot write it: said, not silently dropped
    args, warnings = hdr_args(_HDR10, ["-c:v", "libx264"])
    assert args == ["-c:v", "libx264"] and "not written by libx264" in warnings[0]


@pytest.mark.parametrize(
    ("fmt_name", "y4m", "pix_fmt"),
    [
        ("YUV420P8", True, "yuv420p"),
        ("YUV420P10", True, "yuv420p10le"),
        ("GRAY8", True, "gray"),
        ("YUV410P8", False, "yuv410p"),
        ("RGB24", False, "gbrp"),
        ("RGBS", False, "gbrp16le"),
        ("YUV444PS", True, "yuv444p16le"),
    ],
)
def test_pipe_formats(fmt_name: str, y4m: bool, pix_fmt: str) -> None:
    import vapoursynth as vs

    from vsrife.cli.encode import pipe_format

    clip = vs.core.std.BlankClip(format=getattr(vs, fmt_name), width=16, height=16, length=1)
    pipe = pipe_format(clip)
    assert (pipe.y4m, pipe.pix_fmt) == (y4m, pix_fmt)


def test_rgb_planes_reach_ffmpeg_in_order(tmp_path: Path) -> None:
    """RGB travels as raw G, B, R planes: a pure-colour clip must come back with the same colour."""
    import numpy as np
    import vapoursynth as vs

    from vsrife.cli.encode import pipe_format, render_to_ffmpeg

    clip = vs.core.std.BlankClip(format=vs.RGB24, width=16, height=8, length=2, color=[200, 40, 90])
    pipe = pipe_format(clip)
    out = tmp_path / "rgb.mkv"
    render_to_ffmpeg(pipe, ["ffmpeg", "-v", "error", "-y", *pipe.input_args, "-c:v", "ffv1", str(out)])
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    pixels = np.frombuffer(raw, np.uint8).reshape(2, 8, 16, 3)
    assert (pixels == [200, 40, 90]).all()


# ------------------------------------------------------------------ usage errors (exit status 2 / 1, no traceback)


def _bad(capsys: pytest.CaptureFixture[str], code: int, message: str, *argv: str | Path) -> str:
    got, out, err = cli(capsys, *argv)
    assert got == code, (out, err)
    assert message in err, err
    assert "Traceback" not in err and err.count("vsrife: error:") == 1
    return err


def test_usage_errors(capsys: pytest.CaptureFixture[str], bunny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    _bad(capsys, 2, "the following arguments are required", "interpolate", bunny)
    _bad(capsys, 2, "does not exist", "interpolate", tmp_path / "missing.mp4", "-o", out)
    _bad(
        capsys,
        2,
        "argument --fps: frame rate '60/0' has a zero denominator",
        "interpolate",
        bunny,
        "-o",
        out,
        "--fps",
        "60/0",
    )
    _bad(capsys, 2, "argument --fps: frame rate 'abc' is not a number", "interpolate", bunny, "-o", out, "--fps", "abc")
    _bad(capsys, 2, "argument --crf: must be a finite number", "interpolate", bunny, "-o", out, "--crf", "nan")
    _bad(capsys, 2, "argument --crf: must be a number, got 'abc'", "interpolate", bunny, "-o", out, "--crf", "abc")
    _bad(capsys, 2, "--trt needs a CUDA device (--device cpu is cpu)", "interpolate", bunny, "-o", out, "--trt",
         "--device", "cpu")  # fmt: skip
    _bad(capsys, 2, "--trt needs a CUDA device", "bench", "--trt", "--device", "cpu")
    _bad(capsys, 2, "argument --trt: not allowed with argument --compile", "interpolate", bunny, "-o", out,
         "--compile", "--trt")  # fmt: skip
    _bad(capsys, 2, "--trt-cache-dir needs --trt", "interpolate", bunny, "-o", out, "--trt-cache-dir", tmp_path)
    _bad(capsys, 2, "--trt-cache-dir needs --trt", "bench", "--trt-cache-dir", tmp_path)
    _bad(capsys, 2, f"argument --model-path: {tmp_path / 'none.pkl'} does not exist", "interpolate", bunny, "-o",
         out, "--model-path", tmp_path / "none.pkl")  # fmt: skip
    _bad(capsys, 2, "--threads must be a non-negative integer up to 1024", "interpolate", bunny, "-o", out,
         "--threads", "100000")  # fmt: skip
    _bad(capsys, 2, "argument --fps: frame rate '-5' must be positive", "interpolate", bunny, "-o", out, "--fps", "-5")
    _bad(capsys, 2, "argument --fps: frame rate '-5' must be positive", "interpolate", bunny, "-o", out, "--fps=-5")
    _bad(
        capsys,
        2,
        "argument --factor: factor '1' must be greater than 1",
        "interpolate",
        bunny,
        "-o",
        out,
        "--factor",
        "1",
    )
    _bad(capsys, 2, "not allowed with argument", "interpolate", bunny, "-o", out, "--factor", "2", "--fps", "60")
    _bad(capsys, 2, "not allowed with argument", "interpolate", bunny, "-o", out, "--frames", "0:4", "--segment", "1/2")
    err = _bad(capsys, 2, "unknown model '9.9'", "interpolate", bunny, "-o", out, "--model", "9.9")
    assert "4.26" in err and "vsrife models list" in err
    _bad(capsys, 2, "--scale must be one of", "interpolate", bunny, "-o", out, "--scale", "3")
    _bad(capsys, 2, "--on-cut must be one of", "interpolate", bunny, "-o", out, "--on-cut", "skip")
    _bad(capsys, 2, "--precision must be one of", "interpolate", bunny, "-o", out, "--precision", "fp8")
    _bad(capsys, 2, "no extension", "interpolate", bunny, "-o", tmp_path / "noext")
    _bad(capsys, 2, "folder", "interpolate", bunny, "-o", tmp_path / "nowhere" / "o.mkv")
    _bad(capsys, 2, "also an input", "interpolate", bunny, "-o", bunny, "--overwrite")
    _bad(capsys, 2, "unknown encoder 'nope'", "interpolate", bunny, "-o", out, "--codec", "nope")
    # these need the source (rate, frame count) but fail before any model is loaded
    _bad(capsys, 2, "--fps = 20 must be higher than the clip's rate 25", "interpolate", bunny, "-o", out, "--fps", "20")
    _bad(capsys, 2, "selects no frames of the 8 output frames", "interpolate", bunny, "-o", out, "--frames", "8:")
    _bad(capsys, 2, "segment 1/9 is empty", "interpolate", bunny, "-o", out, "--segment", "1/9")
    _bad(
        capsys,
        2,
        "--crf is not an option of encoder ffv1",
        "interpolate",
        bunny,
        "-o",
        out,
        "--codec",
        "ffv1",
        "--crf",
        "5",
    )
    _bad(capsys, 2, "unknown model", "eval", bunny, "--model", "nope")
    _bad(capsys, 2, "does not exist", "eval", tmp_path / "missing.mp4")
    _bad(capsys, 2, "unknown model", "models", "fetch", "4.99")
    _bad(capsys, 2, "invalid choice", "bench", "--path", "gpu")
    _bad(capsys, 2, "does not exist", "join", tmp_path / "a.mkv", "-o", out)
    assert not out.exists() and leftovers(tmp_path) == []


def test_unreadable_video_is_a_clear_runtime_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    err = _bad(capsys, 1, f"cannot read {fake} as a video", "interpolate", fake, "-o", tmp_path / "o.mkv")
    assert "BestSource" in err
    _bad(capsys, 1, "cannot read", "eval", fake)
    assert not (tmp_path / "o.mkv").exists()


def test_existing_output_is_not_overwritten(capsys: pytest.CaptureFixture[str], bunny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    _bad(capsys, 2, "already exists; pass --overwrite", "interpolate", bunny, "-o", out)
    _bad(capsys, 2, "already exists; pass --overwrite", "join", bunny, "-o", out)
    assert out.read_bytes() == b"precious"


def test_console_script_and_module_entry_points() -> None:
    from vsrife import __version__

    proc = subprocess.run([str(vsrife_executable()), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"vsrife {__version__}"
    proc = subprocess.run(
        [sys.executable, "-m", "vsrife.cli", "interpolate", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    for option in ("--factor", "--fps", "--frames A:B", "--segment i/n", "--encoder-args", "--overwrite"):
        assert option in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "vsrife.cli"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "vsrife: error:" in proc.stderr


def test_filter_options_reach_the_filter_arguments() -> None:
    """--threads, --compile and --trt become core.rife.RIFE's threads / torch_compile / trt (off unless asked)."""
    from vsrife.cli.args import add_filter_options, filter_kwargs

    parser = argparse.ArgumentParser()
    add_filter_options(parser)
    plain = filter_kwargs(parser.parse_args([]))
    assert plain["torch_compile"] == 0 and plain["threads"] == 0
    asked = filter_kwargs(parser.parse_args(["--compile", "--threads", "3"]))
    assert asked["torch_compile"] == 1 and asked["threads"] == 3
    assert plain["trt"] == 0 and "trt_cache_dir" not in plain
    trt = filter_kwargs(parser.parse_args(["--trt", "--trt-cache-dir", "/engines", "--device", "cuda"]))
    assert trt["trt"] == 1 and trt["trt_cache_dir"] == "/engines"


def test_model_errors_name_the_options(capsys: pytest.CaptureFixture[str], bunny: Path, tmp_path: Path) -> None:
    """Messages from the library name its keyword arguments; the command line says --model / --model-path."""
    import torch

    junk = tmp_path / "junk.pkl"
    torch.save({"module.conv.weight": torch.zeros(4, 3, 3, 3)}, junk)
    err = _bad(capsys, 1, "matches no known RIFE layout", "interpolate", bunny, "-o", tmp_path / "o.mkv",
               "--model-path", junk)  # fmt: skip
    assert "pass --model <version>" in err and "model=" not in err and "model_path=" not in err
    err = _bad(capsys, 1, "--timestep-mode", "interpolate", bunny, "-o", tmp_path / "o.mkv", "--factor", "3",
               "--timestep-mode", "native")  # fmt: skip
    assert "timestep_mode" not in err


def test_timecode_is_restated_at_the_output_rate() -> None:
    from vsrife.cli.ffmpeg import timecode_args

    def tc(code: str, src: Fraction, out: Fraction) -> tuple[list[str], list[str]]:
        return timecode_args([Stream(0, "video", "h264", {"timecode": code})], src, out)

    assert tc("01:00:00:12", Fraction(25), Fraction(50)) == (["-timecode", "01:00:00:24"], [])
    assert tc("00:59:59:29", Fraction(30000, 1001), Fraction(60000, 1001)) == (["-timecode", "00:59:59:58"], [])
    assert tc("10:00:00:05", Fraction(24), Fraction(72)) == (["-timecode", "10:00:00:15"], [])
    args, warnings = tc("01:00:00;02", Fraction(30000, 1001), Fraction(60000, 1001))
    assert args == [] and "drop-frame" in warnings[0]
    args, warnings = tc("01:00:00:01", Fraction(24), Fraction(60))  # frame 1 of 24 is frame 2.5 of 60
    assert args == [] and "falls between frames" in warnings[0]
    assert timecode_args([Stream(0, "video", "h264")], Fraction(25), Fraction(50)) == ([], [])


def test_movflags_are_merged_into_one_option() -> None:
    from vsrife.cli.ffmpeg import with_movflag

    assert with_movflag(["-c:v", "libx264"], "+use_metadata_tags")[-2:] == ["-movflags", "+use_metadata_tags"]
    merged = with_movflag(["-movflags", "+faststart", "-g", "10"], "+use_metadata_tags")
    assert merged == ["-movflags", "+faststart+use_metadata_tags", "-g", "10"]
    assert with_movflag(merged, "+use_metadata_tags") == merged


def test_hevc_into_mp4_is_tagged_for_apple_players() -> None:
    from vsrife.cli.ffmpeg import codec_tag_args

    assert codec_tag_args("libx265", Path("o.mp4"), ["-c:v", "libx265"]) == ["-tag:v", "hvc1"]
    assert codec_tag_args("hevc_nvenc", Path("o.MOV"), []) == ["-tag:v", "hvc1"]
    assert codec_tag_args("libx265", Path("o.mkv"), []) == []  # Matroska has no such tag
    assert codec_tag_args("libx264", Path("o.mp4"), []) == []
    assert codec_tag_args("libx265", Path("o.mp4"), ["-tag:v", "hev1"]) == []  # the user's choice stays


def test_codec_the_container_cannot_hold_is_refused_before_work(
    capsys: pytest.CaptureFixture[str], bunny: Path, tmp_path: Path
) -> None:
    """libx264 into .webm, or encoder options the encoder refuses: usage errors with ffmpeg's reason, before
    the model loads and the frames are interpolated (they failed at the end, inside ffmpeg)."""
    err = _bad(capsys, 2, "ffmpeg cannot write out.webm with -c:v libx264", "interpolate", bunny, "-o",
               tmp_path / "out.webm")  # fmt: skip
    assert "WebM" in err
    _bad(capsys, 2, "ffmpeg cannot write out.mkv", "interpolate", bunny, "-o", tmp_path / "out.mkv",
         "--encoder-args", "-tune nonsense")  # fmt: skip
    assert not list(tmp_path.glob("out.*")) and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("command", ["interpolate", "join", "models list", "models import", "eval", "bench"])
def test_help_is_plain_text(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """--help shows no reStructuredText (bench printed ``model`` and :class:`~vsrife.engine.Interpolator`)."""
    code, out, _ = cli(capsys, *command.split(), "--help")
    assert code == 0 and "usage: vsrife" in out
    assert "``" not in out and not re.search(r":(class|func|meth|mod):`", out), out


def test_errors_reach_the_exit_status_when_the_terminal_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a hangup stderr is a closed terminal: printing the message raised OSError and the exit status
    was 1 instead of the error's own."""
    from vsrife.cli import main as main_module
    from vsrife.cli.errors import UsageError

    class Gone:
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

        def flush(self) -> None:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(main_module.sys, "stderr", Gone())
    assert main_module._report(UsageError("x"), 2) == 2


def test_render_settings_name_the_weights_read(tmp_path: Path) -> None:
    """A part rendered with --model-path FOLDER and one with --model-path FOLDER/flownet.pkl are one render
    (recorded as different weights, join refused them); stray files in the folder do not count."""
    from vsrife.cli.interpolate import _render_settings

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "flownet.pkl").write_bytes(b"0" * 100)
    source = tmp_path / "in.mkv"
    source.write_bytes(b"video")
    clip = argparse.Namespace(fps_num=50, fps_den=1)
    by_folder = _render_settings(source, {"model_path": str(folder), "scale": 1.0}, clip)  # type: ignore[arg-type]
    (folder / "notes.txt").write_text("a stray file")
    by_file = _render_settings(source, {"model_path": str(folder / "flownet.pkl"), "scale": 1.0}, clip)  # type: ignore[arg-type]
    assert by_folder == by_file and "flownet.pkl:100" in by_file and "scale=1.0" in by_file
