"""Winograd convolutions (vsrife.arch.winograd): NNPACK for CPU fp32 inference, plain nn.Conv2d elsewhere;
the engine's default on CPUs without native bf16; same frames up to fp32 rounding."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers.checkpoints import seeded_checkpoint
from torch import nn

from vsrife.arch import build_network, winograd
from vsrife.arch.ifnet import IFBlock, IFBlockV3
from vsrife.arch.layers import ResConv
from vsrife.arch.nnpack import direct_nnpack
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


@pytest.mark.parametrize("binding", ["direct", "torch"])
def test_winograd_conv_falls_back_where_nnpack_refuses(binding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """NNPACK refuses padding as large as the kernel (for real, not mocked): the direct convolution runs,
    exactly; the same through PyTorch's NNPACK entry point where the direct binding is missing."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, 1, 3)
    wino = _winograd_copy(conv)
    if binding == "torch":
        monkeypatch.setattr(winograd, "direct_nnpack", lambda: None)
    x = torch.randn(1, 8, 12, 12)
    with torch.no_grad():
        assert torch.equal(wino(x), conv(x))


@pytest.mark.skipif(direct_nnpack() is None, reason="PyTorch's CPU library does not export NNPACK's C API")
@pytest.mark.parametrize(
    ("n", "cin", "cout", "h", "w", "padding"),
    [(1, 90, 90, 46, 80, (1, 1)), (1, 90, 360, 23, 40, (1, 1)), (1, 4, 3, 9, 7, (0, 0)), (2, 3, 2, 5, 6, (2, 1))],
)
def test_direct_nnpack_is_pytorchs_nnpack(
    n: int, cin: int, cout: int, h: int, w: int, padding: tuple[int, int]
) -> None:
    """The same kernels as torch._nnpack_spatial_convolution, bit for bit, on one thread (inline) or a pool."""
    torch.manual_seed(0)
    direct = direct_nnpack()
    assert direct is not None
    x, weight, bias = torch.randn(n, cin, h, w), torch.randn(cout, cin, 3, 3) * 0.1, torch.randn(cout)
    refs = [torch._nnpack_spatial_convolution(x[i : i + 1], weight, bias, list(padding)) for i in range(n)]
    for threads in (1, 2, 3):
        out = direct.conv3x3(x, weight, bias, padding, threads)
        assert out is not None and torch.equal(out, torch.cat(refs))
    assert direct.conv3x3(x.double(), weight, bias, padding, 1) is None  # not fp32: the caller's fallback
    cl = torch.channels_last  # other layouts are made NCHW first
    out = direct.conv3x3(x.contiguous(memory_format=cl), weight.contiguous(memory_format=cl), bias, padding, 2)
    assert out is not None and torch.equal(out, torch.cat(refs))


@pytest.mark.skipif(direct_nnpack() is None, reason="PyTorch's CPU library does not export NNPACK's C API")
def test_direct_nnpack_pools_serve_concurrent_calls() -> None:
    """Calls at once each get their own pool (and workspace); sequential calls reuse one; results exact."""
    direct = direct_nnpack()
    assert direct is not None
    torch.manual_seed(0)
    x, weight, bias = torch.randn(1, 16, 40, 40), torch.randn(16, 16, 3, 3), torch.randn(16)
    ref = torch._nnpack_spatial_convolution(x, weight, bias, [1, 1])
    threads = 5  # a count no other test uses, so the free list starts empty
    assert threads not in direct.pools()
    direct.conv3x3(x, weight, bias, (1, 1), threads)
    direct.conv3x3(x, weight, bias, (1, 1), threads)
    assert direct.pools()[threads] == 1
    barrier, outs = threading.Barrier(3), []
    slot = direct._acquire  # hold the slot until all three calls hold one: they overlap for sure

    def acquire(n: int) -> object:
        got = slot(n)
        barrier.wait(timeout=30)
        return got

    direct._acquire = acquire  # type: ignore[method-assign]
    try:
        workers = [threading.Thread(target=lambda: outs.append(direct.conv3x3(x, weight, bias, (1, 1), threads)))
                   for _ in range(3)]  # fmt: skip
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        del direct._acquire
    assert direct.pools()[threads] == 3
    assert len(outs) == 3 and all(o is not None and torch.equal(o, ref) for o in outs)


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


