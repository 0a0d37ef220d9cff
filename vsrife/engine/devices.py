"""Device and precision selection (no VapourSynth here)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

__all__ = [
    "KEEP_FREED_PIXELS",
    "PRECISIONS",
    "cpu_has_native_bf16",
    "ieee_fp32_convolutions",
    "keep_freed_memory",
    "keeps_freed_memory_for",
    "release_free_heap",
    "resolve_device",
    "resolve_precision",
    "share_heaps",
]


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

_M_TRIM_THRESHOLD = -1  # mallopt parameters from glibc's malloc.h
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_THRESHOLD = 1 << 30

RELEASE_INTERVAL_S = 2.0
"""How often :func:`release_free_heap` hands free heap pages back (at most; seconds)."""

KEEP_FREED_PIXELS = (500_000, 2_500_000)
"""Frame sizes (padded pixels: about 960x540 to 1920x1088) for which :func:`keep_freed_memory` pays:
from the lower bound on network tensors pass glibc's 32 MiB mmap threshold (v3.6's largest: 45
channels at half resolution); above the upper bound (4K, 8K) holes left in the heap by frame-sized
blocks raised the peak instead (8K at scale 0.25: 10.1 instead of 6.4 GiB working memory)."""


def keeps_freed_memory_for(pixels: int) -> bool:
    """Whether frames of ``pixels`` (padded) are in :data:`KEEP_FREED_PIXELS`."""
    low, high = KEEP_FREED_PIXELS
    return low <= pixels <= high


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed large blocks for reuse instead of unmapping them (CPU inference).

    glibc serves blocks over 32 MiB with a fresh ``mmap`` and unmaps them on free, so each large
    tensor of every forward pass is page-faulted in again: v3.6 at 1280x720 took ~190,000 faults
    per pass, 11% of its time in channels_last and 26% in the official layout. With mmap off and
    trimming above 1 GiB the blocks are reused; resident memory stays at the peak working set
    (flat over a render) and is not handed back to the system until the process ends.
    Process-wide, once; True when glibc took it.

    glibc also gives threads their own heaps (arenas), and each would keep its own peak:
    VapourSynth calls filters from many threads (v3.6 720p, 8 threads: +580 MiB). Threads that
    start allocating afterwards share the existing heaps instead, so the peak is kept about once.
    For small frames, whose blocks never reach the mmap threshold, it buys nothing and only keeps
    memory (640x360 over 10,000 frames: +220 MiB), hence :data:`KEEP_FREED_PIXELS`. Measured
    (v3.6, 2 threads): 1280x720 0.19M -> 0 page faults per pass, 1.35x; 1920x1080 0.98M -> 12k,
    14.5 -> 11.0 s, same peak RSS.
    """
    global _keeping
    _keeping = _mallopt((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_ARENA_MAX, 1))
    return _keeping


_keeping = False
_release_lock = threading.Lock()
_last_release = 0.0


def release_free_heap(interval: float = RELEASE_INTERVAL_S) -> bool:
    """Hand the free pages inside glibc's heap back to the system (``malloc_trim``), at most once per
    ``interval`` seconds process-wide; not once :func:`keep_freed_memory` has been applied (that mode
    keeps them on purpose). True when it trimmed.

    glibc returns only the top of its heap by itself. With VapourSynth's long-lived frames and the
    network's short-lived tensors sharing one heap, free holes in the middle stayed resident: at
    640x360 (v3.6, flow scale 0.25) RSS rose from 1.4 to 2.2 GiB over 4000 output frames while 0.42 GiB
    was in use, and one trim brought it to 0.86 GiB. A trim costs ~10 ms plus the page faults of
    re-touching what it released, hence the rate limit (every interpolation: 20 % slower at that size).
    """
    global _last_release
    if _keeping or not sys.platform.startswith("linux"):
        return False
    now = time.monotonic()
    with _release_lock:
        if now - _last_release < interval:
            return False
        _last_release = now
    trim = _libc("malloc_trim", (ctypes.c_size_t,))
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def share_heaps() -> bool:
    """Make threads that start allocating from now on share glibc's existing heaps (CPU inference).

    By default glibc gives threads heaps of their own (up to 8 per core). VapourSynth calls filters
    from whichever worker thread is free, so the network's blocks were allocated in one heap and
    freed in another, and the heaps fragmented: at 640x360 resident memory crept up in steps over
    10,000 output frames (+105 and +142 MiB in two runs) while the live memory stayed the same. With
    one heap it stayed flat within 11 MiB from frame 2000 to 10,000 in two runs (``benchmarks/memory.py``).
    Freed memory is still handed back as usual (unlike :func:`keep_freed_memory`, which includes
    this). Process-wide, once; True when glibc took it.
    """
    return _mallopt((_M_ARENA_MAX, 1))


