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
first convolution, from the calling thread's torch thread count.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["WinogradConv2d", "run_body", "use_winograd", "winograd_applies", "winograd_available"]

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


def run_body(body: Callable[[Tensor], Tensor], x: Tensor, serial: bool) -> Tensor:
    """``body(x)``; with ``serial`` (and where Winograd applies) in NCHW with one intra-op thread.

    The Winograd convolutions inside keep NNPACK's own pool; only the OpenMP ops between them are
    serialised, so OpenMP's spinning workers stop competing with NNPACK's threads. The layout changes
    (NCHW in, the input's format out: the transposed convolutions after it run faster channels_last)
    happen outside, with every thread.
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
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


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
        if winograd_applies(x, self.weight):
            # NNPACK reads NCHW: one copy where the input comes channels_last (the first layer of a
            # stack); weights were made NCHW-contiguous by use_winograd.
            try:
                return torch._nnpack_spatial_convolution(x.contiguous(), self.weight, self.bias, list(self.padding))
            except RuntimeError:
                pass  # NNPACK refused (a shape or workspace it does not handle): the direct convolution is exact
        return super().forward(x)


def use_winograd(net: nn.Module) -> int:
    """Switch every eligible 3x3 stride-1 ``nn.Conv2d`` in ``net`` to :class:`WinogradConv2d`, in place.

    Call after any memory-format change: weights are made NCHW-contiguous (NNPACK reads them so).
    Also marks IFBlocks to run their bodies with serial elementwise ops. Returns how many layers
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
    return changed
