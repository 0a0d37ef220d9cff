"""Winograd convolutions (vsrife.arch.winograd): NNPACK for CPU fp32 inference, plain nn.Conv2d elsewhere;
the engine's default on CPUs without native bf16; same frames up to fp32 rounding."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vsrife.arch import build_network, winograd
from vsrife.arch.ifnet import IFBlock, IFBlockV3
from vsrife.arch.layers import ResConv
from vsrife.arch.winograd import (
    SubPixelHeads,
    WinogradConv2d,
    _phase_gemm,
    _second_stage_gemm,
    run_body,
    use_winograd,
    winograd_available,
)
from vsrife.engine import Interpolator
from vsrife.engine.devices import cpu_prefers_winograd
from vsrife.media import read_frames
from vsrife.models import MODELS, load_model
from vsrife.quality import psnr, to_tensor
from vsrife.samples import sample_path

pytestmark = pytest.mark.skipif(not winograd_available(), reason="this PyTorch build has no NNPACK")


def _winograd_copy(conv: nn.Conv2d) -> nn.Conv2d:
    net = nn.Sequential(copy.deepcopy(conv))
    assert use_winograd(net) == 1
    return net[0]


@pytest.mark.parametrize(
    ("n", "cin", "cout", "h", "w"),
    [(1, 90, 90, 46, 80), (2, 11, 45, 33, 65), (1, 3, 8, 1, 1), (3, 17, 5, 2, 7)],
)
def test_winograd_conv_matches_direct(n: int, cin: int, cout: int, h: int, w: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, 3, 1, 1)
    wino = _winograd_copy(conv)
    assert type(wino) is WinogradConv2d
    x = torch.randn(n, cin, h, w)
    with torch.no_grad():
        ref = conv(x)
        for layout in (torch.contiguous_format, torch.channels_last):
            out = wino(x.contiguous(memory_format=layout))
            assert out.shape == ref.shape and out.is_contiguous()
            torch.testing.assert_close(out, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)
            assert not torch.equal(out, ref) or h * w == 1  # really another algorithm


def test_winograd_conv_is_a_plain_conv_for_training_and_bf16() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, 1, 1)
    wino = _winograd_copy(conv)
    x = torch.randn(1, 8, 12, 12, requires_grad=True)
    out = wino(x)  # gradients recorded: the direct convolution, bit for bit, and backward works
    assert torch.equal(out, conv(x))
    out.sum().backward()
    assert x.grad is not None and wino.weight.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(wino(x), conv(x))


def test_winograd_conv_falls_back_where_nnpack_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, 1, 1)
    wino = _winograd_copy(conv)

    def refuse(*args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError("NNPACK SpatialConvolution_updateOutput failed")

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", refuse)
    x = torch.randn(1, 8, 12, 12)
    with torch.no_grad():
        assert torch.equal(wino(x), conv(x))


@pytest.mark.parametrize(("c", "h", "w", "n"), [(90, 23, 40, 1), (90, 5, 7, 2), (16, 1, 1, 1), (8, 2, 3, 3)])
def test_subpixel_heads_match_the_transposed_convolutions(c: int, h: int, w: int, n: int) -> None:
    """v3 heads (ConvT, PReLU, ConvT for flow and mask) rewritten as a phase convolution and per-offset
    GEMMs: same outputs, for batches too, down to 1x1 grids (where no neighbour exists)."""
    torch.manual_seed(0)
    block = IFBlockV3(11, c).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.1)
    heads = SubPixelHeads(block.conv1, block.conv2)
    assert not heads.state_dict()  # derived buffers: checkpoints and state dicts unchanged
    feat = torch.randn(n, c, h, w)
    with torch.no_grad():
        flow, mask = heads(feat)
        ref_flow, ref_mask = block.conv1(feat), block.conv2(feat)
    assert flow.shape == ref_flow.shape == (n, 4, 4 * h, 4 * w) and mask.shape == ref_mask.shape == (n, 1, 4 * h, 4 * w)
    scale = float(ref_flow.abs().max())
    torch.testing.assert_close(flow, ref_flow, atol=1e-4 * scale, rtol=0)
    torch.testing.assert_close(mask, ref_mask, atol=1e-4 * float(ref_mask.abs().max()), rtol=0)


@pytest.mark.parametrize(("cout", "h", "w"), [(4, 9, 13), (1, 1, 1), (4, 1, 3)])
def test_second_stage_gemm_is_the_transposed_convolution(cout: int, h: int, w: int) -> None:
    """The per-offset GEMM equals ConvTranspose2d(4, 2, 1) on the pixel-shuffled phases to fp32 rounding
    (no Winograd in it), at the borders too."""
    torch.manual_seed(1)
    weight, bias = torch.randn(12, cout, 4, 4), torch.randn(cout)
    stacked, taps = _second_stage_gemm(weight)
    assert stacked.shape == (36 * cout, 48)  # phases reached: 16 (centre) + 4 x 4 (edges) + 4 x 1 (corners), not 9 x 16
    full_bias = torch.zeros(stacked.shape[0])
    full_bias[: 16 * cout] = bias.repeat(16)
    phases = torch.randn(2, 48, h, w)
    with torch.no_grad():
        got = _phase_gemm(phases, stacked, full_bias, taps)
        ref = F.conv_transpose2d(F.pixel_shuffle(phases, 2), weight, bias, 2, 1)
    assert got.shape == ref.shape == (2, cout, 4 * h, 4 * w)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_use_winograd_switches_only_3x3_stride1_and_keeps_keys() -> None:
    loaded = load_model("3.6")
    net = copy.deepcopy(loaded.network)
    assert use_winograd(net) == 24  # 3 blocks x 4 pairs x 2 (the teacher is not in an inference network)
    assert net.state_dict().keys() == loaded.network.state_dict().keys()
    for (name, a), b in zip(net.state_dict().items(), loaded.network.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    strided = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    assert strided and all(type(m) is nn.Conv2d for m in strided)
    blocks = [m for m in net.modules() if isinstance(m, IFBlock | IFBlockV3)]
    assert blocks and all(b.serial_body for b in blocks)
    assert all(isinstance(b.subpixel_heads, SubPixelHeads) for b in blocks)


def test_run_body_serialises_only_where_winograd_applies() -> None:
    """One intra-op thread inside (NCHW in), the caller's count after (also on errors), format kept."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[tuple[int, bool]] = []

    def body(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), x.is_contiguous()))
        started = threading.Thread(target=lambda: others.append(torch.get_num_threads()))
        started.start()
        started.join()
        return x * 2

    others: list[int] = []

    try:
        x = torch.rand(1, 4, 5, 6).contiguous(memory_format=torch.channels_last)
        out = run_body(body, x, True)
        assert seen[-1] == (1, True) and torch.get_num_threads() == 2
        assert others == [2]  # only the calling thread: a worker starting meanwhile keeps the default
        assert winograd._omp_set_num_threads() is not None  # torch's OpenMP runtime was found
        assert torch.equal(out, x * 2) and out.is_contiguous(memory_format=torch.channels_last)
        run_body(body, x, False)
        run_body(body, x.bfloat16(), True)
        assert seen[-2:] == [(2, False), (2, False)]  # off, or Winograd does not apply: untouched

        def broken(x: torch.Tensor) -> torch.Tensor:
            raise KeyError("inside")

        with pytest.raises(KeyError):
            run_body(broken, x, True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


# every family with 3x3 stride-1 stacks: v3 (real weights below), 4.x with ResConv gains (4.6), the
# 4.7+ encoder (4.25.lite, five blocks), grouped 4.14.lite (its grouped convs stay direct), the paper's
# fusion model (ContextNet / U-Net) and HD v1 (SE blocks, BatchNorm)
@pytest.mark.parametrize("version", ["4.6", "4.25.lite", "4.14.lite", "paper", "hd"])
def test_winograd_network_gives_the_same_frames(version: str) -> None:
    """Random weights: the Winograd network is as close to an fp64 run as the direct fp32 one (within 4x)."""
    torch.manual_seed(0)
    spec = MODELS[version].spec
    net = build_network(spec).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    wino = copy.deepcopy(net)
    exact = copy.deepcopy(net).double()
    assert use_winograd(wino) > 0
    a = torch.rand(1, 3, 128, 192)
    b = torch.roll(a, 6, 3)
    with torch.no_grad():
        truth = exact(a.double(), b.double(), 0.5)
        for layout in (torch.contiguous_format, torch.channels_last):
            x0, x1 = a.contiguous(memory_format=layout), b.contiguous(memory_format=layout)
            ref = net.to(memory_format=layout)(x0, x1, 0.5)
            out = wino.to(memory_format=layout)(x0, x1, 0.5)
            assert out.shape == ref.shape
            err_ref = float((ref.double() - truth).abs().max())
            err_out = float((out.double() - truth).abs().max())
            assert err_out <= 4 * err_ref + 1e-5, (err_out, err_ref)
            assert err_out < 5e-3


def test_engine_winograd_on_real_footage() -> None:
    """Real v3.6 weights on real 640x272 camera frames: Winograd output within fp32 rounding, PSNR kept."""
    frames = [to_tensor(f) for f in read_frames(sample_path("bikes"), 0, 7)]
    direct = Interpolator("3.6", device="cpu", precision="fp32", channels_last=True)
    wino = Interpolator("3.6", device="cpu", precision="fp32", channels_last=True, winograd=True)
    assert wino.winograd and not direct.winograd
    assert any(isinstance(m, WinogradConv2d) for m in wino.network.modules())
    assert not any(isinstance(m, WinogradConv2d) for m in direct.network.modules())  # not shared
    for k in (0, 2, 4):
        a, gt, b = frames[k], frames[k + 1], frames[k + 2]
        ref, out = direct.interpolate(a, b), wino.interpolate(a, b)
        assert float((out - ref).abs().max()) < 2e-4
        assert abs(psnr(out, gt) - psnr(ref, gt)) < 1e-3
        assert psnr(out, gt) > psnr((a + b) / 2, gt) + 1.0  # still a real interpolation


def test_engine_winograd_defaults_and_errors() -> None:
    auto = Interpolator("3.6", device="cpu")
    assert auto.winograd == (auto.dtype == torch.float32 and cpu_prefers_winograd())
    assert not Interpolator("3.6", device="cpu", precision="fp32").winograd  # the official computation
    assert not Interpolator("3.6", device="cpu", precision="bf16").winograd
    with pytest.raises(ValueError, match="winograd needs fp32 on the CPU"):
        Interpolator("3.6", device="cpu", precision="bf16", winograd=True)
    with pytest.raises(ValueError, match="winograd and torch_compile"):
        Interpolator("3.6", device="cpu", winograd=True, torch_compile=True)


def test_engine_winograd_4x_folds_gains(tmp_path: Path) -> None:
    """4.6 (random weights, official file layout): ResConv gains folded, frames as the direct engine's."""
    torch.manual_seed(0)
    net = build_network(MODELS["4.6"].spec)
    path = tmp_path / "flownet_v4.6.pkl"
    torch.save({f"module.{k}": v for k, v in net.flownet.state_dict().items()}, path)
    assert not Interpolator("4.6", model_path=str(path), device="cpu").winograd  # 4.x: not by default (no gain)
    direct = Interpolator("4.6", model_path=str(path), device="cpu", precision="fp32", channels_last=True)
    wino = Interpolator("4.6", model_path=str(path), device="cpu", precision="fp32", channels_last=True, winograd=True)
    assert not direct.winograd and wino.winograd
    units = [m for m in wino.network.modules() if isinstance(m, ResConv)]
    assert units and all(u.gain_folded for u in units)
    assert not any(u.gain_folded for u in direct.network.modules() if isinstance(u, ResConv))
    frames = [to_tensor(f) for f in read_frames(sample_path("bikes"), 0, 3)]
    for t in (0.5, 0.25):
        ref, out = direct.interpolate(frames[0], frames[2], t), wino.interpolate(frames[0], frames[2], t)
        assert float((out - ref).abs().max()) < 1e-3
