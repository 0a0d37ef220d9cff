"""vsrife: RIFE (Real-Time Intermediate Flow Estimation) frame interpolation for VapourSynth.

Layers: ``arch`` (pure torch.nn) <- ``models`` (version registry, store, loading) <-
``engine`` (torch Interpolator) <- ``filter`` (VapourSynth) <- ``cli``. ``train`` builds on
``arch`` and ``models`` only. VapourSynth is imported lazily so the torch layers work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import vapoursynth as vs

__all__ = ["RIFE", "__version__"]


def RIFE(clip: vs.VideoNode, **kwargs: Any) -> vs.VideoNode:
    """Interpolate ``clip`` to a higher frame rate; see :func:`vsrife.filter.RIFE`."""
    from vsrife.filter import RIFE as _rife

    return _rife(clip, **kwargs)
