"""Losses: Laplacian-pyramid L1 reconstruction and the paper's leakage distillation.

Distillation (RIFE, ECCV 2022, Sec. 3.3): a teacher that sees the ground-truth frame I_t estimates
F_t->0 and F_t->1; every IFBlock's (cumulative) flow is pulled toward it. The default distance is the
official code's (ECCV2022-RIFE ``model/IFNet.py``): per pixel the root mean square over the four flow
channels. A mask restricts the loss to pixels where the teacher's warp explains I_t better than the
student's (the official rule: teacher error + 0.01 < student error), or ``all`` pixels as in the paper.
The reconstruction loss is the official LapLoss (band-pass levels only) unless ``lowpass`` adds the
coarsest residual, which also penalises brightness and colour offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.warp import backward_warp

__all__ = [
    "LaplacianLoss",
    "better_mask",
    "blend",
    "distillation_loss",
    "laplacian_pyramid",
    "photometric_error",
    "psnr_batch",
]

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


def _gauss_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    k = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0
    return k.to(device=device, dtype=dtype).expand(channels, 1, 5, 5).contiguous()


def _blur(x: Tensor, kernel: Tensor) -> Tensor:
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def _upsample(x: Tensor, kernel: Tensor) -> Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros((n, c, 2 * h, 2 * w))
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0 * kernel)


def laplacian_pyramid(img: Tensor, levels: int) -> list[Tensor]:
    """Band-pass images of ``levels`` octaves, fine to coarse, followed by the low-pass residual."""
    kernel = _gauss_kernel(img.shape[1], img.device, img.dtype)
    bands = []
    cur = img
    for _ in range(levels):
        down = _blur(cur, kernel)[:, :, ::2, ::2]
        bands.append(cur - _upsample(down, kernel)[:, :, : cur.shape[2], : cur.shape[3]])
        cur = down
    bands.append(cur)
    return bands


class LaplacianLoss(nn.Module):
    """Sum over pyramid levels of the mean L1 difference: the band-pass levels, as the official LapLoss,
    plus the low-pass residual with ``lowpass`` (an extension: it also sees uniform offsets).

    The number of levels is capped so the coarsest band keeps at least 4x4 pixels; with no band-pass
    level left (crops under 8 pixels) the residual is compared whatever ``lowpass`` says.
    """

    def __init__(self, levels: int = 5, lowpass: bool = False) -> None:
        super().__init__()
        self.levels = levels
        self.lowpass = lowpass

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = pred.float(), target.float()
        size = min(pred.shape[2:])
        levels = max(0, min(self.levels, size.bit_length() - 2))
        pairs = list(zip(laplacian_pyramid(pred, levels), laplacian_pyramid(target, levels), strict=True))
        if not self.lowpass and levels > 0:
            pairs = pairs[:-1]
        return sum((F.l1_loss(a, b) for a, b in pairs), pred.new_zeros(()))


def blend(img0: Tensor, img1: Tensor, flow: Tensor, mask_logit: Tensor) -> Tensor:
    """Mask blend of both frames backward-warped by a 4-channel flow (F_t->0, F_t->1)."""
    m = torch.sigmoid(mask_logit.float())
    return backward_warp(img0, flow[:, :2]) * m + backward_warp(img1, flow[:, 2:4]) * (1 - m)


def photometric_error(img0: Tensor, img1: Tensor, gt: Tensor, flow: Tensor) -> Tensor:
    """(N, 2, H, W): per-pixel mean |warp(I0, F_t->0) - I_t| and |warp(I1, F_t->1) - I_t|."""
    e0 = (backward_warp(img0, flow[:, :2]) - gt).abs().mean(1, keepdim=True)
    e1 = (backward_warp(img1, flow[:, 2:4]) - gt).abs().mean(1, keepdim=True)
    return torch.cat((e0, e1), 1)


def better_mask(student_error: Tensor, teacher_error: Tensor, margin: float = 0.01) -> Tensor:
    """1 where the teacher is better than the student by more than ``margin`` (no gradient)."""
    return (student_error > teacher_error + margin).to(student_error.dtype).detach()


def distillation_loss(
    student_flows: Sequence[Tensor],
    teacher_flow: Tensor,
    masks: Sequence[Tensor | None] | None = None,
    norm: Literal["rms", "l1", "epe"] = "rms",
) -> Tensor:
    """Sum over IFBlocks of the mean flow distance to the (detached) teacher flow.

    Args:
        student_flows: per-block cumulative flows (N, 4, H, W): F_t->0 (0:2), F_t->1 (2:4).
        teacher_flow: (N, 4, H, W) in the same convention; gradients never reach it.
        masks: per block, None (all pixels) or (N, 1 or 2, H, W) weights; with 2 channels the first
            weighs F_t->0 and the second F_t->1.
        norm: per pixel, ``rms`` (the official code: sqrt of the mean square over the 4 channels; a
            2-channel mask weighs each flow's squares), ``l1`` (mean |difference| over the 4 channels) or
            ``epe`` (the mean of the two flows' end-point errors).
    """
    target = teacher_flow.detach().float()
    total = target.new_zeros(())
    for i, flow in enumerate(student_flows):
        diff = flow.float() - target
        mask = None if masks is None else masks[i]
        m = None if mask is None else mask.float()
        if norm == "epe":
            sq = diff * diff
            dist = torch.cat((sq[:, :2].sum(1, keepdim=True), sq[:, 2:].sum(1, keepdim=True)), 1).add(1e-6).sqrt()
        else:
            per_flow = (diff * diff if norm == "rms" else diff.abs()).reshape(diff.shape[0], 2, 2, *diff.shape[2:])
            per_flow = per_flow.sum(2)  # (N, 2, H, W): one sum per flow
            if m is not None and m.shape[1] == 2:
                per_flow, m = per_flow * m, None
            dist = per_flow.sum(1, keepdim=True) / 4  # mean over the 4 channels
            if norm == "rms":
                dist = (dist + 1e-12).sqrt()
        if m is not None:
            dist = dist * m
        total = total + dist.mean()
    return total


def psnr_batch(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-sample PSNR (dB) of images in [0, 1], shape (N,)."""
    mse = (pred.float().clamp(0, 1) - gt.float()).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))
