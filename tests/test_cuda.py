"""CUDA path: the engine and the filter on an NVIDIA GPU (skipped cleanly without one).

Run on a GPU machine with ``pytest -m cuda`` (``scripts/gpu_check.sh`` does, plus the benchmarks).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from helpers.checkpoints import seeded_checkpoint

from vsrife.engine import Interpolator
from vsrife.media import read_frames
from vsrife.quality import psnr, to_tensor
from vsrife.samples import sample_path

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (NVIDIA GPU + driver) available"),
]


@pytest.fixture(scope="module")
def triplet() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    f = read_frames(sample_path("bikes"), 40, 3)  # VapourSynth fallback where ffmpeg is missing
    return to_tensor(f[0]), to_tensor(f[1]), to_tensor(f[2])


def _random_engine(version: str, tmp: Path, **kwargs: object) -> Interpolator:
    path = tmp / f"flownet_v{version}.pkl"
    if not path.exists():
        seeded_checkpoint(version, tmp)
    return Interpolator(version, model_path=str(path), device="cuda", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["4.6", "4.25", "3.6"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graphs_match_eager(
    version: str, precision: str, triplet: tuple[torch.Tensor, ...], tmp_path: Path
) -> None:
    """Replaying the captured graph gives exactly the eager result, for every t and several calls."""
    a, _, b = (x.cuda() for x in triplet)

    def make(graphs: bool) -> Interpolator:
        if version == "3.6":
            return Interpolator("3.6", device="cuda", precision=precision, cuda_graphs=graphs)
        return _random_engine(version, tmp_path, precision=precision, cuda_graphs=graphs)

    eager, graphed = make(False), make(True)
    assert eager.cuda_graphs == "off"
    for t in (0.5, 0.25, 0.75, 0.5):
        ref = eager.interpolate(a, b, t)
        out = graphed.interpolate(a, b, t)
        assert graphed.cuda_graphs == "on", graphed.cuda_graphs
        # cuDNN may pick other algorithms under capture: fp32 stays far inside the 1e-4 fidelity bound
        assert float((out - ref).abs().max()) <= (1e-4 if precision == "fp32" else 2e-3), t
    assert graphed._graphs is not None and graphed._graphs.captures == 1


@pytest.mark.parametrize("version", ["4.6", "3.6"])
def test_cuda_torch_compile_under_graphs(version: str, triplet: tuple[torch.Tensor, ...], tmp_path: Path) -> None:
    """torch_compile=True: the captured graph replays the compiled kernels; fp16 result = the default's."""
    a, _, b = (x.cuda() for x in triplet)

    def make(**kwargs: object) -> Interpolator:
        if version == "3.6":
            return Interpolator("3.6", device="cuda", **kwargs)  # type: ignore[arg-type]
        return _random_engine(version, tmp_path, **kwargs)

    default, fast = make(), make(torch_compile=True)
    for t in (0.5, 0.25) if version != "3.6" else (0.5, 1 / 3):
        ref = default.interpolate(a, b, t)
        out = fast.interpolate(a, b, t)
        assert fast.torch_compile == "on" and fast.cuda_graphs == "on", (fast.torch_compile, fast.cuda_graphs)
        # fp16 fused differently rounds differently: a few pixels move by up to ~4/255 (H200: 0.0143
        # for v3.6), the picture stays the same
        assert float((out - ref).abs().max()) <= 0.05, t
        assert psnr(out.cpu(), ref.cpu()) > 50.0, t
        assert float((out - a).abs().mean()) > 0.01


def test_cuda_graphs_new_size_recaptures(triplet: tuple[torch.Tensor, ...]) -> None:
    a, _, b = (x.cuda() for x in triplet)
    eng = Interpolator("3.6", device="cuda")
    eng.interpolate(a, b)
    small = eng.interpolate(a[..., :100, :150], b[..., :100, :150])
    assert small.shape == (*a.shape[:-2], 100, 150)
    assert eng._graphs is not None and eng._graphs.captures == 2 and eng.cuda_graphs == "on"


