"""``vsrife interpolate`` and ``vsrife join`` end to end on tiny real clips (BestSource -> core.rife.RIFE -> ffmpeg)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest

try:
    from tests.test_cli_support import (
        cli,
        ffmpeg,
        format_tags,
        frame_hashes,
        leftovers,
        make_bunny,
        make_bunny_mkv,
        make_carphone,
        packet_hash,
        streams,
        vsrife_executable,
    )
except ImportError:
    from test_cli_support import (  # type: ignore[no-redef]
        cli,
        ffmpeg,
        format_tags,
        frame_hashes,
        leftovers,
        make_bunny,
        make_bunny_mkv,
        make_carphone,
        packet_hash,
        streams,
        vsrife_executable,
    )

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
FAST = ("--threads", "1", "--no-progress")


@pytest.fixture(autouse=True)
def _bs_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSRIFE_BS_CACHE", str(tmp_path / "bs"))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    bunny = make_bunny(folder, frames=10, size="128:72")
    return {"bunny": bunny, "bunny_mkv": make_bunny_mkv(folder, bunny), "carphone": make_carphone(folder, frames=16)}


def _by_type(path: Path) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for s in streams(path):
        out.setdefault(str(s["codec_type"]), []).append(s)
    return out


def test_keeps_audio_subtitles_and_metadata(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    src = media["bunny_mkv"]
    out = tmp_path / "bunny_2x.mp4"
    code, _, err = cli(capsys, "interpolate", src, "-o", out, "--threads", "1")  # with the progress bar
    assert code == 0, err
    got = _by_type(out)
    (video,) = got["video"]
    assert (video["codec_name"], video["r_frame_rate"], int(video["nb_read_packets"])) == ("h264", "50/1", 20)
    assert video["pix_fmt"] == "yuv420p"  # the source's, kept
    assert len(got["audio"]) == 1
    assert packet_hash(out, "0:a:0") == packet_hash(src, "0:a:0")  # copied, not re-encoded
    (sub,) = got["subtitle"]
    assert sub["codec_name"] == "mov_text"  # MP4 cannot hold SubRip: converted, with a warning
    assert "subrip subtitles converted to mov_text" in err
    assert format_tags(out)["title"] == "Tiny Bunny"
    text = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Hello there" in text and "Second line" in text
    # progress bar: frames, rate and ETA
    assert re.search(r"20/20 \[\d\d:\d\d<00:00, +[\d.]+(frame/s|s/frame)\]", err), err[-500:]
    assert "wrote" in err and "1 audio stream, 1 subtitle stream" in err
    assert leftovers(tmp_path) == []
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _duration(path: Path) -> float:
    cmd = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_target_fps_into_matroska_copies_subtitles(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "bunny.mkv"
    out.write_bytes(b"old")
    code, _, err = cli(
        capsys,
        "interpolate",
        media["bunny_mkv"],
        "-o",
        out,
        "--fps",
        "60000/1001",
        "--overwrite",
        "--codec",
        "ffv1",
        *FAST,
    )
    assert code == 0, err
    got = _by_type(out)
    (video,) = got["video"]
    # 10 frames at 25 fps -> ceil(10 * 2400/1001) = 24 frames at 60000/1001 (Matroska keeps it to the millisecond)
    assert (video["codec_name"], int(video["nb_read_packets"])) == ("ffv1", 24)
    assert float(Fraction(str(video["r_frame_rate"]))) == pytest.approx(60000 / 1001, abs=0.01)
    (sub,) = got["subtitle"]
    assert sub["codec_name"] == "subrip" and sub["tags"]["language"] == "eng"  # type: ignore[index]
    assert len(got["audio"]) == 1 and "warning" not in err and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("encode", "expected"),
    [
        (("-pix_fmt", "yuv420p", "-color_range", "tv", "-colorspace", "bt709"), ("tv", "bt709")),
        (("-pix_fmt", "yuv444p", "-color_range", "pc", "-colorspace", "bt709"), ("pc", "bt709")),
        (("-pix_fmt", "bgr0"), ("pc", "gbr")),
    ],
    ids=["limited-yuv", "full-yuv", "rgb"],
)
def test_keeps_colour_range_and_rgb_matrix(
    capsys: pytest.CaptureFixture[str],
    media: dict[str, Path],
    tmp_path: Path,
    encode: tuple[str, ...],
    expected: tuple[str, str],
) -> None:
    """The output is tagged with the source's range (VapourSynth's ``_Range``: 1 full) and matrix; RGB encodes."""
    src = tmp_path / "src.mkv"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-c:v", "ffv1", *encode, src)
    out = tmp_path / "out.mkv"
    code, _, err = cli(capsys, "interpolate", src, "-o", out, "--codec", "ffv1", *FAST)
    assert code == 0, err
    (source,) = _by_type(src)["video"]
    (video,) = _by_type(out)["video"]
    assert (video["color_range"], video["color_space"]) == expected
    assert video["pix_fmt"] == source["pix_fmt"] and int(video["nb_read_packets"]) == 6


@pytest.mark.parametrize(
    ("source", "options", "expected"),
    [
        # BT.709 YUV into an RGB pixel format: converted by the props, tagged as RGB
        (("-pix_fmt", "yuv444p", "-colorspace", "bt709", "-color_range", "tv"), ("--pix-fmt", "bgr0"), ("pc", "gbr")),
        # RGB into a YUV pixel format: converted with BT.709, tagged so
        (("-pix_fmt", "bgr0"), ("--pix-fmt", "yuv444p"), ("tv", "bt709")),
        # libx264rgb takes no YUV: an RGB format is chosen and the source converted (ffmpeg used BT.601)
        (
            ("-pix_fmt", "yuv444p", "-colorspace", "bt709", "-color_range", "tv"),
            ("--codec", "libx264rgb"),
            ("pc", "gbr"),
        ),
        # an untagged YUV source (BestSource: _Matrix 2, unspecified) is read as BT.709, as the filter reads it
        (("-pix_fmt", "yuv444p"), ("--pix-fmt", "bgr0"), ("pc", "gbr")),
    ],
    ids=["yuv-to-rgb", "rgb-to-yuv", "libx264rgb", "untagged-yuv-to-rgb"],
)
def test_other_colour_family_is_converted_by_the_props(
    capsys: pytest.CaptureFixture[str],
    media: dict[str, Path],
    tmp_path: Path,
    source: tuple[str, ...],
    options: tuple[str, ...],
    expected: tuple[str, str],
) -> None:
    """An output pixel format of the other colour family: the source frames come out with the right colours
    (BT.709 here, which ffmpeg's own conversion ignored: it used BT.601 and kept the YUV tags on RGB)."""
    import vapoursynth as vs

    from vsrife.filter.source import open_video

    src = tmp_path / "src.mkv"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-c:v", "ffv1", *source, src)
    out = tmp_path / "out.mkv"
    codec = () if "--codec" in options else ("--codec", "ffv1")
    extra = ("--crf", "0") if "libx264rgb" in options else ()
    code, _, err = cli(capsys, "interpolate", src, "-o", out, *codec, *options, *extra, *FAST)
    assert code == 0, err
    (video,) = _by_type(out)["video"]
    assert (video["color_range"], video["color_space"]) == expected

    def rgb(path: Path) -> vs.VideoNode:  # frame 0 as RGB, converted by its own tags (BT.709 where untagged)
        clip = open_video(path)[0]
        if clip.format.color_family == vs.YUV:
            untagged = clip.get_frame(0).props.get("_Matrix", 2) == 2
            clip = vs.core.resize.Bicubic(clip, format=vs.RGB24, **({"matrix_in_s": "709"} if untagged else {}))
        return clip

    import numpy as np

    a, b = rgb(src).get_frame(0), rgb(out).get_frame(0)
    diff = max(int(np.abs(np.asarray(a[p], np.int16) - np.asarray(b[p], np.int16)).max()) for p in range(3))
    assert diff <= 3, diff  # rounding only; BT.601 instead of BT.709 is off by tens of codes on carphone


def _starts(path: Path) -> dict[str, float]:
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "json", str(path)]
    data = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return {s["codec_type"]: float(s["start_time"]) for s in data["streams"]}


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_video_starting_after_the_audio_stays_in_sync(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path, container: str
) -> None:
    """A source whose first video frame comes 0.3 s after its audio starts (a .ts cut, a B-frame delay):
    the output's video starts 0.3 s after its audio too (it started at 0, 0.3 s early), with every frame
    (no frames repeated to fill the gap); so does a join of segments with --audio-from."""
    src = tmp_path / "late.mkv"
    ffmpeg("-itsoffset", "0.3", "-i", media["bunny"], "-i", media["bunny"], "-map", "0:v", "-map", "1:a",
           "-c", "copy", src)  # fmt: skip
    assert _starts(src)["video"] - _starts(src)["audio"] == pytest.approx(0.3, abs=0.03)
    out = tmp_path / f"out.{container}"
    code, _, err = cli(capsys, "interpolate", src, "-o", out, *FAST)
    assert code == 0, err
    starts = _starts(out)
    assert starts["video"] - starts["audio"] == pytest.approx(0.3, abs=0.03), starts
    (video,) = _by_type(out)["video"]
    assert int(video["nb_read_packets"]) == 20
    parts = []
    for i in (1, 2):
        part = tmp_path / f"part{i}.mkv"
        assert cli(capsys, "interpolate", src, "-o", part, "--segment", f"{i}/2", *FAST)[0] == 0
        assert _starts(part)["video"] == pytest.approx(0.0, abs=0.01)  # parts start at 0: they are concatenated
        parts.append(part)
    joined = tmp_path / f"joined.{container}"
    code, _, err = cli(capsys, "join", *parts, "-o", joined, "--audio-from", src)
    assert code == 0, err
    starts = _starts(joined)
    assert starts["video"] - starts["audio"] == pytest.approx(0.3, abs=0.03), starts


