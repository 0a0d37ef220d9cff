"""VapourSynth filter layer: formats, timing, props and scene changes around the engine."""

from vsrife.filter.rife import RIFE

__all__ = ["RIFE"]
