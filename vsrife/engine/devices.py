"""Device and precision selection (no VapourSynth here)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "resolve_device", "resolve_precision"]

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
