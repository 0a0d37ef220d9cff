"""Winograd 3x3 convolutions for fp32 inference on CPUs without native bf16 (NNPACK).

A 3x3 stride-1 convolution computed with Winograd's F(6x6, 3x3) transform needs about a fifth of the
multiplications of the direct method. oneDNN (PyTorch's CPU convolution) runs it directly and is
already near the machine's GEMM peak there, so on AVX2 CPUs most of a RIFE forward pass is
spent in exactly these layers (the IFBlocks' residual 3x3 stacks). PyTorch ships NNPACK, whose
Winograd kernels run them 2-2.3x faster (90 -> 90 channels at 320x180: 63 -> 28 ms on two cores)
at fp32 rounding-level differences (max abs 4e-5 on v3.6's 720p output, PSNR unchanged to 1e-4 dB).

:func:`use_winograd` switches eligible ``nn.Conv2d`` modules of an inference copy of a network to
:class:`WinogradConv2d` in place (parameters and state-dict keys unchanged). The class runs NNPACK
only where it applies (CPU, fp32, no autograd, NCHW-contiguous input made on the fly) and is an
ordinary ``nn.Conv2d`` everywhere else, so the same network still trains or runs on CUDA.

NNPACK runs on thread pools of its own (:mod:`vsrife.arch.nnpack`: one per concurrent caller, as
many threads as the caller has), PyTorch's other CPU ops on OpenMP's; after each OpenMP region
the OpenMP workers keep spinning for a few milliseconds and take cores from NNPACK's threads
(a Winograd chain ran 1.4x slower with two-thread activations between the convolutions on two
cores). IFBlocks therefore run their residual 3x3 stack (:meth:`body`, flag ``serial_body``) with
one intra-op thread for the memory-bound activations and sums in between, while the convolutions
keep the caller's thread count (:func:`run_body`). HD v3.x blocks also run the first stage of their
flow and mask heads there, rewritten from transposed convolutions into a Winograd phase
convolution; the second stage follows with every thread as one GEMM per head
(:class:`SubPixelHeads`). The two directions of each HD v3.x block run side by side, each on half
of the caller's cores (:func:`run_pair`, flag ``parallel_directions``).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch import workers
from vsrife.arch.nnpack import direct_nnpack

__all__ = [
    "SubPixelHeads",
    "WinogradConv2d",
    "pair_runs_parallel",
    "run_body",
    "run_pair",
    "use_winograd",
    "winograd_applies",
    "winograd_available",
]

_init_lock = threading.Lock()
_pool_ready = False


@functools.cache
def winograd_available() -> bool:
    """Whether this PyTorch build has NNPACK for this CPU (the check also initialises NNPACK).

    Must run before the first NNPACK call: PyTorch's NNPACK entry point does not initialise the
    library itself and fails without it.
    """
    with _init_lock:
        try:
            return bool(torch._nnpack_available())
        except (AttributeError, RuntimeError):
            return False


def winograd_applies(x: Tensor, weight: Tensor) -> bool:
    """NNPACK's conditions: CPU fp32 4-D input and weight, no gradient to record, no autocast."""
    return (
        x.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.dim() == 4
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    )


def _ensure_pool() -> None:
    """Let NNPACK create its thread pool now, outside any one-thread section, at the caller's thread count."""
    global _pool_ready
    if _pool_ready:
        return
    with _init_lock:
        if not _pool_ready:
            x = torch.zeros(1, 1, 4, 4)
            torch._nnpack_spatial_convolution(x, torch.zeros(1, 1, 3, 3), None, [1, 1])
            _pool_ready = True


@functools.cache
def _omp_set_num_threads() -> Callable[[int], None] | None:
    """``omp_set_num_threads`` of the OpenMP runtime torch loaded: it changes the calling thread only.

    ``torch.set_num_threads`` also sets the count that threads touching torch for the first time start
    with, so another VapourSynth worker starting up during a one-thread section would keep one thread.
    """
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    libs = {line.split()[-1] for line in maps if "/" in line and ("libgomp" in line or "libiomp" in line)}
    torch_lib = str(Path(torch.__file__).resolve().parent)
    for path in sorted(libs, key=lambda p: not p.startswith(torch_lib)):  # torch's own copy first
        try:
            fn = ctypes.CDLL(path).omp_set_num_threads
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], None
        return fn
    return None