def test_cuda_failed_capture_falls_back_on_the_callers_stream(triplet: tuple[torch.Tensor, ...]) -> None:
    """A capture that fails turns graphs off and leaves the thread on its own stream, and the eager results
    are the same as an engine that never tried graphs."""
    a, _, b = (x.cuda() for x in triplet)
    eng = Interpolator("3.6", device="cuda", precision="fp32")
    assert eng._graphs is not None
    call, calls = eng._graphs.call, {"n": 0}

    def fails_under_capture(*args: object) -> torch.Tensor:
        if torch.cuda.is_current_stream_capturing():
            calls["n"] += 1
            torch.cuda.synchronize()  # not permitted while capturing: invalidates the capture
        return call(*args)  # type: ignore[arg-type]

    eng._graphs.call = fails_under_capture
    before = torch.cuda.current_stream()
    out = eng.interpolate(a, b)
    assert calls["n"] == 1 and eng.cuda_graphs.startswith("disabled"), eng.cuda_graphs
    assert torch.cuda.current_stream() == before
    eager = Interpolator("3.6", device="cuda", precision="fp32", cuda_graphs=False)
    assert float((out - eager.interpolate(a, b)).abs().max()) < 1e-5


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_cuda_graphs_on_a_second_gpu(triplet: tuple[torch.Tensor, ...]) -> None:
    """An engine on cuda:1 used from a thread whose current device is cuda:0 captures its graphs on cuda:1,
    and replaying them computes each new pair (a capture on the wrong device records nothing)."""
    torch.cuda.set_device(0)
    a, m, b = (x.to("cuda:1") for x in triplet)
    graphed = Interpolator("3.6", device="cuda:1", precision="fp32")
    eager = Interpolator("3.6", device="cuda:1", precision="fp32", cuda_graphs=False)
    for x, y in ((a, b), (a, m), (m, b)):
        out = graphed.interpolate(x, y)
        assert out.device == torch.device("cuda:1")
        assert float((out - eager.interpolate(x, y)).abs().max()) < 1e-4
    assert graphed.cuda_graphs == "on", graphed.cuda_graphs


def test_cuda_fp32_matches_cpu_fp32(triplet: tuple[torch.Tensor, ...]) -> None:
    a, _, b = triplet
    cpu = Interpolator("3.6", device="cpu", precision="fp32").interpolate(a, b)
    gpu = Interpolator("3.6", device="cuda", precision="fp32").interpolate(a.cuda(), b.cuda())
    assert gpu.device.type == "cuda" and gpu.shape == a.shape
    assert float((gpu.cpu() - cpu).abs().max()) < 1e-3


def test_cuda_fp16_quality(triplet: tuple[torch.Tensor, ...]) -> None:
    a, gt, b = triplet
    eng = Interpolator("3.6", device="cuda")  # auto -> fp16 on CUDA
    assert eng.dtype == torch.float16
    out = eng.interpolate(a.cuda(), b.cuda()).cpu()
    ref = Interpolator("3.6", device="cpu", precision="fp32").interpolate(a, b)
    assert psnr(out, ref) > 40.0  # fp16 changes the picture only slightly
    assert psnr(out, gt) > psnr((a + b) / 2, gt) + 4.0


def test_cuda_filter_half_clip_end_to_end() -> None:
    vs = pytest.importorskip("vapoursynth")
    from vsrife.filter import RIFE

    core = vs.core
    clip = core.std.BlankClip(format=vs.RGBH, width=320, height=180, length=4, color=[0.2, 0.5, 0.8])
    out = RIFE(clip, device="cuda")
    assert out.format.id == vs.RGBH and out.num_frames == 8
    f = out.get_frame(1)
    assert str(f.props["VsrifeAction"]) == "interpolate"


def test_cuda_filter_yuv_matches_cpu() -> None:
    vs = pytest.importorskip("vapoursynth")
    import numpy as np

    from vsrife.filter import RIFE
    from vsrife.filter.source import open_video

    clip = vs.core.resize.Bilinear(open_video(sample_path("bikes"))[40:43], 320, 136)
    cpu = RIFE(clip, device="cpu", precision="fp32").get_frame(1)
    gpu = RIFE(clip, device="cuda", precision="fp32").get_frame(1)
    for p in range(3):
        diff = np.abs(np.asarray(cpu[p]).astype(int) - np.asarray(gpu[p]).astype(int))
        assert diff.max() <= 2


