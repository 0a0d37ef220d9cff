"""Torch-level inference engine (no VapourSynth)."""

from vsrife.engine.devices import cpu_has_native_bf16, resolve_device, resolve_precision
from vsrife.engine.interpolator import SCALES, TIMESTEP_MODES, Interpolator, PreparedFrame

__all__ = [
    "SCALES",
    "TIMESTEP_MODES",
    "Interpolator",
    "PreparedFrame",
    "cpu_has_native_bf16",
    "resolve_device",
    "resolve_precision",
]