def test_non_square_samples_keep_their_shape(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """An anamorphic source (sample aspect 16:11, shown 16:9 wide) comes out with the same aspect."""
    src = tmp_path / "anamorphic.mkv"
    ffmpeg("-i", media["carphone"], "-frames:v", "4", "-an", "-vf", "setsar=16/11", "-c:v", "ffv1", src)
    out = tmp_path / "out.mkv"
    assert cli(capsys, "interpolate", src, "-o", out, "--codec", "ffv1", *FAST)[0] == 0
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=sample_aspect_ratio", "-of", "csv=p=0", str(out)]
    assert subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip() == "16:11"
    # turned a quarter (a phone's display matrix): BestSource turns the pixels (72x88), so the samples turn
    # too: shown 9:16 as the source is (it came out 88:72 x 16:11 stretched, the wrong shape)
    upright, turned = tmp_path / "upright.mp4", tmp_path / "turned.mp4"
    ffmpeg("-i", src, "-c:v", "libx264", upright)
    ffmpeg("-i", upright, "-c", "copy", "-metadata:s:v", "rotate=90", turned)  # (stream copy: a display matrix)
    out = tmp_path / "turned_out.mkv"
    code, _, err = cli(capsys, "interpolate", turned, "-o", out, "--codec", "ffv1", *FAST)
    assert code == 0, err
    cmd[-1] = str(out)
    assert subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip() == "11:16"


def test_phone_metadata_keys_are_kept(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """A phone's QuickTime keys (make, model, location) were lost in full renders to MOV/MP4; they are kept,
    also when the user's --encoder-args bring their own -movflags (ffmpeg keeps only the last one)."""
    src = tmp_path / "phone.mov"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-c:v", "libx264", "-movflags", "use_metadata_tags",
           "-metadata", "com.apple.quicktime.make=Apple", "-metadata", "com.apple.quicktime.location.ISO6709="
           "+37.7749-122.4194+010.000/", src)  # fmt: skip
    for container, extra in (("mov", ()), ("mp4", ("--encoder-args", "-movflags +faststart"))):
        out = tmp_path / f"out.{container}"
        code, _, err = cli(capsys, "interpolate", src, "-o", out, *extra, *FAST)
        assert code == 0, err
        tags = format_tags(out)
        assert tags.get("com.apple.quicktime.make") == "Apple", tags
        assert tags.get("com.apple.quicktime.location.iso6709") == "+37.7749-122.4194+010.000/", tags  # (lowered)


def test_timecode_is_kept_at_the_new_rate(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """A MOV's start timecode (its tmcd track) was dropped; it is kept, counted in frames of the new rate."""
    src = tmp_path / "tc.mov"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-r", "25", "-c:v", "libx264", "-timecode",
           "01:00:00:12", src)  # fmt: skip
    out = tmp_path / "out.mov"
    code, _, err = cli(capsys, "interpolate", src, "-o", out, *FAST)
    assert code == 0, err
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_tag_string:stream_tags=timecode", "-of", "json",
           str(out)]  # fmt: skip
    found = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["streams"]
    assert {s["codec_tag_string"]: (s.get("tags") or {}).get("timecode") for s in found}["tmcd"] == "01:00:00:24"


