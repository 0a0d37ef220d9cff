"""vsrife.train.evaluate: benchmark runners on tiny synthetic folders in the real layouts (sample-video frames)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vsrife.arch import ArchSpec, build_network
from vsrife.media import read_frames
from vsrife.quality import rife_ssim, ssim, to_tensor
from vsrife.samples import sample_path
from vsrife.train.__main__ import main as cli
from vsrife.train.evaluate import (
    EvalResult,
    evaluate_footage,
    evaluate_middlebury,
    evaluate_ucf101,
    evaluate_vimeo,
    network_interpolator,
)
from vsrife.train.export import export_model
from vsrife.train.synthetic import write_frames, write_middlebury, write_ucf101, write_vimeo

try:
    from tests import reference as ref
except ImportError:  # run from inside tests/
    import reference as ref  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return read_frames(sample_path("carphone"), 0, 30)


def average(img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
    return (img0 + img1) / 2


def oracle_factory(gt: list[np.ndarray]) -> Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]:
    """An 'interpolator' that returns the true frames in order (checks wiring and scoring)."""
    it = iter(gt)

    def run(img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
        return torch.from_numpy(np.array(next(it))).permute(2, 0, 1).unsqueeze(0).float() / 255

    return run


def test_benchmark_ssim_is_the_official_ssim_matlab() -> None:
    """The benchmarks' SSIM equals ECCV2022-RIFE's ssim_matlab on real frames (colour as a third window
    dimension), which differs from the per-channel SSIM by more than papers' tables resolve."""
    msssim = ref.eccv_modules().msssim
    window = msssim.create_window_3d(11).double()  # in float64: its float32 sums drift by ~1e-4

    def official(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(msssim.ssim_matlab(x.double(), y.double(), window=window))

    f = read_frames(sample_path("carphone"), 10, 3)
    gt = to_tensor(f[1])
    for pred in (to_tensor(f[0]), (to_tensor(f[0]) + to_tensor(f[2])).div(2).mul(255).round().div(255)):
        ours, theirs = rife_ssim(pred, gt), official(gt, pred)
        assert ours == pytest.approx(theirs, abs=1e-5)
        assert abs(ours - ssim(pred, gt)) > 1e-3
    assert rife_ssim(gt, gt) == pytest.approx(1.0, abs=1e-6)


def test_vimeo_runner(tmp_path: Path, frames: np.ndarray) -> None:
    groups = [frames[i : i + 3] for i in range(0, 12, 3)]
    root = write_vimeo(tmp_path, groups, test=[1, 2, 3])
    res = evaluate_vimeo(root, average)
    assert res.count == 3 and res.benchmark == "vimeo90k"
    assert res.psnr == pytest.approx(res.baselines["average"], abs=0.05)  # (rounded) average == average baseline
    assert res.per_t["0.5000"]["count"] == 3
    perfect = evaluate_vimeo(root, oracle_factory([g[1] for g in groups[1:]]))
    assert math.isinf(perfect.psnr) and perfect.ssim == pytest.approx(1.0)
    # the official vimeo_interp_test layout (target/) works too
    (root / "sequences").rename(root / "target")
    assert evaluate_vimeo(root, average, limit=2).count == 2
    with pytest.raises(FileNotFoundError, match=r"tri_testlist\.txt"):
        evaluate_vimeo(tmp_path / "nowhere", average)


def test_ucf101_runner(tmp_path: Path, frames: np.ndarray) -> None:
    triplets = [frames[i : i + 3] for i in range(0, 9, 3)]
    root = write_ucf101(tmp_path, triplets)
    res = evaluate_ucf101(root, average)
    assert res.count == 3 and 20 < res.psnr < 50 and 0 < res.ssim <= 1
    assert res.baselines["repeat"] < res.baselines["average"]
    assert sorted(p.name for p in (root / "0").iterdir()) == ["frame_00.png", "frame_01_gt.png", "frame_02.png"]


def test_middlebury_runner_ie(tmp_path: Path, frames: np.ndarray) -> None:
    triplets = {"Beanbags": frames[0:3], "Urban2": frames[5:8]}
    root = write_middlebury(tmp_path, triplets)
    res = evaluate_middlebury(root, average)
    assert res.count == 2 and res.ie is not None
    expected = []
    for a, mid, b in (triplets["Beanbags"], triplets["Urban2"]):  # sorted by name
        pred = np.round((a.astype(np.float64) / 255 + b.astype(np.float64) / 255) / 2 * 255)
        expected.append(np.abs(pred - mid).mean())
    assert res.ie == pytest.approx(float(np.mean(expected)), abs=0.01)  # float32 vs float64 rounding ties
    perfect = evaluate_middlebury(root, oracle_factory([triplets["Beanbags"][1], triplets["Urban2"][1]]))
    assert perfect.ie == 0.0


def test_footage_protocol_skips_cuts_and_duplicates(frames: np.ndarray) -> None:
    bikes = read_frames(sample_path("bikes"), 0, 6)
    other = np.stack([cv2.resize(f, (176, 144), interpolation=cv2.INTER_AREA) for f in bikes])
    clip = np.concatenate([frames[:9], frames[8:9], other])  # 0..8, duplicate 9, cut 9->10, 10..15
    half = evaluate_footage(clip, average)
    names = [i["name"] for i in half.items]
    assert names == ["0+1", "2+1", "4+1", "6+1", "10+1", "12+1"]  # stepped by 2, never across 8-9-10
    assert half.skipped == 1 and set(half.per_t) == {"0.5000"}  # one prediction lost: (8, 10) holds the duplicate
    thirds = evaluate_footage(clip, lambda a, b, t: (1 - t) * a + t * b, thirds=True)
    assert set(thirds.per_t) == {"0.3333", "0.6667"}
    assert thirds.psnr == pytest.approx(thirds.baselines["blend"], abs=0.05)
    assert [i["name"] for i in thirds.items] == ["0+1", "0+2", "3+1", "3+2", "10+1", "10+2"]
    assert thirds.skipped == 1  # (6, 9) holds the duplicate; the walk goes on at 10


def test_network_interpolator_and_cli(tmp_path: Path, frames: np.ndarray) -> None:
    """A (random) network through padding, and the CLI on an exported model."""
    torch.manual_seed(0)
    net = build_network(ArchSpec(family="v4", widths=(16, 16), scales=(2, 1))).eval()
    interp = network_interpolator(net)
    a = torch.from_numpy(np.array(frames[0])).permute(2, 0, 1).unsqueeze(0).float() / 255
    out = interp(a, a, 0.25)
    assert out.shape == a.shape  # 144x176 padded to 160x192 internally, cropped back
    export_model(net, tmp_path / "model", name="random")
    root = write_ucf101(tmp_path / "ucf", [frames[0:3], frames[3:6]])
    result_file = tmp_path / "res.json"
    rc = cli(["evaluate", "--model-path", str(tmp_path / "model"), "--benchmark", "ucf101", "--root", str(root),
              "--json", str(result_file), "--device", "cpu"])  # fmt: skip
    assert rc == 0
    res = json.loads(result_file.read_text())
    assert res["model"] == "random" and res["count"] == 2
    folder = write_frames(tmp_path / "clip", frames[:7])
    assert cli(["evaluate", "--model-path", str(tmp_path / "model"), "--benchmark", "footage-thirds",
                "--root", str(folder), "--device", "cpu"]) == 0  # fmt: skip


@pytest.fixture
def random_model(tmp_path: Path) -> Path:
    """A tiny random 4.x network exported as a model folder (the CLI loads it)."""
    torch.manual_seed(0)
    export_model(build_network(ArchSpec(family="v4", widths=(16, 16), scales=(2, 1))).eval(), tmp_path / "model")
    return tmp_path / "model"


def test_nothing_to_score_is_an_error_and_json_never_holds_nan(
    tmp_path: Path, frames: np.ndarray, random_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clip with no scorable window exits 1 with a message (it exited 0 printing NaN, which is not JSON); a
    result's dict has null for no score and the PSNR cap for exact predictions."""
    result = tmp_path / "res.json"
    short = write_frames(tmp_path / "short", frames[:2])
    rc = cli(["evaluate", "--model-path", str(random_model), "--benchmark", "footage", "--root", str(short),
              "--json", str(result), "--device", "cpu"])  # fmt: skip
    assert rc == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: root: nothing to score in {short}: too few frames") and not captured.out
    assert not result.exists()
    assert EvalResult("empty").to_dict()["psnr"] is None
    perfect = evaluate_ucf101(write_ucf101(tmp_path / "ucf", [frames[0:3]]), oracle_factory([frames[1]]))
    assert math.isinf(perfect.psnr) and perfect.to_dict()["psnr"] == 100.0
    json.loads(json.dumps(perfect.to_dict(items=True), allow_nan=False))


def test_missing_or_broken_benchmark_files_are_named_up_front(
    tmp_path: Path, frames: np.ndarray, random_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing frame in a benchmark layout is named before the first prediction (it was an OSError traceback
    after the scores so far); a damaged image is a one-line error; an unwritable --json is found first."""
    root = write_vimeo(tmp_path / "vimeo", [frames[i : i + 3] for i in range(0, 12, 3)], test=[0, 1, 2, 3])
    gone = root / "sequences" / "00001" / "0004" / "im1.png"
    gone.unlink()
    calls: list[float] = []

    def counting(img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
        calls.append(t)
        return average(img0, img1, t)

    with pytest.raises(FileNotFoundError, match=f"root: {gone} does not exist"):
        evaluate_vimeo(root, counting)
    assert not calls  # refused before any prediction
    assert evaluate_vimeo(root, counting, limit=3).count == 3  # what is not scored need not exist
    ev = ["evaluate", "--model-path", str(random_model), "--benchmark", "vimeo", "--root", str(root), "--device", "cpu"]
    assert cli(ev) == 2
    err = capsys.readouterr().err
    assert err == f"error: root: {gone} does not exist\n"
    cv2.imwrite(str(gone), np.zeros((4, 4, 3), np.uint8))
    gone.write_bytes(gone.read_bytes()[:20])  # truncated: not decodable
    assert cli(ev) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: root: cannot read image {gone}") and "Traceback" not in err
    for bad, message in ((tmp_path / "nowhere" / "r.json", "json: folder"), (tmp_path, "json: ")):
        assert cli([*ev, "--limit", "3", "--json", str(bad)]) == 2
        assert capsys.readouterr().err.startswith(f"error: {message}")


def test_middlebury_limit(tmp_path: Path, frames: np.ndarray) -> None:
    """--limit applies to Middlebury too (it scored every sequence)."""
    root = write_middlebury(tmp_path, {"Beanbags": frames[0:3], "Urban2": frames[5:8]})
    assert evaluate_middlebury(root, average, limit=1).count == 1
    assert evaluate_middlebury(root, average).count == 2