@pytest.fixture
def set_threads() -> Iterator[Callable[[int], None]]:
    """``torch.set_num_threads`` for one test; the count from before is restored after it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_run_body_serialises_only_where_winograd_applies(set_threads: Callable[[int], None]) -> None:
    """One intra-op thread inside (NCHW in), the caller's count after (also on errors), format kept."""
    set_threads(2)
    seen: list[tuple[int, bool]] = []

    def body(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), x.is_contiguous()))
        started = threading.Thread(target=lambda: others.append(torch.get_num_threads()))
        started.start()
        started.join()
        return x * 2

    others: list[int] = []

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


def test_run_body_gives_nnpack_the_callers_threads(set_threads: Callable[[int], None]) -> None:
    """Inside the one-thread section the OpenMP ops get one thread, NNPACK the caller's count."""
    set_threads(2)
    seen: list[tuple[int, int]] = []

    def body(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), winograd._nnpack_threads()))
        return x

    run_body(body, torch.rand(1, 4, 5, 6), True)
    assert seen == [(1, 2)] and winograd._nnpack_threads() == 2


@pytest.mark.skipif(direct_nnpack() is None, reason="PyTorch's CPU library does not export NNPACK's C API")
@pytest.mark.parametrize("threads", [2, 3])
def test_run_pair_runs_side_by_side_on_split_cores(threads: int, set_threads: Callable[[int], None]) -> None:
    """Both callables at once (a barrier only both can pass), on two threads with the caller's cores
    split between them, in the caller's inference mode; the caller's thread count restored."""
    set_threads(threads)
    barrier = threading.Barrier(2)

    def part() -> tuple[int, int, bool, bool]:
        barrier.wait(timeout=30)
        mode = torch.is_inference_mode_enabled(), torch.is_grad_enabled()
        return threading.get_ident(), torch.get_num_threads(), *mode

    x = torch.rand(1, 4, 8, 8)
    with torch.inference_mode():
        assert winograd.pair_runs_parallel(x)
        (ta, na, ia, ga), (tb, nb, ib, gb) = winograd.run_pair(part, part, x)
    assert ta != tb == threading.get_ident() and tb == threading.get_ident()
    assert sorted((na, nb)) == sorted((threads // 2, threads - threads // 2))
    assert ia and ib and not ga and not gb
    assert torch.get_num_threads() == threads
    with torch.no_grad():
        (_, _, ia, ga), _ = winograd.run_pair(part, part, x)
    assert not ia and not ga


def test_run_pair_is_sequential_where_it_does_not_apply(set_threads: Callable[[int], None]) -> None:
    """One thread, bf16, or autograd on: both on the caller's thread, in order."""
    order: list[tuple[str, int]] = []

    def part(name: str) -> str:
        order.append((name, threading.get_ident()))
        return name

    x = torch.rand(1, 4, 8, 8)
    set_threads(1)
    with torch.no_grad():
        assert winograd.run_pair(lambda: part("a"), lambda: part("b"), x) == ("a", "b")
    set_threads(2)
    with torch.no_grad():
        assert winograd.run_pair(lambda: part("a"), lambda: part("b"), x.bfloat16()) == ("a", "b")
    assert winograd.run_pair(lambda: part("a"), lambda: part("b"), x) == ("a", "b")  # autograd on
    assert order == [("a", threading.get_ident()), ("b", threading.get_ident())] * 3


@pytest.mark.skipif(direct_nnpack() is None, reason="PyTorch's CPU library does not export NNPACK's C API")
def test_run_pair_waits_for_both_and_raises(set_threads: Callable[[int], None]) -> None:
    """An error on either side reaches the caller, and only after the other side has finished."""
    set_threads(2)
    finished: list[str] = []

    def slow() -> None:
        time.sleep(0.2)
        finished.append("slow")

    def broken() -> None:
        raise KeyError("inside")

    x = torch.rand(1, 4, 8, 8)
    with torch.no_grad():
        with pytest.raises(KeyError):
            winograd.run_pair(slow, broken, x)
        assert finished == ["slow"]
        with pytest.raises(KeyError):
            winograd.run_pair(broken, slow, x)
    assert torch.get_num_threads() == 2


def _fork_child(conn: object) -> None:
    x, weight, bias = torch.randn(1, 8, 20, 20), torch.randn(8, 8, 3, 3), torch.randn(8)
    direct = direct_nnpack()
    assert direct is not None
    with torch.no_grad():
        out = winograd.run_pair(lambda: direct.conv3x3(x, weight, bias, (1, 1), 2), lambda: 1, x)[0]
    conn.send(bool(out is not None and torch.equal(out, torch._nnpack_spatial_convolution(x, weight, bias, [1, 1]))))  # type: ignore[attr-defined]


@pytest.mark.skipif(direct_nnpack() is None, reason="PyTorch's CPU library does not export NNPACK's C API")
def test_pools_work_in_a_forked_child(set_threads: Callable[[int], None]) -> None:
    """After pairs and pooled convolutions ran here, a forked child (whose parent's pool threads are
    gone) runs both again instead of waiting forever on them."""
    import multiprocessing

    set_threads(2)
    x = torch.randn(1, 8, 20, 20)
    direct = direct_nnpack()
    assert direct is not None
    with torch.no_grad():
        weight, bias = torch.randn(8, 8, 3, 3), torch.randn(8)
        winograd.run_pair(lambda: direct.conv3x3(x, weight, bias, (1, 1), 2), lambda: 0, x)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_fork_child, args=(child,))
    proc.start()
    try:
        assert parent.poll(60), "the child hung"
        assert parent.recv() is True
        proc.join(30)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()


def test_v3_directions_side_by_side_give_the_same_frames(set_threads: Callable[[int], None]) -> None:
    """Real v3.6 weights, real frames: the two directions of every block on two threads give the
    sequential network's output bit for bit; use_winograd switches it on."""
    frames = [to_tensor(f) for f in read_frames(sample_path("bikes"), 0, 3)]
    assert not load_model("3.6").network.flownet.parallel_directions
    engine = Interpolator("3.6", device="cpu", precision="fp32", winograd=True)
    flownet = engine.network.flownet
    assert flownet.parallel_directions
    set_threads(2)
    try:
        parallel = engine.interpolate(frames[0], frames[2])
        flownet.parallel_directions = False
        sequential = engine.interpolate(frames[0], frames[2])
    finally:
        flownet.parallel_directions = True  # placed networks are shared between engines
    assert torch.equal(parallel, sequential)
    assert psnr(parallel, frames[1]) > psnr((frames[0] + frames[2]) / 2, frames[1]) + 1.0


# every family with 3x3 stride-1 stacks: v3 (real weights below), 4.x with ResConv gains (4.6), the
# 4.7+ encoder (4.25.lite, five blocks), grouped 4.14.lite (its grouped convs stay direct), the paper's
# fusion model (ContextNet / U-Net) and HD v1 (SE blocks, BatchNorm)
@pytest.mark.parametrize("version", ["4.6", "4.25.lite", "4.14.lite", "paper", "hd"])
def test_winograd_network_gives_the_same_frames(version: str) -> None:
    """Random weights: the Winograd network is as close to an fp64 run as direct fp32 convolutions (within
    4x of the larger of their errors in the two memory layouts, which differ by up to 3x by themselves:
    how far direct fp32 strays depends on the layout and on the CPU's kernels)."""
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
    err_ref, err_out = [], []
    with torch.no_grad():
        truth = exact(a.double(), b.double(), 0.5)
        for layout in (torch.contiguous_format, torch.channels_last):
            x0, x1 = a.contiguous(memory_format=layout), b.contiguous(memory_format=layout)
            ref = net.to(memory_format=layout)(x0, x1, 0.5)
            out = wino.to(memory_format=layout)(x0, x1, 0.5)
            assert out.shape == ref.shape
            err_ref.append(float((ref.double() - truth).abs().max()))
            err_out.append(float((out.double() - truth).abs().max()))
    assert max(err_out) <= 4 * max(err_ref) + 1e-5, (err_out, err_ref)
    assert max(err_out) < 5e-3


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
        Interpolator("3.6", device="cpu", precision="fp32", winograd=True, torch_compile=True)


def test_engine_winograd_4x_folds_gains(tmp_path: Path) -> None:
    """4.6 (random weights, official file layout): ResConv gains folded, frames as the direct engine's."""
    path = seeded_checkpoint("4.6", tmp_path)
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