def test_join_restores_timecode_and_keys_as_a_full_render(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """Parts joined with --audio-from SOURCE get what a full render keeps: the start timecode at the new
    rate and the QuickTime keys."""
    src = tmp_path / "phone.mov"
    ffmpeg("-i", media["carphone"], "-frames:v", "4", "-an", "-r", "25", "-c:v", "libx264", "-timecode",
           "01:00:00:12", "-movflags", "use_metadata_tags", "-metadata", "com.apple.quicktime.make=Apple",
           src)  # fmt: skip
    parts = [tmp_path / f"part{i}.mov" for i in (1, 2)]
    for i, part in enumerate(parts, 1):
        assert cli(capsys, "interpolate", src, "-o", part, "--segment", f"{i}/2", *FAST)[0] == 0
    joined = tmp_path / "joined.mov"
    code, _, err = cli(capsys, "join", *parts, "-o", joined, "--audio-from", src)
    assert code == 0, err
    assert format_tags(joined).get("com.apple.quicktime.make") == "Apple"
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_tag_string:stream_tags=timecode", "-of", "json",
           str(joined)]  # fmt: skip
    found = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["streams"]
    assert {s["codec_tag_string"]: (s.get("tags") or {}).get("timecode") for s in found}.get("tmcd") == "01:00:00:24"


