"""End to end through vspipe: real footage (bigbuckbunny, downscaled) piped into ffmpeg, examples/encode.sh,
and vspipe's own mkv output for RGB. Checks frame counts, rates, exact timestamps, audio and pixels.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers.vsclips import REPO, VSPIPE, planes, run, streams, video_frames

vs = pytest.importorskip("vapoursynth")

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None or not Path(VSPIPE).exists(),
    reason="needs ffmpeg, ffprobe and vspipe",
)

core = vs.core
SOURCE_FRAMES = 12


def _script(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture(scope="module")
def bbb_path(sample_clip) -> Path:
    from vsrife.samples import sample_path

    sample_clip("bigbuckbunny")  # index it once for the session (bs_cache)
    return sample_path("bigbuckbunny")


def _steps(frames: list[dict], time_base: Fraction) -> list[Fraction]:
    """Differences of consecutive frame timestamps, exactly (pts x time_base)."""
    pts = [Fraction(int(f["pts"])) * time_base for f in frames]
    assert pts[0] == 0
    return [b - a for a, b in itertools.pairwise(pts)]


def test_vspipe_y4m_into_ffmpeg(tmp_path: Path, bbb_path: Path, bs_cache: Path) -> None:
    script = _script(
        tmp_path / "bbb.vpy",
        f"""
        import vapoursynth as vs
        from vsrife.filter.source import open_video
        core = vs.core
        clip = open_video(r"{bbb_path}")[:{SOURCE_FRAMES}]
        clip = core.resize.Bilinear(clip, 320, 180)
        core.rife.RIFE(clip).set_output()
    """,
    )
    y4m, out = tmp_path / "copy.y4m", tmp_path / "out.mp4"
    cmd = (
        f"set -o pipefail; '{VSPIPE}' -c y4m '{script}' - | tee '{y4m}' | "
        f"ffmpeg -hide_banner -loglevel error -y -i - -c:v libx264 -preset ultrafast -pix_fmt yuv420p '{out}'"
    )
    run(["bash", "-c", cmd], timeout=300)

    # what vspipe sent: a 50 fps stream of 24 frames whose t = 0 frames are the source frames, bit for bit
    data = y4m.read_bytes()
    header = data[: data.index(b"\n")].split()
    assert b"F50:1" in header and b"W320" in header and b"H180" in header
    chunks = data.split(b"FRAME\n")[1:]
    assert len(chunks) == 2 * SOURCE_FRAMES
    from vsrife.filter.source import open_video

    src = core.resize.Bilinear(open_video(bbb_path), 320, 180)
    for n in (0, 2, 2 * SOURCE_FRAMES - 2):
        expected = b"".join(p.tobytes() for p in planes(src.get_frame(n // 2)))
        assert chunks[n][: len(expected)] == expected, n
    assert chunks[1] != chunks[0] and chunks[1] != chunks[2]
    assert chunks[-1][: len(chunks[-2])] == chunks[-2][: len(chunks[-1])]  # the last frame repeated

    # what ffmpeg wrote: 24 frames at 50/1, timestamps exactly 1/50 s apart
    (video,) = [s for s in streams(out) if s["codec_type"] == "video"]
    assert video["r_frame_rate"] == "50/1" and video["avg_frame_rate"] == "50/1"
    frames = video_frames(out)
    assert len(frames) == 2 * SOURCE_FRAMES
    steps = _steps(frames, Fraction(video["time_base"]))
    assert set(steps) == {Fraction(1, 50)}


def test_encode_example_keeps_audio(tmp_path: Path, bbb_path: Path, bs_cache: Path) -> None:
    """examples/encode.sh on a 0.5 s cut of bigbuckbunny (320x180, with its AAC audio)."""
    short = tmp_path / "short.mp4"
    run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(bbb_path),
            "-t",
            "0.5",
            "-vf",
            "scale=320:180",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            str(short),
        ]
    )
    src_frames = len(video_frames(short))
    assert src_frames == 13 and any(s["codec_type"] == "audio" for s in streams(short))

    out = tmp_path / "interpolated.mp4"
    proc = run([str(REPO / "examples" / "encode.sh"), str(short), str(out)], env={"VSPIPE": VSPIPE}, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    kinds = [s["codec_type"] for s in streams(out)]
    assert kinds.count("video") == 1 and kinds.count("audio") == 1, kinds
    (audio,) = [s for s in streams(out) if s["codec_type"] == "audio"]
    assert audio["codec_name"] == "aac" and float(audio["duration"]) > 0.4
    (video,) = [s for s in streams(out) if s["codec_type"] == "video"]
    assert video["r_frame_rate"] == "50/1"
    frames = video_frames(out)
    assert len(frames) == 2 * src_frames
    assert set(_steps(frames, Fraction(video["time_base"]))) == {Fraction(1, 50)}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (("-color_range", "pc", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"),
         ("pc", "bt709", "bt709")),
        # PAL: ffprobe names the transfer bt470bg, which -color_trc does not take (gamma28)
        (("-color_range", "tv", "-colorspace", "bt470bg", "-color_primaries", "bt470bg", "-color_trc", "gamma28"),
         ("tv", "bt470bg", "bt470bg")),
    ],
    ids=["full-range-bt709", "pal"],
)  # fmt: skip
def test_encode_example_short_audio_and_colour_tags(
    tmp_path: Path, bbb_path: Path, bs_cache: Path, tags: tuple[str, ...], expected: tuple[str, str, str]
) -> None:
    """Audio shorter than the video (0.2 s of 0.4 s) no longer ends the encode early (it failed without a
    word), and the source's colour tags are kept (the Y4M pipe carries none)."""
    src = tmp_path / "src.mp4"
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(bbb_path), "-f", "lavfi",
         "-i", "sine=f=440:d=0.2", "-map", "0:v", "-map", "1:a", "-t", "0.4", "-vf", "scale=160:90",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *tags, "-c:a", "aac",
         str(src)])  # fmt: skip
    src_frames = len(video_frames(src))
    out = tmp_path / "out.mp4"
    proc = run([str(REPO / "examples" / "encode.sh"), str(src), str(out)], env={"VSPIPE": VSPIPE}, timeout=300,
               check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-500:]
    assert len(video_frames(out)) == 2 * src_frames
    (video,) = [s for s in streams(out) if s["codec_type"] == "video"]
    assert (video["color_range"], video["color_space"], video["color_transfer"]) == expected


