"""Bilateral cost volume: an initial intermediate flow from explicit matching (our extension).

No official RIFE release has this; it is an option (``ArchSpec.corr_radius``) for networks trained
from scratch with little compute. IFBlocks must *learn* to match from the pixels they see, which a
small network on a CPU budget does not manage on real footage (its flows collapse to zero). Here
matching is explicit: for every candidate motion ``d`` (from I0 to I1, on a 1/8 grid) the features of
I0 at ``x - t d`` are compared with those of I1 at ``x + (1 - t) d`` -- the bilateral view from the
intermediate frame, so the result is already F_t->0 = -t d and F_t->1 = (1 - t) d -- and a soft argmin
over the box-filtered costs gives ``d``. The IFBlocks then refine it like any later block.
Features: the area-averaged frame (matching works from step 0) beside a small learned encoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.warp import backward_warp

__all__ = ["BilateralCorrelation"]

STRIDE = 8


class BilateralCorrelation(nn.Module):
    """Initial (F_t->0, F_t->1) from a soft argmin over a bilateral cost volume at 1/8 resolution.

    Args:
        radius: search radius in 1/8-resolution pixels (motion up to ``8 * radius`` px between the frames).
        channels: learned feature channels (the area-averaged RGB frame is always used too).
        window: side of the box filter that aggregates per-pixel costs (odd).
    """

    def __init__(self, radius: int, channels: int = 16, window: int = 5) -> None:
        super().__init__()
        if radius < 1:
            raise ValueError(f"radius must be >= 1, got {radius}")
        self.radius, self.window = radius, window
        lrelu = nn.LeakyReLU(0.2, inplace=True)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), lrelu, nn.Conv2d(16, 24, 3, 2, 1), lrelu, nn.Conv2d(24, channels, 3, 2, 1)
        )
        # Soft-argmin temperature (log); learned, starts sharp enough to pick a clear minimum.
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.003)))
        span = range(-radius, radius + 1)
        self._offsets = [(float(dx), float(dy)) for dy in span for dx in span]  # row-major, dx fastest

    def _displacements(self, device: torch.device) -> Tensor:
        """(D, 2) candidate motions in the order of ``_offsets``, made on ``device`` (no host copy)."""
        r = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32, device=device)
        n = 2 * self.radius + 1
        return torch.stack((r.repeat(n), r.repeat_interleave(n)), 1)

    def features(self, img: Tensor, scale: float) -> Tensor:
        """Matching features at 1/8 of the (``scale``-resized) frame: mean RGB and learned channels."""
        if scale != 1.0:
            img = F.interpolate(img, scale_factor=scale, mode="bilinear", align_corners=False)
        h, w = -(-img.shape[2] // STRIDE), -(-img.shape[3] // STRIDE)
        mean = F.adaptive_avg_pool2d(img, (h, w))
        learned = self.encoder(img)
        if learned.shape[2:] != mean.shape[2:]:
            learned = F.interpolate(learned, size=(h, w), mode="bilinear", align_corners=False)
        return torch.cat((mean, learned), 1)

    def forward(self, img0: Tensor, img1: Tensor, timestep: Tensor, scale: float = 1.0) -> Tensor:
        """(F_t->0, F_t->1) of shape (N, 4, H, W) in pixels; ``timestep`` is (N, 1, 1, 1)."""
        n, _, height, width = img0.shape
        f0, f1 = self.features(img0, scale), self.features(img1, scale)
        h, w = f0.shape[2:]
        t = timestep.float().reshape(-1, 1, 1, 1).expand(n, 1, h, w)
        s = 1 - t
        costs = []
        for dx, dy in self._offsets:  # I0 at x - t d, I1 at x + (1 - t) d
            a = backward_warp(f0, torch.cat((t * -dx, t * -dy), 1))
            b = backward_warp(f1, torch.cat((s * dx, s * dy), 1))
            costs.append((a - b).abs().mean(1, keepdim=True))
        cost = torch.cat(costs, 1).float()  # softmax and the weighted sum in fp32, whatever the precision
        cost = F.avg_pool2d(cost, self.window, 1, self.window // 2, count_include_pad=False)
        weights = torch.softmax(-cost / self.log_temperature.float().exp(), 1)
        disp = torch.einsum("ndhw,dc->nchw", weights, self._displacements(weights.device))
        gain_x, gain_y = width / w, height / h  # 1/8-grid pixels -> full-frame pixels
        disp = F.interpolate(disp, size=(height, width), mode="bilinear", align_corners=False)
        disp = torch.cat((disp[:, 0:1] * gain_x, disp[:, 1:2] * gain_y), 1)
        tt = timestep.float().reshape(-1, 1, 1, 1)
        return torch.cat((-tt * disp, (1 - tt) * disp), 1).to(img0.dtype)
