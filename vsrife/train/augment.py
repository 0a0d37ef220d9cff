"""Window augmentations: random crop, flips, 90-degree rotation, channel order and temporal reversal.

All transforms act identically on the three frames of a window. Temporal reversal swaps I0 and I1
and maps t to 1 - t. Randomness comes from the ``numpy.random.Generator`` the caller passes in.
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


def random_crop(frames: list[np.ndarray], size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    y = int(rng.integers(0, h - size[0] + 1))
    x = int(rng.integers(0, w - size[1] + 1))
    return [f[y : y + size[0], x : x + size[1]] for f in frames]


def center_crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = frame.shape[:2]
    y, x = (h - size[0]) // 2, (w - size[1]) // 2
    return frame[y : y + size[0], x : x + size[1]]


def augment_window(
    frames: list[np.ndarray], t: float, rng: np.random.Generator, aug: Augment, crop: tuple[int, int] | None
) -> tuple[list[np.ndarray], float]:
    """Augment ``[I0, It, I1]`` (uint8 HWC) with timestep ``t``; returns new frames and t.

    Every draw is made whether or not it is applied, so one sample's randomness never depends on
    the probabilities of the others. Rotation by 90/270 degrees needs a square crop; with a
    non-square crop only 180 degrees is used.
    """
    u = rng.random(6)
    rot_k = int(rng.integers(1, 4))
    perm = rng.permutation(3)
    if crop is not None:
        frames = random_crop(frames, crop, rng)
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
