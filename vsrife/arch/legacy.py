"""Flow networks of the RIFE HD (v1.x) and HD v2 (v2.x) releases.

Both run on half-resolution frames and predict the flow without a mask: HD predicts one
symmetric flow (F_t->0 = -F_t->1), HD v2 two flows. Synthesis is left to the fusion net.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.layers import SEResBlock, conv_act, conv_bn_act, cpu_glue
from vsrife.arch.spec import ArchSpec
from vsrife.arch.warp import backward_warp

__all__ = ["IFNetHD", "IFNetHDv2"]


def _resize(x: Tensor, factor: float) -> Tensor:
    return F.interpolate(cpu_glue(x), scale_factor=factor, mode="bilinear", align_corners=False)


class IFBlockHD(nn.Module):
    """HD block: BatchNorm conv, six SE residual blocks, PixelShuffle to a 2-channel flow."""

    def __init__(self, cin: int, scale: float, c: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv0 = conv_bn_act(cin, c, 5, 2, 2)
        for i in range(6):
            setattr(self, f"res{i}", SEResBlock(c, c, stride=1, batchnorm=True))
        self.conv1 = nn.Conv2d(c, 8, 3, 1, 1)
        self.up = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        if self.scale != 1:
            x = _resize(x, 1.0 / self.scale)
        x = self.conv0(x)
        for i in range(6):
            x = getattr(self, f"res{i}")(x)
        flow = self.up(self.conv1(x))
        return _resize(flow, self.scale) if self.scale != 1 else flow


class IFBlockHDv2(nn.Module):
    """HD v2 block: two strided convs to 2c channels, six plain convs, ConvTranspose to 4 channels."""

    def __init__(self, cin: int, scale: float, c: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv0 = nn.Sequential(conv_act(cin, c, 3, 2, 1), conv_act(c, 2 * c, 3, 2, 1))
        self.convblock = nn.Sequential(*(conv_act(2 * c, 2 * c) for _ in range(6)))
        self.conv1 = nn.ConvTranspose2d(2 * c, 4, 4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.scale != 1:
            x = _resize(x, 1.0 / self.scale)
        flow = self.conv1(self.convblock(self.conv0(x)))
        return _resize(flow, self.scale) if self.scale != 1 else flow


class IFNetHD(nn.Module):
    """HD flow net: four blocks on the half-resolution pair; returns a 2-channel flow at half size."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        for i, (c, s) in enumerate(zip(spec.widths, spec.scales, strict=True)):
            setattr(self, f"block{i}", IFBlockHD(6 if i == 0 else 8, s, c))
        self.num_blocks = len(spec.widths)

    def forward(self, img0: Tensor, img1: Tensor, scale: float = 1.0) -> list[Tensor]:
        """Cumulative flows after each block; the last one is resized back by 1/scale."""
        x = _resize(torch.cat((img0, img1), 1), 0.5 * scale)
        flow = self.get_submodule("block0")(x)
        flows = [flow]
        for i in range(1, self.num_blocks):
            w0 = backward_warp(x[:, :3], flow)
            w1 = backward_warp(x[:, 3:], -flow)
            flow = flow + self.get_submodule(f"block{i}")(torch.cat((w0, w1, flow), 1))
            flows.append(flow)
        flows[-1] = _resize(flows[-1], 1.0 / scale) / scale
        return flows


class IFNetHDv2(nn.Module):
    """HD v2 flow net: four blocks, flows doubled in size between blocks; 4-channel flow at half size."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        for i, (c, s) in enumerate(zip(spec.widths, spec.scales, strict=True)):
            setattr(self, f"block{i}", IFBlockHDv2(6 if i == 0 else 10, s, c))
        self.num_blocks = len(spec.widths)

    def forward(self, img0: Tensor, img1: Tensor, scale: float = 1.0) -> list[Tensor]:
        """Cumulative flows after each block; the last one is resized back by 1/scale."""
        x = torch.cat((img0, img1), 1)
        if scale != 1.0:
            x = _resize(x, scale)
        flow = self.get_submodule("block0")(x)
        flows = [flow]
        for i in range(1, self.num_blocks):
            large = _resize(flow, 2.0) * 2.0
            w0 = backward_warp(x[:, :3], large[:, :2])
            w1 = backward_warp(x[:, 3:], large[:, 2:4])
            flow = flow + self.get_submodule(f"block{i}")(torch.cat((w0, w1, large), 1))
            flows.append(flow)
        if scale != 1.0:
            flows[-1] = _resize(flows[-1], 1.0 / scale) / scale
        return flows
