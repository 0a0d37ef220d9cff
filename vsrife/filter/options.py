"""Argument checking for :func:`vsrife.filter.RIFE`: one place that knows every parameter's rules.

Each error names the parameter and what it accepts; the filter turns them into ``vs.Error``.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

from vsrife.engine.interpolator import SCALES, TIMESTEP_MODES
from vsrife.filter.scenechange import DEFAULT_SC_THRESHOLD, SC_METHODS
from vsrife.filter.timing import as_int

__all__ = ["CUT_ACTIONS", "DEFAULT_SKIP_THRESHOLD", "MAX_THREADS", "FilterOptions"]

CUT_ACTIONS = ("repeat", "blend")
DEFAULT_SKIP_THRESHOLD = 50.0
MAX_THREADS = 1024
"""Upper bound of ``threads``: beyond any machine's cores; far larger counts crash OpenMP's thread creation."""
_PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def _text(name: str, value: Any, allowed: tuple[str, ...] | None = None) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            raise ValueError(f"{name} must be UTF-8 text, got {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    text = value.strip()
    if allowed is not None and text.lower() not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return text.lower() if allowed is not None else text


def _path(name: str, value: Any) -> str:
    """A path given as text, bytes or any ``os.PathLike`` (``pathlib.Path``)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    text = _text(name, value)
    if not text:  # Path("") is the current folder: never what an empty argument meant
        raise ValueError(f"{name} must be a path, got an empty string")
    return text


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be a boolean (True/False or 1/0), got {value!r}")


def _real(value: Any) -> bool:
    """A real number of any type (numpy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if not _real(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float's range
        v = math.inf if value > 0 else -math.inf
    if math.isnan(v):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if v < lo or v > hi or (lo_open and v == lo):
        bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return v


@dataclass(frozen=True)
class FilterOptions:
    """Validated filter arguments (rate arguments are checked in :mod:`vsrife.filter.timing`)."""

    model: str | None
    model_path: str | None
    scale: float
    ensemble: bool
    sc: bool
    sc_threshold: float
    sc_method: str
    on_cut: str
    skip: bool
    skip_threshold: float
    device: str
    precision: str
    timestep_mode: str
    threads: int
    torch_compile: bool
    trt: bool
    trt_cache_dir: str | None

    @classmethod
    def parse(
        cls,
        *,
        model: Any = None,
        model_path: Any = None,
        scale: Any = 1.0,
        ensemble: Any = False,
        sc: Any = True,
        sc_threshold: Any = DEFAULT_SC_THRESHOLD,
        sc_method: Any = "auto",
        on_cut: Any = "repeat",
        skip: Any = False,
        skip_threshold: Any = DEFAULT_SKIP_THRESHOLD,
        device: Any = "auto",
        precision: Any = "auto",
        timestep_mode: Any = "auto",
        threads: Any = 0,
        torch_compile: Any = False,
        trt: Any = False,
        trt_cache_dir: Any = None,
    ) -> FilterOptions:
        if isinstance(scale, bool) or scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")
        thread_count = as_int(threads)
        if thread_count is None or not 0 <= thread_count <= MAX_THREADS:
            raise ValueError(
                f"threads must be a non-negative integer up to {MAX_THREADS} (0 = torch's default), got {threads!r}"
            )
        return cls(
            model=None if model is None else _text("model", model),
            model_path=None if model_path is None else _path("model_path", model_path),
            scale=float(scale),
            ensemble=_flag("ensemble", ensemble),
            sc=_flag("sc", sc),
            sc_threshold=_number("sc_threshold", sc_threshold, 0.0, 1.0, lo_open=True),
            sc_method=_text("sc_method", sc_method, SC_METHODS),
            on_cut=_text("on_cut", on_cut, CUT_ACTIONS),
            skip=_flag("skip", skip),
            skip_threshold=_number("skip_threshold", skip_threshold, 0.0, 200.0, lo_open=True),
            device=_text("device", device),
            precision=_text("precision", precision, _PRECISIONS),
            timestep_mode=_text("timestep_mode", timestep_mode, TIMESTEP_MODES),
            threads=thread_count,
            torch_compile=_flag("torch_compile", torch_compile),
            trt=_flag("trt", trt),
            # "" (an unset environment variable passed on) means the default folder, as before
            trt_cache_dir=None
            if trt_cache_dir is None or trt_cache_dir in ("", b"")
            else _path("trt_cache_dir", trt_cache_dir),
        )
