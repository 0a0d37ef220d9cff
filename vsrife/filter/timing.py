"""Frame-rate arithmetic: which source frames and which timestep make output frame n.

With a rate factor num/den (reduced), output frame n lies at source position n·den/num: left source
frame i = floor(n·den/num) and t = (n·den mod num)/num, exactly. The pattern repeats every ``num``
output frames (``den`` source frames), so the left/right source clips are built with one
``SelectEvery(cycle=den, offsets)`` (per frame instead when the period is very long). The output has
ceil(N·num/den) frames: every output timestamp that falls before the end of the last source frame.
Output frames after the last source frame's timestamp (t > 0 with no right neighbour) repeat the
last frame.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["MAX_FRAMES", "Timing", "as_int", "rate_factor"]

MAX_FRAMES = 2**31 - 1


def rate_factor(
    factor_num: int,
    factor_den: int,
    fps_num: int | None,
    fps_den: int | None,
    src_fps: Fraction,
) -> Fraction:
    """The rate multiplier from either factor_* or a target fps_*; raises ValueError naming the parameter."""
    factor_num, factor_den = _rate_int("factor_num", factor_num), _rate_int("factor_den", factor_den)
    if (fps_num is None) != (fps_den is None):
        raise ValueError("fps_num and fps_den must be given together (target rate = fps_num / fps_den)")
    if fps_num is not None and fps_den is not None:
        if (factor_num, factor_den) != (2, 1):  # the defaults; anything else was asked for and would be ignored
            raise ValueError(
                f"give either factor_num/factor_den ({factor_num}/{factor_den}) or fps_num/fps_den, not both"
            )
        fps_num, fps_den = _rate_int("fps_num", fps_num), _rate_int("fps_den", fps_den)
        if src_fps == 0:
            raise ValueError(
                "fps_num/fps_den need a clip with a known frame rate, but this clip has fps 0 (variable frame "
                "rate, e.g. inside mpv); use factor_num/factor_den instead"
            )
        target = Fraction(fps_num, fps_den)
        factor = target / src_fps
        if factor <= 1:
            raise ValueError(f"target rate fps_num/fps_den = {target} must be higher than the clip's rate {src_fps}")
        return factor
    factor = Fraction(factor_num, factor_den)
    if factor <= 1:
        raise ValueError(f"factor_num/factor_den = {factor} must be greater than 1 (this filter only raises the rate)")
    return factor


def as_int(value: object) -> int | None:
    """``value`` as an ``int`` if it is an integer of any type (numpy's too; not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def _rate_int(name: str, value: object) -> int:
    # VapourSynth keeps rates as 64-bit fractions: bounded terms keep src rate x factor representable
    number = as_int(value)
    if number is None or not 1 <= number <= MAX_FRAMES:
        raise ValueError(f"{name} must be a positive integer up to {MAX_FRAMES}, got {value!r}")
    return number


@dataclass(frozen=True)
class Timing:
    """Mapping between output frames and (left source frame, t) for a rate factor num/den."""

    num: int
    den: int
    src_frames: int

    @classmethod
    def create(cls, factor: Fraction, src_frames: int) -> Timing:
        return cls(factor.numerator, factor.denominator, src_frames)

    @property
    def out_frames(self) -> int:
        """ceil(N · num / den), capped to what VapourSynth can count."""
        return min(MAX_FRAMES, math.ceil(self.src_frames * self.num / self.den))

    @property
    def offsets(self) -> list[int]:
        """Left source frame of each output within one period (``num`` outputs per ``den`` sources)."""
        return [r * self.den // self.num for r in range(self.num)]

    def select_every(self) -> tuple[int, list[int]]:
        """``SelectEvery(cycle, offsets)`` arguments mapping output n to its left source frame.

        SelectEvery needs cycle > 1, so for integer factors two periods are spelled out.
        """
        if self.den > 1:
            return self.den, self.offsets
        return 2, self.offsets + [o + 1 for o in self.offsets]

    def source(self, n: int) -> tuple[int, Fraction]:
        """(left source index, timestep t in [0, 1)) of output frame ``n``."""
        pos = n * self.den
        return pos // self.num, Fraction(pos % self.num, self.num)

    def out_fps(self, src_fps: Fraction) -> Fraction:
        """Output frame rate (0 stays 0: variable-rate clips get per-frame durations)."""
        return src_fps * Fraction(self.num, self.den)