@functools.cache
def _libc(name: str, argtypes: tuple[type, ...]) -> Callable[..., int] | None:
    """A glibc malloc-tuning function returning int, or None where the C library has none (not glibc)."""
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = list(argtypes), ctypes.c_int
    return fn


def _mallopt(*settings: tuple[int, int]) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    mallopt = _libc("mallopt", (ctypes.c_int, ctypes.c_int))  # musl has it as a no-op returning 0
    return mallopt is not None and all(mallopt(k, v) for k, v in settings)


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_prefers_winograd() -> bool:
    """Whether fp32 convolutions default to NNPACK's Winograd kernels: on CPUs without AVX-512.

    NNPACK has AVX2 kernels only; measured 1.2-1.5x faster end to end than oneDNN's direct AVX2
    convolutions (README). Against oneDNN's AVX-512 fp32 kernels it gained only 8% in one run (an
    AVX512-BF16 machine, where bf16 is the default and faster still), so AVX-512 CPUs keep oneDNN unless
    asked (``winograd=True``).
    """
    return "avx512f" not in _cpu_flags()


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; errors name the parameter."""
    if isinstance(device, torch.device):
        dev = device
    else:
        text = str(device).strip().lower()
        if text == "auto":
            return (
                torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
            )
        try:
            dev = torch.device(text)
        except RuntimeError as exc:
            raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", got {device!r}') from exc
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", got {device!r}')
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available (no NVIDIA GPU / driver found)")
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device("cuda", index)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``"auto"``: fp16 on CUDA; bf16 on CPUs with native bf16, else fp32. Or fp32/fp16/bf16 explicitly."""
    text = str(precision).strip().lower()
    if text == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if text not in PRECISIONS:
        raise ValueError(f'precision must be one of "auto", "fp32", "fp16", "bf16", got {precision!r}')
    if text == "fp16" and device.type == "cpu":
        raise ValueError('precision "fp16" is not supported on CPU (use "fp32", or "bf16" on CPUs with bf16 support)')
    return PRECISIONS[text]


class _NoTF32:
    """Reference-counted ``cudnn.allow_tf32 = False`` across threads (see :func:`ieee_fp32_convolutions`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved = True

    def enter(self) -> None:
        with self.lock:
            if self.users == 0:
                self.saved = torch.backends.cudnn.allow_tf32
                torch.backends.cudnn.allow_tf32 = False
            self.users += 1

    def exit(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                torch.backends.cudnn.allow_tf32 = self.saved


_no_tf32 = _NoTF32()


@contextlib.contextmanager
def ieee_fp32_convolutions() -> Iterator[None]:
    """cuDNN convolutions in full fp32 (no TF32, 10-bit mantissa) while any thread is inside.

    The setting is process-wide: ``torch.backends.cudnn.flags`` would reset it (and the user's
    ``benchmark``/``deterministic``) when the first of two overlapping fp32 engines leaves, in the middle
    of the other's forward. Only ``allow_tf32`` is touched, restored when the last user leaves.
    """
    _no_tf32.enter()
    try:
        yield
    finally:
        _no_tf32.exit()