_local = threading.local()


def _nnpack_threads() -> int:
    """Threads for this thread's NNPACK calls: its count before a one-thread section, else its own."""
    return getattr(_local, "nnpack_threads", 0) or torch.get_num_threads()


def run_body(body: Callable[[Tensor], Tensor], x: Tensor, serial: bool, restore_format: bool = True) -> Tensor:
    """``body(x)``; with ``serial`` (and where Winograd applies) in NCHW with one intra-op thread.

    The Winograd convolutions inside keep the caller's thread count on their NNPACK pool; only the
    OpenMP ops between them are serialised, so OpenMP's spinning workers stop competing with NNPACK's
    threads. The layout changes (NCHW in; with ``restore_format`` the result back in the input's
    format: transposed convolutions after it run faster channels_last) happen outside, with every thread.
    """
    if not serial or not winograd_applies(x, x):
        return body(x)
    if direct_nnpack() is None:
        _ensure_pool()
    set_threads = _omp_set_num_threads() or torch.set_num_threads
    threads = torch.get_num_threads()
    outer = getattr(_local, "nnpack_threads", 0)
    _local.nnpack_threads = threads
    set_threads(1)
    try:
        out = body(x.contiguous())
    finally:
        set_threads(threads)
        _local.nnpack_threads = outer
    if restore_format and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return out.contiguous(memory_format=torch.channels_last)
    return out


def _with_threads[T](threads: int, fn: Callable[[], T], inference: bool) -> T:
    """``fn()`` on this thread with ``threads`` intra-op threads (this thread only), without autograd
    and in the caller's inference mode (both are per thread in PyTorch)."""
    set_threads = _omp_set_num_threads() or torch.set_num_threads
    before = torch.get_num_threads()
    set_threads(threads)
    try:
        with torch.inference_mode(inference), torch.no_grad():
            return fn()
    finally:
        set_threads(before)


def pair_runs_parallel(x: Tensor) -> bool:
    """Whether :func:`run_pair` splits the calling thread's cores for work on ``x``: inference (no
    autograd at all, which is per thread), where Winograd applies, with two threads or more."""
    return (
        not torch.is_grad_enabled()
        and not workers.in_worker()
        and torch.get_num_threads() >= 2
        and winograd_applies(x, x)
        and direct_nnpack() is not None
    )


def run_pair[A, B](a: Callable[[], A], b: Callable[[], B], x: Tensor) -> tuple[A, B]:
    """``(a(), b())``: side by side, each on half of the calling thread's cores, where
    :func:`pair_runs_parallel` (CPU fp32 inference with the direct NNPACK binding), else one after
    the other.

    Meant for the two directions of an HD v3.x block: equal work, no data shared. NNPACK's
    convolutions scale sublinearly with threads (two cores: 1.6-1.8x) and the one-thread sections
    between them leave cores idle; two one-core streams keep both cores busy (720p: 1.59-1.87 s ->
    1.34-1.46 s per interpolation on two cores). ``a`` runs on a worker thread, ``b`` on the caller's.
    """
    if not pair_runs_parallel(x):
        return a(), b()
    threads = torch.get_num_threads()
    inference = torch.is_inference_mode_enabled()
    first = workers.pool("pair").submit(_with_threads, threads // 2, a, inference)
    try:
        second = _with_threads(threads - threads // 2, b, inference)
    finally:
        done = first.result()  # waited for even when ``b`` failed: ``a`` never outlives the call
    return done, second


def _winograd_conv(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int] = (1, 1)) -> Tensor:
    """Stride-1 convolution by NNPACK (NCHW in: one copy for channels_last input), on this thread's own
    pool where the direct binding exists; the direct method where NNPACK refuses (a shape or workspace
    it does not handle), which is exact."""
    direct = direct_nnpack()
    if direct is not None:
        b = bias if bias is not None else weight.new_zeros(weight.shape[0])
        out = direct.conv3x3(x, weight, b, padding, _nnpack_threads())
        return out if out is not None else F.conv2d(x, weight, bias, 1, padding)
    try:
        return torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, list(padding))
    except RuntimeError:
        return F.conv2d(x, weight, bias, 1, padding)


