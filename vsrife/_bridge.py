"""Python half of the native ``rife`` / ``vsrife`` plugin namespaces (``vsrife/_shim/rife_shim.c``).

The plugin's ``RIFE`` calls :func:`bind` under the GIL; :func:`bind` hands :func:`_entry` to the
plugin's ``Bind`` through VapourSynth's Python glue, which wraps it as a VapourSynth function. The
plugin then calls that function with its own arguments, so the glue does all argument conversion.
"""

from __future__ import annotations

import os
from typing import Any

import vapoursynth as vs

WHOLE = ("factor_num", "factor_den", "fps_num", "fps_den", "ensemble", "sc", "skip", "threads", "torch_compile", "trt")
"""Integer and boolean arguments of RIFE (float in the plugin signature; whole numbers only)."""


def _message(text: str) -> str:
    """``text`` as the glue can hand it to C: undecodable path bytes escaped (``\\udcff``), NUL spelt ``\\x00``
    (a C string would end there)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\0", "\\x00")


def _entry(**kwargs: Any) -> dict[str, vs.VideoNode | str]:
    """Run :func:`vsrife.filter.RIFE` with the plugin call's arguments."""
    # VapourSynth hands `data` arguments over as str or, without a UTF-8 hint, as bytes.
    args: dict[str, Any] = {
        key: os.fsdecode(value) if isinstance(value, bytes) else value for key, value in kwargs.items()
    }
    for key in WHOLE:  # declared float in the signature, so that 2.5 arrives as 2.5 rather than truncated
        value = args.get(key)
        if isinstance(value, float):
            if not value.is_integer():
                return {"user_error": _message(f"{key} must be a whole number, got {value:g}")}
            args[key] = int(value)
    try:
        from vsrife.filter import RIFE
    except (ImportError, OSError) as error:  # OSError: e.g. a torch install missing one of its libraries
        return {"user_error": _message(f"cannot import vsrife.filter.RIFE ({type(error).__name__}: {error})")}
    try:
        clip = RIFE(**args)
    except vs.Error as error:
        # A user error: hand the plain message back (the C side prefixes "<namespace>.RIFE: "); other
        # exceptions are bugs and keep the traceback the glue attaches.
        return {"user_error": _message(str(error).removeprefix("RIFE: "))}
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"vsrife.filter.RIFE returned {type(clip).__name__}, expected a VideoNode")
    return {"clip": clip}


def bind(namespace: str = "rife") -> None:
    """Register :func:`_entry` with ``core.<namespace>.Bind`` in the current environment (called from C)."""
    getattr(vs.core, namespace).Bind(func=_entry)
