"""CUDA path: the engine and the filter on an NVIDIA GPU (skipped cleanly without one).

Run on a GPU machine with ``pytest -m cuda`` (``scripts/gpu_check.sh`` does, plus the benchmarks).
"""

from __future__ import annotations

import pytest
import torch

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
    f = read_frames(sample_path("bikes"), 40, 3)
    return to_tensor(f[0]), to_tensor(f[1]), to_tensor(f[2])


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