def _taps(phase: int) -> list[tuple[int, int]]:
    """(offset d, kernel index k) of ConvTranspose2d(4, 2, 1): output 2m + phase sums input m + d times w[k]."""
    return [(d, phase - 2 * d + 1) for d in (-1, 0, 1) if 0 <= phase - 2 * d + 1 <= 3]


def _first_stage(weight: Tensor) -> Tensor:
    """ConvTranspose2d(4, 2, 1) weight (cin, cout, 4, 4) as a 3x3 conv (cout * 4 phases, cin)."""
    cin, cout = weight.shape[:2]
    w = weight.new_zeros(cout, 2, 2, cin, 3, 3)
    for a in (0, 1):
        for b in (0, 1):
            for dy, ky in _taps(a):
                for dx, kx in _taps(b):
                    w[:, a, b, :, dy + 1, dx + 1] = weight[:, :, ky, kx].t()
    return w.reshape(cout * 4, cin, 3, 3)


def _second_stage(weight: Tensor) -> Tensor:
    """A second ConvTranspose2d(4, 2, 1) applied to the first's pixel-shuffled output, as a 3x3 conv on
    the first's phase channels (cin * 4) giving cout * 16 phases of the 4x grid."""
    cin, cout = weight.shape[:2]
    w = weight.new_zeros(cout, 4, 4, cin, 2, 2, 3, 3)
    for ry in range(4):
        a, e = divmod(ry, 2)  # row 4m + ry of the 4x grid: phase a of the 2x grid, then phase e
        for dy, ky in _taps(e):
            oy, py = divmod(a + dy, 2)  # 2x-grid row 2m + a + dy: 1x-grid row m + oy, phase py
            for rx in range(4):
                b, f = divmod(rx, 2)
                for dx, kx in _taps(f):
                    ox, px = divmod(b + dx, 2)
                    w[:, ry, rx, :, py, px, oy + 1, ox + 1] = weight[:, :, ky, kx].t()
    return w.reshape(cout * 16, cin * 4, 3, 3)


_REACH = {-1: slice(0, 1), 0: slice(0, 4), 1: slice(3, 4)}
"""Row (column) offset of the working grid -> the 4x-grid row (column) phases of the second stage it
feeds: with two ConvTranspose2d(4, 2, 1) in a row, the row above reaches only phase 0, the row below
only phase 3."""


@dataclass(frozen=True)
class _Tap:
    """One neighbour offset of the second stage: its rows of the stacked GEMM weight and the 4x-grid
    phases they land on."""

    dy: int
    dx: int
    rows: slice
    phases: tuple[slice, slice]


def _second_stage_gemm(weight: Tensor) -> tuple[Tensor, tuple[_Tap, ...]]:
    """:func:`_second_stage` without most of its zero taps: one (rows, cin * 4) matrix stacking, for
    each of the nine neighbour offsets, only the output phases it reaches (flow head: 144 rows, a
    quarter of the dense 3x3 form's multiply-adds, and no Winograd transforms of 180 input channels)."""
    dense = _second_stage(weight)
    cout, k = weight.shape[1], dense.shape[1]
    w6 = dense.view(cout, 4, 4, k, 3, 3)
    parts, taps, start = [], [], 0
    offsets = sorted(((dy, dx) for dy in _REACH for dx in _REACH), key=lambda o: o != (0, 0))  # centre first
    for dy, dx in offsets:
        ry, rx = _REACH[dy], _REACH[dx]
        rest = w6[..., dy + 1, dx + 1].clone()
        rest[:, ry, rx] = 0
        assert not rest.any(), "second-stage weights outside the reached phases"
        block = w6[:, ry, rx, :, dy + 1, dx + 1]  # (cout, ny, nx, k)
        parts.append(block.permute(1, 2, 0, 3).reshape(-1, k))  # rows (ny, nx, cout): channel-last output
        taps.append(_Tap(dy, dx, slice(start, start + parts[-1].shape[0]), (ry, rx)))
        start += parts[-1].shape[0]
    return torch.cat(parts), tuple(taps)