@pytest.mark.parametrize("fmt", ["RGBH", "YUV420P8", "YUV444P16", "GRAY8"])
def test_cuda_transfer_modes_agree(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned staging, direct pageable copies, look-ahead and run-ahead give the same bits (any format, odd width)."""
    vs = pytest.importorskip("vapoursynth")
    import numpy as np

    import vsrife.filter.rife as rife_module
    from vsrife.filter import RIFE
    from vsrife.filter.source import open_video

    clip = vs.core.resize.Bicubic(
        open_video(sample_path("bikes"))[40:43], 322, 136, format=getattr(vs, fmt), matrix_in_s="709"
    )
    results = {}
    variants = (("pinned", None, None), ("direct", None, None), ("pinned", None, False), ("pinned", False, None))
    for mode, lookahead, pipeline in variants:  # default (run-ahead), direct, look-ahead only, neither
        monkeypatch.setattr(rife_module, "_TRANSFER", mode)
        monkeypatch.setattr(rife_module, "_LOOKAHEAD", lookahead)
        monkeypatch.setattr(rife_module, "_PIPELINE", pipeline)
        out = RIFE(clip, device="cuda")
        frames = [out.get_frame(n) for n in (1, 3, 2)]
        assert [str(f.props["VsrifeAction"]) for f in frames] == ["interpolate", "interpolate", "source"]
        results[(mode, lookahead, pipeline)] = [
            np.asarray(f[p]).copy() for f in frames for p in range(f.format.num_planes)
        ]
    for other in variants[1:]:
        for a, b in zip(results[variants[0]], results[other], strict=True):
            assert np.array_equal(a, b), other


_HAS_TRT = importlib.util.find_spec("torch_tensorrt") is not None


@pytest.mark.skipif(not _HAS_TRT, reason="torch-tensorrt not installed (extra trt)")
@pytest.mark.parametrize("version", ["4.6", "4.25", "3.6"])
def test_cuda_tensorrt_engine_is_built_once_and_matches_eager(
    version: str, triplet: tuple[torch.Tensor, ...], tmp_path: Path
) -> None:
    """trt=True: the first engine builds into the cache, a second one loads it (no build); fp16 frames
    are the eager engine's picture (TensorRT picks its own kernels and fusions)."""
    a, _, b = (x.cuda() for x in triplet)
    cache = tmp_path / "engines"

    def make(**kwargs: object) -> Interpolator:
        if version == "3.6":
            return Interpolator("3.6", device="cuda", **kwargs)  # type: ignore[arg-type]
        return _random_engine(version, tmp_path, **kwargs)

    eager = make()
    first = make(trt=True, trt_cache_dir=str(cache))
    assert first.cuda_graphs == "off"
    for t in (0.5, 0.3) if version != "3.6" else (0.5,):
        ref, out = eager.interpolate(a, b, t), first.interpolate(a, b, t)
        assert first.tensorrt == "on", first.tensorrt
        assert float((out - ref).abs().max()) < 0.05 and psnr(out.cpu(), ref.cpu()) > 45.0, t
    assert first._trt is not None and first._trt.builds == 1
    assert len(list(cache.glob("*.trt.pt2"))) == 1
    second = make(trt=True, trt_cache_dir=str(cache))
    again = second.interpolate(a, b, 0.5)
    assert second.tensorrt == "on" and second._trt is not None and second._trt.builds == 0
    assert float((again - first.interpolate(a, b, 0.5)).abs().max()) == 0.0


def test_cuda_tensorrt_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trt is not supported by model 4\.0"):
        _random_engine("4.0", tmp_path, trt=True)
    if not _HAS_TRT:
        with pytest.raises(ValueError, match=r"pip install 'vsrife\[trt\]'"):
            Interpolator(device="cuda", trt=True)