def test_encode_example_with_a_relative_input_path(tmp_path: Path, bbb_path: Path, bs_cache: Path) -> None:
    short = tmp_path / "short.mp4"
    run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(bbb_path),
            "-frames:v",
            "3",
            "-vf",
            "scale=160:90",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-an",
            str(short),
        ]
    )
    proc = run(
        [str(REPO / "examples" / "encode.sh"), "short.mp4", "out.mp4", "5/2"],
        env={"VSPIPE": VSPIPE},
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert len(video_frames(tmp_path / "out.mp4")) == 8  # ceil(3 x 5/2)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".encode")] == []  # no temporary left
    # basic.vpy itself: a relative input is relative to where vspipe ran (vspipe runs scripts from their folder)
    basic = str(REPO / "examples" / "basic.vpy")
    info = run([VSPIPE, "--info", "-a", "input=short.mp4", basic], cwd=tmp_path, env={"PWD": str(tmp_path)})
    assert "Frames: 6" in info.stdout, info.stdout


def test_encode_example_refuses_bad_arguments_and_keeps_the_input(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(b"precious")
    encode = str(REPO / "examples" / "encode.sh")
    for args, message in (
        ([src, src], "OUTPUT is the INPUT"),
        ([src, tmp_path / "out.mp4", "2.5"], "FACTOR must be an integer or N/M"),
        ([src, tmp_path / "out.mp4", "1"], "FACTOR must be above 1"),
        ([src, tmp_path / "out.mp4", "2; rm -rf /"], "FACTOR must be an integer or N/M"),
        ([src, tmp_path / "missing" / "out.mp4"], "output folder"),
        ([tmp_path / "none.mp4", tmp_path / "out.mp4"], "is not a file"),
        ([src], "usage: encode.sh"),
    ):
        proc = run([encode, *map(str, args)], env={"VSPIPE": VSPIPE}, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    assert src.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_vspipe_mkv_carries_rgb(tmp_path: Path, bbb_path: Path, bs_cache: Path) -> None:
    script = _script(
        tmp_path / "rgb.vpy",
        f"""
        import vapoursynth as vs
        from vsrife.filter.source import open_video
        core = vs.core
        clip = open_video(r"{bbb_path}")[:4]
        clip = core.resize.Bilinear(clip, 160, 90, format=vs.RGB24, matrix_in=1)
        core.rife.RIFE(clip).set_output()
    """,
    )
    out = tmp_path / "rgb.mkv"
    run([VSPIPE, "-c", "mkv", str(script), str(out)], timeout=300)
    (video,) = streams(out)
    assert video["codec_type"] == "video" and video["codec_name"] == "rawvideo"
    assert video["pix_fmt"] in ("gbrp", "rgb24") and (video["width"], video["height"]) == (160, 90)
    assert video["r_frame_rate"] == "50/1"
    frames = video_frames(out)
    assert len(frames) == 8
    assert set(_steps(frames, Fraction(video["time_base"]))) == {Fraction(1, 50)}

    # the pixels: frame 0 is the source frame, frame 1 is what the filter makes in this process too
    data = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(out),
            "-frames:v",
            "2",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gbrp",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    size = 160 * 90
    assert len(data) == 2 * 3 * size
    from vsrife.filter.source import open_video

    clip = core.resize.Bilinear(open_video(bbb_path)[:4], 160, 90, format=vs.RGB24, matrix_in=1)
    mine = core.rife.RIFE(clip)
    for n in (0, 1):
        g, b, r = (np.frombuffer(data, np.uint8, size, (3 * n + k) * size).reshape(90, 160) for k in range(3))
        expected = planes(mine.get_frame(n))
        assert np.array_equal(r, expected[0]) and np.array_equal(g, expected[1]) and np.array_equal(b, expected[2]), n
    assert np.array_equal(planes(mine.get_frame(0))[0], planes(clip.get_frame(0))[0])
