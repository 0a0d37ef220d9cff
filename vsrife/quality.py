"""Image quality metrics and the triplet protocol used to judge interpolation on real footage.

Protocol: predict frame k+1 from k and k+2 (t = 1/2), or k+1 and k+2 from k and k+3 (t = 1/3, 2/3),
and compare with the real frames. Triplets whose neighbours are near-duplicates (PSNR > 48 dB) or a
cut (PSNR < 16 dB) say nothing about interpolation and are skipped. Baselines: the average of the
two neighbours and repeating frame k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CUT_DB",
    "DUPLICATE_DB",
    "SSIM_WINDOW",
    "Triplet",
    "psnr",
    "rife_ssim",
    "ssim",
    "to_tensor",
    "triplet_kind",
]

DUPLICATE_DB = 48.0
CUT_DB = 16.0


def to_tensor(frame: object) -> Tensor:
    """uint8 HWC (numpy) -> float32 (1, 3, H, W) in [0, 1]."""
    t = torch.from_numpy(np.array(frame, dtype=np.uint8, copy=True))
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def psnr(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of images in [0, 1] (inf for identical images)."""
    mse = float(F.mse_loss(a.float(), b.float()))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _gauss(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


SSIM_WINDOW = 11
"""Side of the SSIM window: frames must be at least this wide and high."""


def _mean_ssim(a: Tensor, b: Tensor, blur: Callable[[Tensor], Tensor]) -> float:
    """Mean of the SSIM map whose local statistics ``blur`` (the Gaussian window) averages; images in [0, 1]."""
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return float(m.mean())


def ssim(a: Tensor, b: Tensor) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, per channel) of (N, C, H, W) images in [0, 1]."""
    a, b = a.float(), b.float()
    c = a.shape[1]
    g = _gauss().to(a.device)
    win = (g[:, None] * g[None, :]).expand(c, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, win, groups=c)

    return _mean_ssim(a, b, blur)


def rife_ssim(a: Tensor, b: Tensor) -> float:
    """Mean SSIM as the RIFE papers' benchmark scripts compute it (``ssim_matlab`` of ECCV2022-RIFE).

    Colour is a third dimension there: one 11x11x11 Gaussian window (sigma 1.5) runs over (C, H, W) of
    (N, C, H, W) images in [0, 1], with the borders (channels included) padded by replication, so the
    score is not :func:`ssim`'s (per channel, valid borders). Use it to compare with published tables.
    """
    a, b = a.float().unsqueeze(1), b.float().unsqueeze(1)  # (N, 1, C, H, W): a volume
    g = _gauss().to(a.device)
    half = SSIM_WINDOW // 2
    kernels = (g.view(1, 1, -1, 1, 1), g.view(1, 1, 1, -1, 1), g.view(1, 1, 1, 1, -1))

    def blur(x: Tensor) -> Tensor:  # the separable form of the 11x11x11 window
        x = F.pad(x, (half,) * 6, mode="replicate")
        for k in kernels:
            x = F.conv3d(x, k)
        return x

    return _mean_ssim(a, b, blur)


@dataclass(frozen=True)
class Triplet:
    """Scores of one prediction against the real frame."""

    index: int
    t: float
    psnr: float
    ssim: float
    psnr_average: float
    psnr_repeat: float


def triplet_kind(left: Tensor, right: Tensor) -> str:
    """``duplicate``, ``cut`` or ``ok`` for a pair of neighbouring frames."""
    p = psnr(left, right)
    if p > DUPLICATE_DB:
        return "duplicate"
    if p < CUT_DB:
        return "cut"
    return "ok"