def test_odd_sizes_cropped_by_the_decoder_are_said(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """A 4:2:0 video of odd size (screen recordings) decodes one row and column smaller: said, not silent."""
    src = tmp_path / "odd.webm"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-vf", "scale=87:71", "-pix_fmt", "yuv420p", "-c:v",
           "libvpx-vp9", "-deadline", "realtime", src)  # fmt: skip
    code, _, err = cli(capsys, "interpolate", src, "-o", tmp_path / "out.mkv", "--codec", "ffv1", *FAST)
    assert code == 0 and "odd.webm is 87x71 but decodes as 86x70" in err, err


def _side_data(path: Path) -> dict[str, dict[str, object]]:
    entries = "frame=side_data_list:frame=color_transfer,color_primaries"
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
           "-show_entries", entries, "-of", "json", str(path)]  # fmt: skip
    frame = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["frames"][0]
    found = {str(d["side_data_type"]): d for d in frame.get("side_data_list", [])}
    return {**found, "tags": {k: frame.get(k) for k in ("color_transfer", "color_primaries")}}


def _has_encoder(name: str) -> bool:
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True)
    return re.search(rf"^ \S+ {re.escape(name)} ", proc.stdout, re.M) is not None


@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_hdr10_source_keeps_its_mastering_metadata(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path, codec: str
) -> None:
    """An HDR10 source's mastering display and content light level reach the output (the pipe carries no
    side data: they went missing, leaving PQ video that players tone-map by guesswork). libsvtav1 also
    checks that encoders whose presets are numbers get no "-preset medium" (it failed every encode)."""
    if not _has_encoder(codec):
        pytest.skip(f"this ffmpeg has no {codec}")
    src = tmp_path / "hdr10.mkv"
    display = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-pix_fmt", "yuv420p10le", "-c:v", "libx265",
           "-x265-params", f"log-level=error:master-display={display}:max-cll=1000,400", "-color_primaries",
           "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", src)  # fmt: skip
    source = _side_data(src)
    assert "Mastering display metadata" in source, source
    out = tmp_path / ("out.mp4" if codec == "libx265" else "out.mkv")
    code, _, err = cli(capsys, "interpolate", src, "-o", out, "--codec", codec, *FAST)
    assert code == 0, err
    if codec == "libx265":  # tagged so that Apple's players take it (ffmpeg writes hev1)
        cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_tag_string", "-of", "csv=p=0", str(out)]
        assert subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split() == ["hvc1"]
    got = _side_data(out)
    assert got["tags"] == {"color_transfer": "smpte2084", "color_primaries": "bt2020"}
    light = got["Content light level metadata"]
    assert (light["max_content"], light["max_average"]) == (1000, 400)
    display_out, display_in = got["Mastering display metadata"], source["Mastering display metadata"]
    for key in ("red_x", "green_y", "blue_x", "white_point_y", "max_luminance", "min_luminance"):
        want = float(Fraction(str(display_in[key])))  # (AV1 stores the minimum luminance in 1/16384 cd/m²)
        assert float(Fraction(str(display_out[key]))) == pytest.approx(want, rel=2e-3, abs=1 / 16384), key
    # an encoder that cannot write it: a warning, not silence
    code, _, err = cli(capsys, "interpolate", src, "-o", tmp_path / "x264.mkv", *FAST)
    assert code == 0 and "HDR10 metadata" in err and "not written by libx264" in err, err


