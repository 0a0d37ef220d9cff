"""NNPACK's Winograd convolution called directly, with a thread pool per concurrent call.

PyTorch's ``torch._nnpack_spatial_convolution`` runs every call on one process-wide NNPACK thread
pool, sized once from the first caller's thread count, and that pool runs one call at a time
(a mutex). Two convolutions from two threads are serialised however many cores are idle, so the two
directions of an HD v3.x block could never run side by side. PyTorch's CPU library exports NNPACK's
C API (``nnp_convolution_inference``) and pthreadpool's, so this module calls the same kernels
(the same algorithm choice, bit-identical results) with a pool owned by the calling thread: one
thread runs inline with no pool at all; ``n`` threads take a pool of ``n`` that no other call is
using. Each pool keeps its workspace (NNPACK would otherwise allocate one every call).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["DirectNNPACK", "direct_nnpack"]

_SUCCESS = 0
_ALGORITHM_AUTO = 0  # what PyTorch passes: wt8x8 Winograd for 3x3 stride-1 kernels
_TRANSFORM_COMPUTE = 1
_ACTIVATION_IDENTITY = 0


class _Size(ctypes.Structure):
    _fields_ = [("width", ctypes.c_size_t), ("height", ctypes.c_size_t)]


class _Padding(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("top", "right", "bottom", "left")]


class _Slot:
    """A pthreadpool of ``threads`` (none for one thread: NNPACK then runs inline) and its workspace."""

    def __init__(self, lib: ctypes.CDLL, threads: int) -> None:
        self._destroy = lib.pthreadpool_destroy
        self.pool = ctypes.c_void_p(lib.pthreadpool_create(threads) if threads > 1 else None)
        self.workspace = torch.empty(0, dtype=torch.uint8)

    def reserve(self, size: int) -> int:
        """Address of a workspace of at least ``size`` bytes (64-byte aligned: PyTorch's CPU allocator)."""
        if self.workspace.numel() < size:
            self.workspace = torch.empty(size, dtype=torch.uint8)
        return self.workspace.data_ptr()

    def __del__(self) -> None:
        if self.pool:
            self._destroy(self.pool)


class DirectNNPACK:
    """``nnp_convolution_inference`` with a pool per concurrent caller (see the module docstring).

    Pools are kept in a free list per thread count: a call takes one (or makes one) and returns it,
    so there are as many pools as calls ever ran at once, whichever threads make them.
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._conv = lib.nnp_convolution_inference
        self._conv.restype = ctypes.c_int
        self._conv.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, _Size, _Padding, _Size, _Size,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_size_t), ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.pthreadpool_create.restype = ctypes.c_void_p
        lib.pthreadpool_create.argtypes = [ctypes.c_size_t]
        lib.pthreadpool_destroy.restype = None
        lib.pthreadpool_destroy.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._lock = threading.Lock()
        self._free: dict[int, list[_Slot]] = {}
        self._orphans: list[_Slot] = []
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked child has none of the parent's pool threads: never use (or join) those pools."""
        self._lock = threading.Lock()
        self._orphans.extend(slot for free in self._free.values() for slot in free)  # kept: no __del__
        self._free = {}

    def _acquire(self, threads: int) -> _Slot:
        with self._lock:
            free = self._free.setdefault(threads, [])
            return free.pop() if free else _Slot(self._lib, threads)

    def _release(self, threads: int, slot: _Slot) -> None:
        with self._lock:
            self._free[threads].append(slot)

    def pools(self) -> dict[int, int]:
        """Idle pools per thread count (how many calls ran at once, for tests)."""
        with self._lock:
            return {threads: len(free) for threads, free in self._free.items()}

    def conv3x3(self, x: Tensor, weight: Tensor, bias: Tensor, padding: tuple[int, int], threads: int) -> Tensor | None:
        """Stride-1 convolution of fp32 ``x`` on ``threads`` threads (NCHW: other layouts are copied);
        None where NNPACK refuses or the tensors are not CPU fp32 (the caller then takes another path)."""
        tensors = (x, weight, bias)
        if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors) or x.dim() != 4:
            return None
        n, cin, h, w = x.shape
        cout, _, kh, kw = weight.shape
        py, px = padding
        out = x.new_empty(n, cout, h + 2 * py - kh + 1, w + 2 * px - kw + 1)
        x, weight, bias = x.contiguous(), weight.contiguous(), bias.contiguous()  # no copies when already so
        args = (cin, cout, _Size(w, h), _Padding(py, px, py, px), _Size(kw, kh), _Size(1, 1))
        need = ctypes.c_size_t(0)
        slot = self._acquire(threads)
        try:
            status = self._conv(_ALGORITHM_AUTO, _TRANSFORM_COMPUTE, *args, None, None, None, None, None,
                                ctypes.byref(need), _ACTIVATION_IDENTITY, None, slot.pool, None)  # fmt: skip
            space = slot.reserve(need.value)
            in_step, out_step = cin * h * w * 4, out[0].numel() * 4
            for i in range(n):
                if status != _SUCCESS:
                    return None
                status = self._conv(
                    _ALGORITHM_AUTO, _TRANSFORM_COMPUTE, *args, x.data_ptr() + i * in_step, weight.data_ptr(),
                    bias.data_ptr(), out.data_ptr() + i * out_step, space, ctypes.byref(need),
                    _ACTIVATION_IDENTITY, None, slot.pool, None,
                )  # fmt: skip
        finally:
            self._release(threads, slot)
        return out if status == _SUCCESS else None


@functools.cache
def direct_nnpack() -> DirectNNPACK | None:
    """The binding where PyTorch has NNPACK and its CPU library exports NNPACK's and pthreadpool's C
    API; None otherwise."""
    try:
        if not torch._nnpack_available():  # also initialises NNPACK (its C API needs that first)
            return None
    except (AttributeError, RuntimeError):
        return None
    path = Path(torch.__file__).resolve().parent / "lib" / "libtorch_cpu.so"
    try:
        lib = ctypes.CDLL(str(path))
        for name in ("nnp_convolution_inference", "pthreadpool_create", "pthreadpool_destroy"):
            getattr(lib, name)
    except (OSError, AttributeError):
        return None
    return DirectNNPACK(lib)