def _phase_gemm(p: Tensor, weight: Tensor, bias: Tensor, taps: tuple[_Tap, ...]) -> Tensor:
    """The second stage on the first stage's phases ``p`` (n, k, h, w): one GEMM (bias in its centre
    rows), each other offset's rows added at their shift onto the centre's, and one pixel shuffle
    into the 4x grid. Summing in the GEMM's channel-last layout keeps the shifted adds on runs of
    contiguous phases (1.3x faster for the flow head than adding into the 4x grid)."""
    n, k, h, w = p.shape
    cout = taps[0].rows.stop // 16
    y = torch.baddbmm(bias.expand(n, 1, -1), p.reshape(n, k, h * w).transpose(1, 2), weight.t().expand(n, -1, -1))
    y = y.view(n, h, w, -1)
    centre = y[..., taps[0].rows].view(n, h, w, 4, 4, cout)  # (ry, rx, cout) per working-grid pixel
    for tap in taps[1:]:
        ry, rx = tap.phases
        part = y[..., tap.rows].view(n, h, w, ry.stop - ry.start, rx.stop - rx.start, cout)
        y0, y1 = max(0, -tap.dy), h - max(0, tap.dy)  # output rows whose neighbour exists (zero padding)
        x0, x1 = max(0, -tap.dx), w - max(0, tap.dx)
        centre[:, y0:y1, x0:x1, ry, rx] += part[:, y0 + tap.dy : y1 + tap.dy, x0 + tap.dx : x1 + tap.dx]
    out = p.new_empty(n, cout, h, 4, w, 4)
    out.permute(0, 2, 4, 1, 3, 5).copy_(centre.permute(0, 1, 2, 5, 3, 4))
    return out.view(n, cout, 4 * h, 4 * w)


class SubPixelHeads(nn.Module):
    """HD v3.x's flow and mask heads (ConvTranspose 4/2/1, PReLU, ConvTranspose 4/2/1 each) computed on
    the block's working grid, without the transposed convolutions' upsampled intermediates.

    First stage (:meth:`first`): a stride-2 transposed convolution is a 3x3 convolution giving its four
    output phases as channels (2.25x the multiply-adds, which Winograd more than pays back); both heads
    share one such convolution. Second stage (:meth:`second`): PReLU per phase channel, then each
    head's second transposed convolution as one GEMM over the phases that yields, for every neighbour
    offset, the phases of the 4x grid it reaches; summed at their shifts, then one pixel shuffle.
    A 3x3 Winograd form of the second stage would multiply mostly zeros (each output phase uses 4 of
    its 36 taps); the GEMM was 1.0-1.3x (flow) and 3x (mask) faster at 320x184, and exact to fp32
    rounding. Replaces four oneDNN transposed convolutions, two layout copies and two pixel shuffles of
    full-size features. Weights are taken from the heads once (an inference copy; the buffers are not
    saved in state dicts).
    """

    w1: Tensor
    b1: Tensor
    slope: Tensor
    flow_w: Tensor
    flow_b: Tensor
    mask_w: Tensor
    mask_b: Tensor

    def __init__(self, flow_head: nn.Sequential, mask_head: nn.Sequential) -> None:
        super().__init__()
        self.taps: dict[str, tuple[_Tap, ...]] = {}
        heads = [_head_layers(h) for h in (flow_head, mask_head)]
        with torch.no_grad():
            w1 = torch.cat([_first_stage(up.weight.float()) for up, _, _ in heads])
            b1 = torch.cat([_bias(up).float().repeat_interleave(4) for up, _, _ in heads])
            slope = torch.cat([act.weight.float().expand(up.out_channels).repeat_interleave(4) for up, act, _ in heads])
            self.split = 4 * heads[0][0].out_channels
            for name, (_, _, last) in zip(("flow", "mask"), heads, strict=True):
                weight, self.taps[name] = _second_stage_gemm(last.weight.float())
                self.register_buffer(f"{name}_w", weight.contiguous(), persistent=False)
                bias = weight.new_zeros(weight.shape[0])
                bias[: 16 * last.out_channels] = _bias(last).float().repeat(16)  # centre rows: (ry, rx, cout)
                self.register_buffer(f"{name}_b", bias, persistent=False)
        self.register_buffer("w1", w1.contiguous(), persistent=False)
        self.register_buffer("b1", b1, persistent=False)
        self.register_buffer("slope", slope, persistent=False)

    def first(self, feat: Tensor) -> Tensor:
        """Both heads' first transposed convolutions as phase channels (before their PReLU)."""
        return _winograd_conv(feat, self.w1, self.b1)

    def second(self, phases: Tensor) -> tuple[Tensor, Tensor]:
        """(flow, mask logit) at 4x the working resolution from :meth:`first`'s output."""
        p = F.prelu(phases, self.slope)
        flow = _phase_gemm(p[:, : self.split], self.flow_w, self.flow_b, self.taps["flow"])
        mask = _phase_gemm(p[:, self.split :], self.mask_w, self.mask_b, self.taps["mask"])
        return flow, mask

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(flow, mask logit) at 4x ``feat``'s resolution, as ``conv1(feat), conv2(feat)`` give them."""
        return self.second(self.first(feat))