def test_sources_that_need_a_word_before_any_work(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw streams without timestamps render (they failed in the timestamp check); interlaced, size-changing
    and audio-only sources get a message naming the problem and the way out (not a traceback at frame 1)."""
    carphone = media["carphone"]
    raw = tmp_path / "raw.h264"
    ffmpeg("-i", carphone, "-frames:v", "4", "-an", "-c:v", "libx264", "-f", "h264", raw)
    code, _, err = cli(capsys, "interpolate", raw, "-o", tmp_path / "raw.mkv", "--codec", "ffv1", *FAST)
    assert code == 0 and "has no frame timestamps to check" in err and "read as constant-rate 29.97 fps" in err, err
    assert int(_by_type(tmp_path / "raw.mkv")["video"][0]["nb_read_packets"]) == 8

    interlaced = tmp_path / "interlaced.mp4"
    ffmpeg("-i", carphone, "-frames:v", "4", "-an", "-c:v", "libx264", "-flags", "+ildct+ilme", "-x264opts",
           "tff=1", "-field_order", "tt", interlaced)  # fmt: skip
    code, _, err = cli(capsys, "interpolate", interlaced, "-o", tmp_path / "i.mkv", *FAST)
    assert code == 1 and "is interlaced" in err and "--assume-progressive" in err and "Traceback" not in err, err
    assert not (tmp_path / "i.mkv").exists()
    code, _, err = cli(capsys, "interpolate", interlaced, "-o", tmp_path / "i.mkv", "--assume-progressive", *FAST)
    assert code == 0, err
    # interlaced only later in the file (broadcast .ts, DVDs): found up front too, not at the first such frame
    halves = [tmp_path / "progressive.ts", tmp_path / "fields.ts"]
    ffmpeg("-i", carphone, "-frames:v", "4", "-an", "-c:v", "libx264", "-f", "mpegts", halves[0])
    ffmpeg("-i", carphone, "-frames:v", "4", "-an", "-c:v", "libx264", "-flags", "+ildct+ilme", "-x264opts",
           "tff=1", "-field_order", "tt", "-f", "mpegts", halves[1])  # fmt: skip
    (tmp_path / "halves.txt").write_text("".join(f"file '{p}'\n" for p in halves))
    mixed = tmp_path / "mixed.ts"
    ffmpeg("-f", "concat", "-safe", "0", "-i", tmp_path / "halves.txt", "-c", "copy", mixed)
    code, _, err = cli(capsys, "interpolate", mixed, "-o", tmp_path / "m.mkv", *FAST)
    assert code == 1 and "is interlaced" in err and "--assume-progressive" in err and "RIFE: frame" not in err, err

    parts = []
    for k, size in enumerate(("96x80", "128x96")):
        parts.append(tmp_path / f"part{k}.ts")
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24:d=1", "-c:v", "libx264", "-f", "mpegts", parts[-1])
    listing = tmp_path / "parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    sizes = tmp_path / "sizes.ts"
    ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", sizes)
    code, _, err = cli(capsys, "interpolate", sizes, "-o", tmp_path / "s.mkv", *FAST)
    assert code == 1 and "changes its frame size or pixel format mid-stream" in err, err

    alpha = tmp_path / "alpha.mkv"
    ffmpeg("-i", carphone, "-frames:v", "3", "-an", "-pix_fmt", "yuva420p", "-c:v", "ffv1", alpha)
    from vsrife.engine import Interpolator

    runs: list[None] = []
    real = Interpolator.interpolate_prepared
    monkeypatch.setattr(Interpolator, "interpolate_prepared", lambda *a, **k: (runs.append(None), real(*a, **k))[1])
    code, _, err = cli(capsys, "interpolate", alpha, "-o", tmp_path / "alpha_out.mkv", "--codec", "ffv1", *FAST)
    assert code == 0 and "has an alpha channel (transparency); the output holds the colour only" in err, err
    assert len(runs) == 2  # the colour of the two generated frames only: the masks the output drops are not made

    audio = tmp_path / "audio.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac", audio)
    code, _, err = cli(capsys, "interpolate", audio, "-o", tmp_path / "a.mkv", *FAST)
    assert code == 1 and "audio.m4a has no video stream" in err, err


def test_encoder_args_with_relative_paths(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--encoder-args "-vf subtitles=subs.srt"`` names a file in the user's folder: the test encode ran in a
    temporary folder and refused it (usage error) though the render would have found it."""
    monkeypatch.chdir(tmp_path)
    Path("subs.srt").write_text("1\n00:00:00,000 --> 00:00:05,000\nHello\n")
    src = tmp_path / "src.mkv"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-an", "-c:v", "ffv1", src)
    code, _, err = cli(capsys, "interpolate", src, "-o", "out.mkv", "--encoder-args", "-vf subtitles=subs.srt", *FAST)
    assert code == 0, err
    assert int(_by_type(tmp_path / "out.mkv")["video"][0]["nb_read_packets"]) == 6


def test_audio_the_container_refuses_is_re_encoded(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """FLAC audio into MP4: ffmpeg 5 refuses to copy it ("experimental"); the render failed at the end, after
    the interpolation. It is test-written first, then re-encoded to AAC with a warning."""
    src = tmp_path / "flac.mkv"
    ffmpeg("-i", media["carphone"], "-frames:v", "3", "-c:v", "ffv1", "-c:a", "flac", "-shortest", src)
    out = tmp_path / "out.mp4"
    code, _, err = cli(capsys, "interpolate", src, "-o", out, *FAST)
    assert code == 0, err
    (audio,) = _by_type(out)["audio"]
    assert audio["codec_name"] == ("flac" if "re-encoding" not in err else "aac"), err
    assert audio["codec_name"] == "aac" or _ffmpeg_major() >= 6  # ffmpeg 6 stores FLAC in MP4 as it is


def _ffmpeg_major() -> int:
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"ffmpeg version n?(\d+)", out)
    return int(m.group(1)) if m else 0


def test_vs_message_drops_the_callback_traceback() -> None:
    from vsrife.cli.common import vs_message

    text = (
        '\nTraceback (most recent call last):\n  File "vapoursynth.pyx", line 4432, in vapoursynth.publicFunction\n'
        '    raise vs.Error(f"RIFE: frame {n}: {exc}") from None\n'
        "vapoursynth.Error: RIFE: frame 1: the clip is interlaced (_FieldBased=1); deinterlace it first\n"
    )
    assert vs_message(Exception(text)) == "RIFE: frame 1: the clip is interlaced (_FieldBased=1); deinterlace it first"
    assert vs_message(Exception("VideoSource: plain message")) == "VideoSource: plain message"


def test_variable_rate_source_keeps_its_duration(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    """5 frames 1/30 s apart, then 5 frames 0.1 s apart: made constant at the nominal rate first.

    Read as 10 frames at the nominal rate, the output would last half as long as the source and its audio.
    """
    src = tmp_path / "vfr.mkv"
    setpts = "if(lt(N,5),N/30,4/30+(N-4)/10)/TB"
    ffmpeg("-i", media["carphone"], "-frames:v", "10", "-an", "-vf", f"setpts='{setpts}'", "-fps_mode", "vfr",
           "-c:v", "ffv1", src)  # fmt: skip
    out = tmp_path / "out.mkv"
    code, _, err = cli(capsys, "interpolate", src, "-o", out, "--codec", "ffv1", *FAST)
    assert code == 0, err
    assert re.search(r"variable frame rate \(frames 3\d-10\d ms apart\): made constant at 29\.97 fps", err), err
    (video,) = _by_type(out)["video"]
    assert float(Fraction(str(video["r_frame_rate"]))) == pytest.approx(60000 / 1001, abs=0.01)  # Matroska: ms
    seconds = int(video["nb_read_packets"]) * Fraction(1001, 60000)
    assert abs(seconds - _duration(src)) < Fraction(1, 30), (seconds, _duration(src))
    # a constant-rate source is left as it is (no warning)
    code, _, err = cli(capsys, "interpolate", media["carphone"], "-o", tmp_path / "cfr.mkv", "--codec", "ffv1", *FAST)
    assert code == 0 and "variable frame rate" not in err, err


def test_encoder_failure_leaves_no_output(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vsrife.cli import ffmpeg as ffmpeg_module

    monkeypatch.setattr(ffmpeg_module, "check_encoding", lambda *args: None)  # fail inside the real encode
    out = tmp_path / "fail.mp4"
    # libx264 refuses 4:4:4 in the baseline profile when it opens, after frames started flowing
    code, _, err = cli(
        capsys,
        "interpolate",
        media["bunny"],
        "-o",
        out,
        "--pix-fmt",
        "yuv444p",
        "--encoder-args",
        "-profile:v baseline",
        *FAST,
    )
    assert code == 1 and "vsrife: error: ffmpeg" in err and "baseline" in err and "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []
    # a failed --overwrite run keeps the old file
    out.write_bytes(b"previous render")
    code, _, err = cli(
        capsys,
        "interpolate",
        media["bunny"],
        "-o",
        out,
        "--overwrite",
        "--pix-fmt",
        "yuv444p",
        "--encoder-args",
        "-profile:v baseline",
        *FAST,
    )
    assert code == 1 and out.read_bytes() == b"previous render" and leftovers(tmp_path) == []
    # an encoder that does not exist is refused before anything starts
    code, _, err = cli(capsys, "interpolate", media["bunny"], "-o", tmp_path / "x.mkv", "--codec", "nope", *FAST)
    assert code == 2 and "unknown encoder 'nope'" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "bs") == ["fail.mp4"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hangup"])
def test_ctrl_c_leaves_no_output(media: dict[str, Path], tmp_path: Path, sig: signal.Signals) -> None:
    """SIGINT (Ctrl-C) or SIGHUP (a closed terminal, a dropped ssh session: it left the temporary file, which
    ffmpeg, in its own process group, then completed) to a running ``vsrife interpolate`` once progress
    shows: exit 128 + signal, no OUT, no temporary file."""
    out = tmp_path / "long.mkv"
    src = tmp_path / "long_source.mp4"
    ffmpeg(
        "-i", media["carphone"], "-vf", "loop=loop=3:size=16:start=0", "-c:v", "libx264", "-qp", "0", "-an", src
    )  # 64 source frames: far more work than the interrupt needs
    env = {**os.environ, "VSRIFE_BS_CACHE": str(tmp_path / "bs")}
    proc = subprocess.Popen(
        [str(vsrife_executable()), "interpolate", str(src), "-o", str(out), "--threads", "1"],
        stderr=subprocess.PIPE,
        env=env,
        # A suite started in the background by a non-interactive shell (`cmd &`) ignores SIGINT, and
        # children inherit that; a user pressing Ctrl-C runs vsrife with the default disposition.
        preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen, began = b"", time.monotonic()
    try:
        while not re.search(rb"\| *[1-9]\d*/\d+ \[", seen):  # at least one frame encoded
            chunk = proc.stderr.read1(4096)
            assert chunk, f"vsrife ended before showing progress: {seen.decode(errors='replace')[-800:]}"
            seen += chunk
            assert time.monotonic() - began < 300
        assert leftovers(tmp_path), "the render writes to a temporary file beside OUT"
        proc.send_signal(sig)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (seen + rest).decode(errors="replace")
    assert code == 128 + sig, text[-800:]
    assert "interrupted; no partial output left behind" in text and "Traceback" not in text
    assert not out.exists() and leftovers(tmp_path) == []


def test_segments_join_to_the_full_render(
    capsys: pytest.CaptureFixture[str], media: dict[str, Path], tmp_path: Path
) -> None:
    src = media["carphone"]
    full = tmp_path / "full.mkv"
    assert cli(capsys, "interpolate", src, "-o", full, "--codec", "ffv1", *FAST)[0] == 0
    reference = frame_hashes(full)
    assert len(reference) == 32 and len(set(reference)) > 16

    parts = []
    for i in (1, 2, 3):
        part = tmp_path / f"part{i}.mkv"
        code, _, err = cli(capsys, "interpolate", src, "-o", part, "--codec", "ffv1", "--segment", f"{i}/3", *FAST)
        assert code == 0, err
        assert [s["codec_type"] for s in streams(part)] == ["video"]  # partial renders carry no audio
        parts.append(part)
    assert [len(frame_hashes(p)) for p in parts] == [10, 11, 11]

    joined = tmp_path / "joined.mkv"
    code, _, err = cli(capsys, "join", *parts, "-o", joined, "--audio-from", src)
    assert code == 0, err
    assert frame_hashes(joined) == reference  # frame for frame
    assert packet_hash(joined, "0:a:0") == packet_hash(src, "0:a:0") == packet_hash(full, "0:a:0")

    # the parts are tagged with their output range: wrong order or a missing part is refused
    code, _, err = cli(capsys, "join", parts[0], parts[2], parts[1], "-o", tmp_path / "bad.mkv")
    assert code == 1 and "frames 10..20 are missing" in err and "in order" in err
    code, _, err = cli(capsys, "join", parts[0], parts[1], "-o", tmp_path / "bad.mkv")
    assert code == 1 and "frames 21..31 are missing" in err
    assert "vsrife_range" not in format_tags(joined) and "vsrife_render" not in format_tags(joined)
    # a part rendered with another model or scale does not join (it joined: the video changed mid-way);
    # another device or precision does (parts spread over machines)
    mixed = tmp_path / "mixed2.mkv"
    code, _, err = cli(capsys, "interpolate", src, "-o", mixed, "--codec", "ffv1", "--segment", "2/3", "--scale",
                       "0.5", "--precision", "fp32", *FAST)  # fmt: skip
    assert code == 0, err
    code, _, err = cli(capsys, "join", parts[0], mixed, parts[2], "-o", tmp_path / "bad.mkv")
    assert code == 1 and "was rendered with other settings" in err and "scale 1.0 vs 0.5" in err, err
    assert "precision" not in err
    same = tmp_path / "same2.mkv"
    code, _, err = cli(capsys, "interpolate", src, "-o", same, "--codec", "ffv1", "--segment", "2/3", "--precision",
                       "fp32", "--model", "3.6", *FAST)  # fmt: skip
    assert code == 0, err
    assert cli(capsys, "join", parts[0], same, parts[2], "-o", tmp_path / "fp32.mkv")[0] == 0
    (tmp_path / "fp32.mkv").unlink()

    # --frames A:B is a slice of the full render's output frames (B exclusive)
    piece = tmp_path / "piece.mkv"
    assert cli(capsys, "interpolate", src, "-o", piece, "--codec", "ffv1", "--frames", "5:17", *FAST)[0] == 0
    assert frame_hashes(piece) == reference[5:17]

    # parts from different settings are refused
    other = tmp_path / "other.mkv"
    ffmpeg("-i", parts[0], "-c:v", "libx264", "-qp", "0", other)
    code, _, err = cli(capsys, "join", parts[0], other, "-o", tmp_path / "bad.mkv")
    assert code == 1 and "does not match" in err and not (tmp_path / "bad.mkv").exists()
    # untagged files whose audio differs: concat would keep the first one's streams and lose audio
    plain = [tmp_path / "a.mkv", tmp_path / "b.mkv"]
    ffmpeg("-i", full, "-frames:v", "4", "-an", "-c:v", "copy", plain[0])
    ffmpeg("-i", full, "-frames:v", "4", "-c", "copy", plain[1])
    code, _, err = cli(capsys, "join", *plain, "-o", tmp_path / "bad.mkv")
    assert code == 1 and "has other audio/subtitle streams" in err and "--audio-from" in err, err
    code, _, err = cli(capsys, "join", *parts, "-o", tmp_path / "silent.mkv", "--audio-from", parts[0])
    assert code == 0 and "--audio-from" in err and "has no audio stream" in err, err
    (tmp_path / "silent.mkv").unlink()
    assert leftovers(tmp_path) == []
