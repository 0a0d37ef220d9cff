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

NNPACK runs on its own thread pool, PyTorch's other CPU ops on OpenMP's; after each OpenMP region
the OpenMP workers keep spinning for a few milliseconds and take cores from NNPACK's threads
(a Winograd chain ran 1.4x slower with two-thread activations between the convolutions on two
cores). IFBlocks therefore run their residual 3x3 stack (:meth:`body`, flag ``serial_body``) with
one intra-op thread for the memory-bound activations and sums in between, while the convolutions
keep NNPACK's pool (:func:`run_body`). NNPACK sizes that pool once per process, at its
first convolution, from the calling thread's torch thread count. HD v3.x blocks also run their flow
and mask heads there, rewritten from transposed convolutions into Winograd phase convolutions
(:class:`SubPixelHeads`).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SubPixelHeads", "WinogradConv2d", "run_body", "use_winograd", "winograd_applies", "winograd_available"]

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
        return fn  # type: ignore[no-any-return]
    return None


def run_body[T](body: Callable[[Tensor], T], x: Tensor, serial: bool, restore_format: bool = True) -> T:
    """``body(x)``; with ``serial`` (and where Winograd applies) in NCHW with one intra-op thread.

    The Winograd convolutions inside keep NNPACK's own pool; only the OpenMP ops between them are
    serialised, so OpenMP's spinning workers stop competing with NNPACK's threads. The layout changes
    (NCHW in; with ``restore_format`` a tensor result back in the input's format: transposed
    convolutions after it run faster channels_last) happen outside, with every thread.
    """
    if not serial or not winograd_applies(x, x):
        return body(x)
    _ensure_pool()
    set_threads = _omp_set_num_threads() or torch.set_num_threads
    threads = torch.get_num_threads()
    set_threads(1)
    try:
        out = body(x.contiguous())
    finally:
        set_threads(threads)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if restore_format and channels_last and isinstance(out, Tensor):
        return out.contiguous(memory_format=torch.channels_last)  # type: ignore[return-value]
    return out


def _winograd_conv(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int] = (1, 1)) -> Tensor:
    """Stride-1 convolution by NNPACK (NCHW in: one copy for channels_last input); the direct one where
    NNPACK refuses (a shape or workspace it does not handle), which is exact."""
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


class SubPixelHeads(nn.Module):
    """HD v3.x's flow and mask heads (ConvTranspose 4/2/1, PReLU, ConvTranspose 4/2/1 each) as Winograd
    3x3 convolutions on the block's working grid.

    A stride-2 transposed convolution is a 3x3 convolution giving its four output phases as channels
    (2.25x the multiply-adds, which Winograd more than pays back), and the second one, applied to the
    first's phases, a 3x3 convolution giving sixteen phases of the 4x grid; PReLU acts per channel, so
    it runs on the phases directly. Both heads share the first convolution; one pixel shuffle at the
    end. This replaces four oneDNN transposed convolutions, two layout copies and two pixel shuffles of
    full-size features (heads: 1.2x faster at 320x184). Weights are taken from the heads once (an
    inference copy; the buffers are not saved in state dicts).
    """

    def __init__(self, flow_head: nn.Sequential, mask_head: nn.Sequential) -> None:
        super().__init__()
        heads = (flow_head, mask_head)
        with torch.no_grad():
            w1 = torch.cat([_first_stage(h[0].weight.float()) for h in heads])
            b1 = torch.cat([h[0].bias.float().repeat_interleave(4) for h in heads])
            slope = torch.cat([h[1].weight.float().expand(h[0].out_channels).repeat_interleave(4) for h in heads])
            self.split = 4 * flow_head[0].out_channels
            for name, h in zip(("flow", "mask"), heads, strict=True):
                self.register_buffer(f"{name}_w", _second_stage(h[2].weight.float()).contiguous(), persistent=False)
                self.register_buffer(f"{name}_b", h[2].bias.float().repeat_interleave(16), persistent=False)
        self.register_buffer("w1", w1.contiguous(), persistent=False)
        self.register_buffer("b1", b1, persistent=False)
        self.register_buffer("slope", slope, persistent=False)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(flow, mask logit) at 4x ``feat``'s resolution, as ``conv1(feat), conv2(feat)`` give them."""
        p = F.prelu(_winograd_conv(feat, self.w1, self.b1), self.slope)
        flow = F.pixel_shuffle(_winograd_conv(p[:, : self.split], self.flow_w, self.flow_b), 4)
        mask = F.pixel_shuffle(_winograd_conv(p[:, self.split :], self.mask_w, self.mask_b), 4)
        return flow, mask


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
        if hasattr(module, "serial_body"):
            module.serial_body = True
    for module in list(net.modules()):
        if hasattr(module, "subpixel_heads"):  # HD v3.x blocks
            module.subpixel_heads = SubPixelHeads(module.conv1, module.conv2).to(module.conv1[0].weight.device)
    return changed
