"""``vsrife eval`` (triplet protocol report) and ``vsrife bench`` at tiny sizes on real footage."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers.checkpoints import seeded_checkpoint

from vsrife.arch.winograd import winograd_available
from vsrife.engine.devices import cpu_has_native_bf16, cpu_prefers_winograd

try:
    from tests.test_cli_support import cli, ffmpeg, make_bikes_eval, make_carphone
except ImportError:
    from test_cli_support import cli, ffmpeg, make_bikes_eval, make_carphone  # type: ignore[no-redef]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Private BestSource cache; torch's thread count restored (``--threads 1`` sets it for the process)."""
    monkeypatch.setenv("VSRIFE_BS_CACHE", str(tmp_path / "bs"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bikes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bikes_eval(tmp_path_factory.mktemp("bikes"))


def test_eval_report(capsys: pytest.CaptureFixture[str], bikes: Path, tmp_path: Path) -> None:
    html, js = tmp_path / "report" / "report.html", tmp_path / "results.json"
    code, out, err = cli(
        capsys, "eval", bikes, "--frames", "16", "--step", "2", "--out", html, "--json", js, "--threads", "1"
    )
    assert code == 0, err
    r = json.loads(js.read_text())
    kinds = {t["k"]: t["kind"] for t in r["triplets"]}
    assert kinds == {0: "ok", 2: "ok", 4: "ok", 6: "duplicate", 8: "ok", 10: "cut", 12: "ok"}
    assert r["skipped"] == {"duplicate": 1, "cut": 1} and r["evaluated"] == 5
    assert r["methods"] == ["rife-3.6", "average", "repeat", "mvtools"]
    for t in r["triplets"]:
        if t["kind"] != "ok":
            assert t["scores"] == {}
            continue
        for method, s in t["scores"].items():
            assert 15 < s["psnr"] < 60 and 0.3 < s["ssim"] <= 1, (t["k"], method, s)
    means, margins = r["means"], r["margins_over_average"]
    # RIFE beats the neighbour average (by a lot on this footage) and repeating a frame is worst
    assert margins["rife-3.6"]["psnr"] > 3 and margins["rife-3.6"]["ssim"] > 0
    assert means["repeat"]["psnr"] < means["average"]["psnr"] < means["rife-3.6"]["psnr"]
    assert means["mvtools"]["psnr"] > means["average"]["psnr"]
    assert margins["average"] == {"psnr": 0.0, "ssim": 0.0}
    assert r["seconds_per_frame"]["rife-3.6"] > 0 and r["size"] == [160, 68] and r["device"] == "cpu"

    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 2
    assert "<b>1</b> with\nnear-duplicate" in page and "<b>1</b> across a\ncut" in page
    assert "rife-3.6" in page and "mvtools" in page and "skipped: cut" in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # self-contained
    # the summary on stdout
    assert "5 triplets evaluated; skipped: 1 near-duplicate, 1 cut" in out
    assert re.search(r"rife-3\.6 +\d+\.\d\d +0\.\d{4} +\+\d+\.\d\d", out)


def test_eval_errors(capsys: pytest.CaptureFixture[str], bikes: Path) -> None:
    code, _, err = cli(capsys, "eval", bikes, "--frames", "2")
    assert code == 2 and "fewer than 3 frames" in err
    code, _, err = cli(capsys, "eval", bikes, "--start", "100")
    assert code == 2 and "outside the video's 16 frames" in err
    # only the cut: nothing to evaluate
    code, _, err = cli(capsys, "eval", bikes, "--start", "10", "--frames", "3", "--no-mvtools")
    assert code == 1 and "no usable triplets" in err and "1 cut" in err
    code, _, err = cli(capsys, "eval", bikes, "--device", "tpu")
    assert code == 2 and "--device must be" in err
    code, _, err = cli(capsys, "eval", bikes, "--out", "r.html", "--json", "./r.html")
    assert code == 2 and "--out and --json are the same file" in err


def test_reports_never_replace_an_input_and_fail_before_the_work(
    capsys: pytest.CaptureFixture[str], bikes: Path
) -> None:
    before = bikes.read_bytes()
    for option in ("--out", "--json"):
        code, _, err = cli(capsys, "eval", bikes, option, bikes, "--no-mvtools")
        assert code == 2 and f"{option} {bikes} is also an input" in err, err
    code, _, err = cli(capsys, "bench", "--input", bikes, "--json", bikes, "--frames", "1")
    assert code == 2 and f"--json {bikes} is also an input" in err, err
    assert bikes.read_bytes() == before
    # a path under a file cannot be written: refused up front (no "triplets evaluated" summary first)
    code, out, err = cli(capsys, "eval", bikes, "--json", bikes / "r.json", "--no-mvtools")
    assert code == 2 and "--json" in err and "is not a folder" in err and out == "", err
    # a folder nobody can create files in, root included (Linux /proc)
    code, out, err = cli(capsys, "bench", "--json", "/proc/vsrife-bench.json", "--frames", "1")
    assert code == 2 and "--json /proc/vsrife-bench.json cannot be written" in err and out == "", err


def test_eval_refuses_frames_smaller_than_the_ssim_window(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    small = tmp_path / "small.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=16x10:rate=25", "-frames:v", "5", "-c:v", "ffv1", small)
    code, _, err = cli(capsys, "eval", small, "--no-mvtools")
    assert code == 2 and "16x10; SSIM needs frames of at least 11x11" in err and "Traceback" not in err, err


def test_bench(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    js = tmp_path / "bench.json"
    code, out, err = cli(
        capsys, "bench", "--width", "64", "--height", "48", "--frames", "2", "--threads", "1", "--json", js
    )
    assert code == 0, err
    results = json.loads(js.read_text())["results"]
    assert [r["path"] for r in results] == ["model", "filter"]
    for r in results:
        assert r["fps"] > 0 and r["interpolations"] == 2 and r["peak_rss_mib"] > 100 and r["model"] == "3.6"
    assert results[1]["output_frames"] == 4 and results[1]["source"] == "BlankClip"
    assert results[0]["torch_compile"] == "off" and results[0]["warmup_s"] > 0
    cpu_default = winograd_available() and cpu_prefers_winograd() and not cpu_has_native_bf16()
    assert results[0]["winograd"] == (results[0]["device"] == "cpu" and cpu_default)
    assert "interpolations/s" in out and "peak RSS" in out and "warm-up" in out


def test_bench_real_frames(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    clip = make_carphone(tmp_path, frames=4)
    code, out, err = cli(
        capsys,
        "bench",
        "--input",
        clip,
        "--width",
        "66",
        "--height",
        "50",
        "--frames",
        "2",
        "--path",
        "filter",
        "--threads",
        "1",
        "--no-progress",
    )
    assert code == 0, err
    assert out.count("interpolations/s") == 1 and out.lstrip().startswith("66x50")


def test_bench_names_the_model_a_path_holds(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With only --model-path the row names the version its layout is (not the default model)."""
    path = seeded_checkpoint("4.6", tmp_path)
    js = tmp_path / "bench.json"
    code, _, err = cli(capsys, "bench", "--model-path", path, "--path", "both", "--width", "64", "--height", "48",
                         "--frames", "1", "--threads", "1", "--no-progress", "--json", js)  # fmt: skip
    assert code == 0, err
    assert [r["model"] for r in json.loads(js.read_text())["results"]] == ["4.6", "4.6"]
