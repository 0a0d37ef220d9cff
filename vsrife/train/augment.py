"""Window augmentations: random crop, camera pan, flips, 90-degree rotation, channel order, temporal reversal.

All transforms act identically on the three frames of a window, except the pan: it moves the crop
window by a whole number of pixels per source frame, adding an exact global motion (no resampling)
to every pixel -- footage that is mostly static then still teaches the flow estimator to find motion.
Temporal reversal swaps I0 and I1 and maps t to 1 - t. Randomness comes from the
``numpy.random.Generator`` the caller passes in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Augment", "augment_window", "center_crop", "random_crop"]


@dataclass(frozen=True)
class Augment:
    """Probabilities of each augmentation (0 disables it)."""

    flip_h: float = 0.5
    flip_v: float = 0.5
    rot90: float = 0.5
    channel_perm: float = 0.5
    reverse: float = 0.5
    pan: float = 0.0
    pan_pixels: int = 3


def random_crop(
    frames: list[np.ndarray],
    size: tuple[int, int],
    rng: np.random.Generator,
    pan_pixels: int = 0,
    positions: tuple[int, ...] | None = None,
) -> list[np.ndarray]:
    """Crop ``size`` at a random place; with ``positions`` (frame indices in the window), frame j's
    crop moves by ``positions[j] * (sy, sx)`` for a random step of at most ``pan_pixels`` per axis,
    reduced toward zero where the frame has too little room for it.
    """
    h, w = frames[0].shape[:2]
    y = int(rng.integers(0, h - size[0] + 1))
    x = int(rng.integers(0, w - size[1] + 1))
    step = rng.integers(-pan_pixels, pan_pixels + 1, 2) if pan_pixels else (0, 0)
    pos = positions if positions is not None else (0,) * len(frames)
    sy = _fit_step(int(step[0]), y, h - size[0], max(pos))
    sx = _fit_step(int(step[1]), x, w - size[1], max(pos))
    return [f[y + p * sy : y + p * sy + size[0], x + p * sx : x + p * sx + size[1]]
            for f, p in zip(frames, pos, strict=True)]  # fmt: skip


def _fit_step(step: int, origin: int, room: int, last: int) -> int:
    """The step of the same sign and at most ``|step|`` that keeps ``origin + last * s`` in ``[0, room]``."""
    if step == 0 or last == 0:
        return 0
    limit = (room - origin) // last if step > 0 else -(origin // last)
    return min(step, limit) if step > 0 else max(step, limit)


def center_crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = frame.shape[:2]
    y, x = (h - size[0]) // 2, (w - size[1]) // 2
    return frame[y : y + size[0], x : x + size[1]]


def augment_window(
    frames: list[np.ndarray],
    t: float,
    rng: np.random.Generator,
    aug: Augment,
    crop: tuple[int, int] | None,
    positions: tuple[int, int, int] | None = None,
) -> tuple[list[np.ndarray], float]:
    """Augment ``[I0, It, I1]`` (uint8 HWC) with timestep ``t``; returns new frames and t.

    ``positions`` are the frames' indices in their window (0, inner, length - 1); the pan needs them
    and a crop. Every draw is made whether or not it is applied, so one sample's randomness never
    depends on the probabilities of the others. Rotation by 90/270 degrees needs a square crop;
    with a non-square crop only 180 degrees is used.
    """
    u = rng.random(6)
    rot_k = int(rng.integers(1, 4))
    perm = rng.permutation(3)
    if crop is not None:
        # The pan step is drawn after the crop's own draws, so the pan setting changes nothing else.
        panned = positions if u[5] < aug.pan else None
        frames = random_crop(frames, crop, rng, aug.pan_pixels, panned)
    if u[0] < aug.flip_h:
        frames = [f[:, ::-1] for f in frames]
    if u[1] < aug.flip_v:
        frames = [f[::-1] for f in frames]
    if u[2] < aug.rot90:
        square = frames[0].shape[0] == frames[0].shape[1]
        frames = [np.rot90(f, rot_k if square else 2) for f in frames]
    if u[3] < aug.channel_perm:
        frames = [f[:, :, perm] for f in frames]
    if u[4] < aug.reverse:
        frames = [frames[2], frames[1], frames[0]]
        t = 1.0 - t
    return frames, t
