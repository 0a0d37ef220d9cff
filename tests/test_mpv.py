"""mpv: the examples/mpv.vpy script as mpv runs it, a vspipe pipe into Debian's mpv, and the real mpv
with the VapourSynth filter (built by scripts/build_mpv_vs.sh).

Inside mpv (see mpv's video/filter/vf_vapoursynth.c) ``video_in`` has fps 0/1 and INT_MAX / 16 =
134217727 frames whatever the file's length, each frame carries ``_DurationNum = round(duration * 1e6)``
and ``_DurationDen = 1000000``; mpv times the output frames by their ``_Duration*`` props, and a request
past the last decoded frame fails, which mpv takes as the end of the video. A script that fails does not
fail mpv (it plays unfiltered and exits 0), so every check here counts frames.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from helpers.vsclips import REPO, VSPIPE, duration, run, same_pixels, streams, video_frames

vs = pytest.importorskip("vapoursynth")

core = vs.core

MPV_SCRIPT = REPO / "examples" / "mpv.vpy"
MPV_NUM_FRAMES = 2**31 // 16 - 1  # INT_MAX / 16, what mpv's video_in claims
SHOWINFO = re.compile(r"Parsed_showinfo_\d+: n:\s*(\d+) pts:\s*(-?\d+) pts_time:(\S+)")


# ----------------------------------------------------------------------------------------- (a) harness


@pytest.fixture(scope="module")
def small(sample_clip) -> vs.VideoNode:
    """8 frames of bikes at 160x68 (real motion, no cut)."""
    return core.resize.Bilinear(sample_clip("bikes")[40:48], 160, 68)


def _video_in(clip: vs.VideoNode, durations_us: list[int]) -> vs.VideoNode:
    """A clip like mpv's video_in: fps 0/1, 134217727 frames, per-frame durations in microseconds."""
    frames = [
        core.std.SetFrameProps(clip[i], _DurationNum=durations_us[i % len(durations_us)], _DurationDen=1_000_000)
        for i in range(clip.num_frames)
    ]
    looped = core.std.Loop(core.std.Splice(frames), times=math.ceil(MPV_NUM_FRAMES / clip.num_frames))
    # splicing on a clip of another rate makes the rate 0/1 ("variable"), as mpv's is
    other_rate = core.std.BlankClip(looped, length=1, fpsnum=1, fpsden=1)
    out = core.std.Splice([looped, other_rate], mismatch=True)[:MPV_NUM_FRAMES]
    assert out.fps == 0 and out.num_frames == MPV_NUM_FRAMES
    return out


def run_mpv_script(path: Path, **variables: Any) -> vs.VideoNode:
    """Evaluate a .vpy the way mpv's vf_vapoursynth does: injected globals, output 0."""
    vs.clear_outputs()
    scope = {"__name__": "__vapoursynth__", "__file__": str(path), **variables}
    try:
        exec(compile(path.read_text(), str(path), "exec"), scope)
        outputs = vs.get_outputs()
        assert 0 in outputs, "the script set no output"
        out = outputs[0]
        return out.clip if hasattr(out, "clip") else out
    finally:
        vs.clear_outputs()


def _mpv_globals(video_in: vs.VideoNode, container_fps: float, display_fps: float) -> dict[str, Any]:
    return {
        "video_in": video_in,
        "video_in_dw": video_in.width,
        "video_in_dh": video_in.height,
        "container_fps": container_fps,
        "display_fps": display_fps,
        "display_res": [0, 0],
        "user_data": "",
    }