def _head_layers(head: nn.Sequential) -> tuple[nn.ConvTranspose2d, nn.PReLU, nn.ConvTranspose2d]:
    """The (transposed conv, PReLU, transposed conv) layers of an HD v3.x flow or mask head."""
    up, act, last = head[0], head[1], head[2]
    if not (isinstance(up, nn.ConvTranspose2d) and isinstance(act, nn.PReLU) and isinstance(last, nn.ConvTranspose2d)):
        raise TypeError(f"not an HD v3.x head (ConvTranspose2d, PReLU, ConvTranspose2d): {head}")
    return up, act, last


def _bias(conv: nn.ConvTranspose2d) -> Tensor:
    if conv.bias is None:
        raise TypeError(f"an HD v3.x head layer without a bias: {conv}")
    return conv.bias


def _eligible(conv: nn.Conv2d) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
    )


class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d`` (3x3, stride 1) that uses NNPACK's Winograd kernels for CPU fp32 inference.

    Output is NCHW-contiguous (what NNPACK writes); the next layers take any memory format.
    """

    def forward(self, x: Tensor) -> Tensor:
        if winograd_applies(x, self.weight):  # weights were made NCHW-contiguous by use_winograd
            return _winograd_conv(x, self.weight, self.bias, self.padding)  # type: ignore[arg-type]
        return super().forward(x)


def use_winograd(net: nn.Module) -> int:
    """Switch every eligible 3x3 stride-1 ``nn.Conv2d`` in ``net`` to :class:`WinogradConv2d`, in place.

    Call after any memory-format change: weights are made NCHW-contiguous (NNPACK reads them so).
    Also marks IFBlocks to run their bodies with serial elementwise ops and gives HD v3.x blocks
    :class:`SubPixelHeads` built from their current head weights. Returns how many layers
    changed; 0 where NNPACK is not available.
    """
    if not winograd_available():
        return 0
    changed = 0
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and _eligible(module):
            module.__class__ = WinogradConv2d
            module.weight.data = module.weight.data.contiguous()
            changed += 1
        for flag in ("serial_body", "parallel_directions"):  # IFBlocks; IFNet
            if hasattr(module, flag):
                setattr(module, flag, True)
    for module in list(net.modules()):
        conv1, conv2 = getattr(module, "conv1", None), getattr(module, "conv2", None)
        if hasattr(module, "subpixel_heads") and isinstance(conv1, nn.Sequential) and isinstance(conv2, nn.Sequential):
            heads = SubPixelHeads(conv1, conv2)  # HD v3.x blocks
            module.subpixel_heads = heads.to(_head_layers(conv1)[0].weight.device)
    return changed
