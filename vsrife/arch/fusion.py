"""ContextNet and FusionNet (U-Net) of the paper's RIFE and of the HD / HD v2 releases.

ContextNet extracts a four-level feature pyramid from one frame and backward-warps every level
with the intermediate flow resized to that level. The fusion U-Net sees both frames, the warped
frames, the flow (and mask), and concatenates the warped context features into its encoder
stages; it outputs a residual (and, in the HD layouts, the fusion mask).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.layers import Conv2, SEResBlock, conv_act, deconv_act
from vsrife.arch.warp import backward_warp

__all__ = ["ContextNet", "FusionNet"]

Kind = Literal["paper", "hd", "hdv2"]
_WIDTH = {"paper": 16, "hd": 32, "hdv2": 32}


def _down(kind: Kind, cin: int, cout: int) -> nn.Module:
    """Stride-2 unit: SE residual block (HD) or a conv pair (paper, HD v2)."""
    return SEResBlock(cin, cout, stride=2, batchnorm=False) if kind == "hd" else Conv2(cin, cout)


def _half_flow(flow: Tensor) -> Tensor:
    return F.interpolate(flow, scale_factor=0.5, mode="bilinear", align_corners=False) * 0.5


class ContextNet(nn.Module):
    """Four-level context pyramid, each level warped by the flow at that level's resolution."""

    def __init__(self, kind: Kind) -> None:
        super().__init__()
        c = _WIDTH[kind]
        self.kind = kind
        self.conv0: nn.Module
        if kind == "hd":
            self.conv0 = conv_act(3, c, 3, 2, 1)
        elif kind == "hdv2":
            self.conv0 = Conv2(3, c)
        first = 3 if kind == "paper" else c
        self.conv1 = _down(kind, first, c)
        self.conv2 = _down(kind, c, 2 * c)
        self.conv3 = _down(kind, 2 * c, 4 * c)
        self.conv4 = _down(kind, 4 * c, 8 * c)

    def forward(self, x: Tensor, flow: Tensor) -> list[Tensor]:
        """Features of frame ``x`` warped by ``flow`` (given at the flow net's output resolution)."""
        if self.kind != "paper":
            x = self.conv0(x)
        pyramid = []
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = conv(x)
            flow = _half_flow(flow)
            pyramid.append(backward_warp(x, flow))
        return pyramid


class FusionNet(nn.Module):
    """Fusion U-Net; the paper's version is called ``unet`` in its checkpoint."""

    def __init__(self, kind: Kind) -> None:
        super().__init__()
        c = _WIDTH[kind]
        self.kind = kind
        self.down0: nn.Module
        if kind == "paper":
            self.down0 = Conv2(17, 2 * c)
        else:
            self.conv0 = conv_act(8, c, 3, 2, 1) if kind == "hd" else Conv2(10, c)
            self.down0 = _down(kind, c, 2 * c)
        self.down1 = _down(kind, 4 * c, 4 * c)
        self.down2 = _down(kind, 8 * c, 8 * c)
        self.down3 = _down(kind, 16 * c, 16 * c)
        self.up0 = deconv_act(32 * c, 8 * c)
        self.up1 = deconv_act(16 * c, 4 * c)
        self.up2 = deconv_act(8 * c, 2 * c)
        self.up3 = deconv_act(4 * c, c)
        self.conv: nn.Module
        if kind == "paper":
            self.conv = nn.Conv2d(c, 3, 3, 1, 1)
        elif kind == "hd":
            self.conv = nn.Conv2d(c, 16, 3, 1, 1)
            self.up4 = nn.PixelShuffle(2)
        else:
            self.conv = nn.ConvTranspose2d(c, 4, 4, 2, 1)

    def _unet(self, s0: Tensor, c0: list[Tensor], c1: list[Tensor]) -> Tensor:
        s1 = self.down1(torch.cat((s0, c0[0], c1[0]), 1))
        s2 = self.down2(torch.cat((s1, c0[1], c1[1]), 1))
        s3 = self.down3(torch.cat((s2, c0[2], c1[2]), 1))
        x = self.up0(torch.cat((s3, c0[3], c1[3]), 1))
        x = self.up1(torch.cat((x, s2), 1))
        x = self.up2(torch.cat((x, s1), 1))
        return self.up3(torch.cat((x, s0), 1))

    def forward(self, *inputs: Tensor | list[Tensor]) -> Tensor:
        """Paper: (img0, img1, warped0, warped1, mask_logit, flow, c0, c1) -> sigmoid output (3 ch).

        HD / HD v2: (warped0, warped1, flow, c0, c1) -> raw output (residual logits 3 + mask logit 1).
        """
        if self.kind == "paper":
            img0, img1, w0, w1, mask, flow, c0, c1 = inputs
            s0 = self.down0(torch.cat((img0, img1, w0, w1, mask, flow), 1))  # type: ignore[arg-type]
            return torch.sigmoid(self.conv(self._unet(s0, c0, c1)))  # type: ignore[arg-type]
        w0, w1, flow, c0, c1 = inputs
        s0 = self.down0(self.conv0(torch.cat((w0, w1, flow), 1)))  # type: ignore[arg-type]
        x = self.conv(self._unet(s0, c0, c1))  # type: ignore[arg-type]
        return self.up4(x) if self.kind == "hd" else x
