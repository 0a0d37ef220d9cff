"""``torch_compile``: the compiled network gives the eager network's frames; failures fall back to eager."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers.checkpoints import seeded_checkpoint

import vsrife.engine.compiled as compiled_module
from vsrife.engine import Interpolator
from vsrife.engine.devices import resolve_precision
from vsrife.media import read_frames
from vsrife.quality import psnr, to_tensor
from vsrife.samples import sample_path

# One crop of real footage for the whole module: the filter test reuses the engine test's compiled graph.
LEFT, TOP, WIDTH, HEIGHT = 240, 100, 160, 68


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    frames = read_frames(sample_path("bikes"), count=3)[:, TOP : TOP + HEIGHT, LEFT : LEFT + WIDTH]
    return to_tensor(frames[0]), to_tensor(frames[2])


def _tolerance(engine: Interpolator) -> float:
    """Max abs difference allowed between compiled and eager frames: fp32 reorders sums only; bf16 kernels
    fused differently round differently (a few edge pixels move by up to ~0.03; as on CUDA in fp16)."""
    return 1e-4 if engine.dtype == torch.float32 else 5e-2


def _same_picture(out: torch.Tensor, ref: torch.Tensor, engine: Interpolator) -> None:
    diff = (out - ref).abs().max().item()
    assert diff < _tolerance(engine), diff
    if engine.dtype != torch.float32:
        assert psnr(out, ref) > 50.0  # the few moved pixels aside, the same picture


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
def test_compiled_engine_matches_eager() -> None:
    a, b = _pair()
    eager = Interpolator(device="cpu", cache_frames=2, winograd=False)  # compiled engines convolve directly
    fast = Interpolator(device="cpu", cache_frames=2, torch_compile=True)
    assert eager.torch_compile == "off"
    ref = eager.interpolate(a, b)
    out = fast.interpolate(a, b)
    assert fast.torch_compile == "on", fast.torch_compile
    assert out.shape == ref.shape == a.shape
    _same_picture(out, ref, eager)
    # a real interpolation, not a copy of either input: far closer to eager's frame than to either
    diff = max((out - ref).abs().mean().item(), 1e-6)
    assert (out - a).abs().mean().item() > 10 * diff
    assert (out - b).abs().mean().item() > 10 * diff


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
def test_compiled_4x_takes_t_as_input_without_recompiling(tmp_path: Path) -> None:
    """4.x (timestep input): every t runs the one compiled graph and matches eager; a model without a
    timestep input runs t != 1/2 (linear mode) eagerly, so those frames are eager's exactly."""
    from torch._dynamo.utils import counters

    path = seeded_checkpoint("4.6", tmp_path)
    a, b = _pair()
    eager = Interpolator("4.6", model_path=str(path), device="cpu", precision="fp32")
    fast = Interpolator("4.6", model_path=str(path), device="cpu", precision="fp32", torch_compile=True)
    fast.interpolate(a, b, 0.5)
    graphs = counters["stats"]["unique_graphs"]
    for t in (0.25, 1 / 3, 0.5, 0.8):
        diff = (fast.interpolate(a, b, t) - eager.interpolate(a, b, t)).abs().max().item()
        assert diff < 1e-4, (t, diff)
    assert counters["stats"]["unique_graphs"] == graphs, "a new t recompiled the network"
    assert fast.torch_compile == "on"

    linear = Interpolator(device="cpu", timestep_mode="linear", torch_compile=True, cache_frames=2)
    plain = Interpolator(device="cpu", timestep_mode="linear", cache_frames=2, winograd=False)
    assert torch.equal(linear.interpolate(a, b, 1 / 3), plain.interpolate(a, b, 1 / 3))


def test_failed_compile_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(network: Any, **kwargs: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("no C++ compiler found")

        return call

    monkeypatch.setattr(compiled_module.torch, "compile", broken)
    a, b = _pair()
    engine = Interpolator(device="cpu", cache_frames=2, torch_compile=True)
    assert engine.torch_compile == "on"  # nothing compiled before the first call
    out = engine.interpolate(a, b)
    assert engine.torch_compile.startswith("disabled: RuntimeError: no C++ compiler found")
    ref = Interpolator(device="cpu", cache_frames=2, winograd=False).interpolate(a, b)
    assert torch.equal(out, ref)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
def test_filter_torch_compile() -> None:
    """core.rife.RIFE(torch_compile=True): the same output frames as without (within one 8-bit step in
    fp32; in bf16 within the engine test's tolerance)."""
    vs = pytest.importorskip("vapoursynth")
    if not hasattr(vs.core, "bs"):
        pytest.skip("needs BestSource (core.bs)")
    from vsrife.filter.source import open_video

    src = vs.core.resize.Bicubic(open_video(sample_path("bikes"))[:3], format=vs.RGB24, matrix_in_s="709")
    src = vs.core.std.CropAbs(src, WIDTH, HEIGHT, LEFT, TOP)
    plain = vs.core.rife.RIFE(src, device="cpu")
    fast = vs.core.rife.RIFE(src, device="cpu", torch_compile=True)
    assert plain.num_frames == fast.num_frames == 6
    fp32 = resolve_precision("auto", torch.device("cpu")) == torch.float32  # what both filters run
    steps = 1 if fp32 else round(255 * _tolerance(Interpolator(device="cpu", cache_frames=2)))
    for n in (1, 3):  # the interpolated frames
        p, f = plain.get_frame(n), fast.get_frame(n)
        for plane in range(3):
            x = np.asarray(p[plane]).astype(np.int16)
            y = np.asarray(f[plane]).astype(np.int16)
            assert np.abs(x - y).max() <= steps
            assert np.abs(x - y).mean() < 0.5  # nearly every pixel the same
        assert f.props["VsrifeAction"] == p.props["VsrifeAction"] == "interpolate"