@pytest.mark.parametrize(
    ("container_fps", "display_fps", "factor"),
    [
        (25.0, 60.0, 2),
        (25.0, 0.0, 2),
        (24000 / 1001, 0.0, 2),
        (0.0, 0.0, 2),
        (24.0, 144.0, 6),
        (23.976, 240.0, 10),
        (24.0, 480.0, 20),
        (float("nan"), float("inf"), 2),  # unknown rates: 23.976 -> 60
        (-1.0, 144.0, 6),
        (1e-9, 144.0, 32),  # a nonsense container rate: capped, not a 10^11x clip
        (60.0, 60.0, 1),  # already at the display's rate: played as it is
        (50.0, 60.0, 1),
    ],
)
def test_mpv_script_factor_and_frame_count(
    small: vs.VideoNode, container_fps: float, display_fps: float, factor: int
) -> None:
    video_in = _video_in(small, [40_000])
    out = run_mpv_script(MPV_SCRIPT, **_mpv_globals(video_in, container_fps, display_fps))
    assert out.fps == 0
    assert out.format.id == video_in.format.id  # mpv needs YUV back
    if factor == 1:
        assert out.num_frames == MPV_NUM_FRAMES and "VsrifeAction" not in out.get_frame(1).props
        assert same_pixels(out.get_frame(1), small.get_frame(1))
        return
    expected = MPV_NUM_FRAMES * factor
    assert out.num_frames == min(expected, 2**31 - 1)  # capped to what VapourSynth can count
    # an interpolated frame renders and is timed 1/factor of its source frame
    f = out.get_frame(factor // 2)
    assert str(f.props["VsrifeAction"]) == "interpolate" and f.props["VsrifeSource"] == 0
    assert duration(f) == Fraction(40_000, 1_000_000) / factor
    assert same_pixels(out.get_frame(factor), small.get_frame(1))


def test_mpv_script_variable_durations_and_far_frames(small: vs.VideoNode) -> None:
    """VFR input: each output frame lasts its source frame's duration / factor; frames far into the
    2^27-frame clip and the last one render too (no arithmetic overflow)."""
    durations = [40_000, 41_708, 33_367, 80_000]
    video_in = _video_in(small, durations)
    out = run_mpv_script(MPV_SCRIPT, **_mpv_globals(video_in, 25.0, 60.0))
    assert out.num_frames == 2 * MPV_NUM_FRAMES
    total = Fraction(0)
    for n in range(8):
        f = out.get_frame(n)
        assert duration(f) == Fraction(durations[(n // 2) % 4], 1_000_000) / 2, n
        total += duration(f)
    assert total == Fraction(sum(durations), 1_000_000)
    far = 2 * 100_000_001
    assert out.get_frame(far).props["VsrifeSource"] == 100_000_001
    last = out.get_frame(out.num_frames - 1)
    assert last.props["VsrifeSource"] == MPV_NUM_FRAMES - 1 and str(last.props["VsrifeAction"]) == "source"


def test_mpv_script_t0_frames_do_not_look_ahead(small: vs.VideoNode) -> None:
    """Inside mpv, asking for a frame past the last decoded one ends playback. A source frame (t = 0) must
    therefore not need the next one: emulate an input that fails past its end."""
    end = 4

    def fail_past_end(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        if n >= end:
            raise vs.Error("EOF or filter EOF/reinit")
        return f

    plain = _video_in(small, [40_000])
    video_in = core.std.ModifyFrame(plain, plain, fail_past_end)
    out = run_mpv_script(MPV_SCRIPT, **_mpv_globals(video_in, 25.0, 0.0))
    for n in range(2 * end - 1):  # 0 .. 2·end - 2: the last one is source frame end - 1 at t = 0
        out.get_frame(n)
    with pytest.raises(vs.Error):
        out.get_frame(2 * end - 1)  # t = 1/2 after the last frame: needs frame `end`


def test_no_look_ahead_on_cuda_for_mpv_sized_clips() -> None:
    """On CUDA the filter prepares source frame i + 2 ahead; for mpv's video_in (INT_MAX / 16 frames) that
    request fails past the file's end and ends playback, so the look-ahead must stay off there."""
    from vsrife.filter.rife import default_lookahead

    assert not default_lookahead("cuda", MPV_NUM_FRAMES)
    assert not default_lookahead("cuda", MPV_NUM_FRAMES + 1)
    assert default_lookahead("cuda", MPV_NUM_FRAMES - 1)  # a long but finite clip
    assert default_lookahead("cuda", 2)
    assert not default_lookahead("cpu", 100)


# -------------------------------------------------------------------------- (b) Debian's mpv, from a pipe


def _showinfo(output: str) -> list[tuple[int, Fraction]]:
    return [(int(m.group(1)), Fraction(m.group(3))) for m in SHOWINFO.finditer(output)]


def _mpv_cmd(mpv: str, *args: str) -> list[str]:
    return [mpv, "--no-config", "--msg-level=all=warn,ffmpeg=v,cplayer=info,vapoursynth=v", *args]


@pytest.fixture(scope="module")
def bbb_vpy(tmp_path_factory: pytest.TempPathFactory, sample_clip) -> Path:
    from vsrife.samples import sample_path

    sample_clip("bigbuckbunny")  # index once (bs_cache)
    path = tmp_path_factory.mktemp("mpv") / "bbb.vpy"
    path.write_text(
        textwrap.dedent(f"""
        import vapoursynth as vs
        from vsrife.filter.source import open_video
        core = vs.core
        clip = core.resize.Bilinear(open_video(r"{sample_path("bigbuckbunny")}")[:12], 160, 90)
        core.rife.RIFE(clip).set_output()
    """)
    )
    return path


@pytest.mark.skipif(shutil.which("mpv") is None or not Path(VSPIPE).exists(), reason="needs mpv and vspipe")
def test_vspipe_into_debian_mpv_plays_to_the_end(bbb_vpy: Path, bs_cache: Path) -> None:
    mpv = shutil.which("mpv")
    assert mpv
    cmd = " ".join(_mpv_cmd(mpv, "--vo=null", "--ao=null", "--untimed", "'--vf=lavfi=[showinfo]'", "-"))
    proc = run(["bash", "-c", f"set -o pipefail; '{VSPIPE}' -c y4m '{bbb_vpy}' - | {cmd}"], timeout=300)
    log = proc.stdout + proc.stderr
    assert "Exiting... (End of file)" in log
    shown = _showinfo(log)
    assert [n for n, _ in shown] == list(range(24)), shown
    times = [t for _, t in shown]
    assert all(abs(t - Fraction(i, 50)) < Fraction(1, 10**6) for i, t in enumerate(times)), times


# ------------------------------------------------------------------ (c) the real mpv with VapourSynth filter


@pytest.fixture(scope="session")
def mpv_vs() -> str:
    """scripts/build_mpv_vs.sh: builds once (minutes), then only checks the binary (under a second)."""
    proc = run(["bash", str(REPO / "scripts" / "build_mpv_vs.sh")], timeout=1500, check=False)
    binary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not Path(binary).is_file():
        pytest.skip(f"could not build mpv with the VapourSynth filter: {(proc.stderr or proc.stdout)[-800:]}")
    return binary


@pytest.fixture(scope="module")
def small_video(tmp_path_factory: pytest.TempPathFactory, sample_clip) -> Path:
    """24 frames of bigbuckbunny at 160x90, 25 fps, H.264."""
    from vsrife.samples import sample_path

    path = tmp_path_factory.mktemp("mpv-in") / "bbb24.mp4"
    run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(sample_path("bigbuckbunny")),
            "-frames:v",
            "24",
            "-vf",
            "scale=160:90",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(path),
        ]
    )
    assert len(video_frames(path)) == 24
    return path


def _no_script_error(log: str) -> None:
    bad = [line for line in log.splitlines() if "vapoursynth" in line.lower() and re.search(r"error|fail", line, re.I)]
    assert not bad, bad


def test_real_mpv_playback_with_the_example_script(mpv_vs: str, small_video: Path) -> None:
    """--vo=null: display_fps is 0, so the script targets 60 Hz: factor 2 for 25 fps."""
    proc = run(
        _mpv_cmd(
            mpv_vs,
            "--vo=null",
            "--ao=null",
            "--untimed",
            f"--vf=vapoursynth={MPV_SCRIPT},lavfi=[showinfo]",
            str(small_video),
        ),
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    _no_script_error(log)
    assert "Exiting... (End of file)" in log
    shown = _showinfo(log)
    # mpv's clip has no known end: the half frame after the last source frame (a repeat) cannot be made
    assert [n for n, _ in shown] == list(range(2 * 24 - 1)), [n for n, _ in shown]
    assert all(abs(t - Fraction(i, 50)) < Fraction(1, 10**6) for i, (_, t) in enumerate(shown))


def test_real_mpv_encode_mode(mpv_vs: str, small_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    run(
        _mpv_cmd(
            mpv_vs, "--no-audio", f"--vf=vapoursynth={MPV_SCRIPT}", str(small_video), f"--o={out}", "--ovc=libx264"
        ),
        timeout=300,
    )
    (video,) = [s for s in streams(out) if s["codec_type"] == "video"]
    assert (video["width"], video["height"]) == (160, 90)
    frames = video_frames(out)
    assert len(frames) == 2 * 24 - 1
    pts = [Fraction(f["pts"]) * Fraction(video["time_base"]) for f in frames]
    assert [b - a for a, b in itertools.pairwise(pts)] == [Fraction(1, 50)] * (len(pts) - 1)
