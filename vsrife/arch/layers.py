"""Small building blocks shared by the RIFE networks.

Module attribute names and ``nn.Sequential`` nesting follow the official releases on purpose:
they decide the checkpoint key names (``conv0.0.0.weight`` ...), so official files load strictly.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "Activation",
    "Conv2",
    "ResConv",
    "SEResBlock",
    "conv_act",
    "conv_bn_act",
    "cpu_glue",
    "deconv_act",
    "make_activation",
]

Activation = Literal["prelu", "leaky"]


def cpu_glue(x: Tensor) -> Tensor:
    """``x`` as PyTorch's CPU bilinear resize runs best: NCHW and fp32 (unchanged off the CPU).

    The CPU kernel is about 2x slower on channels_last maps of a few channels (flows, masks, images)
    than on NCHW ones, and about 2x slower in bf16 than in fp32; a channels_last bf16 network's
    convolutions produce such maps and convert their own inputs back. fp32 also keeps bf16 heads'
    flows from being resized and scaled at bf16's 8-bit precision (4.6's bf16 frames 2-5x closer to fp32's).
    The NCHW kernel is the one the official layout runs: in fp32 the same values up to the last bit.
    """
    if x.device.type != "cpu":
        return x
    return x.float().contiguous() if x.dtype == torch.bfloat16 else x.contiguous()


def make_activation(kind: Activation, channels: int) -> nn.Module:
    """PReLU (per channel, learned) or LeakyReLU(0.2), the two activations used across RIFE versions."""
    if kind == "prelu":
        return nn.PReLU(channels)
    return nn.LeakyReLU(0.2, inplace=True)


def conv_act(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1, act: Activation = "prelu"
) -> nn.Sequential:
    """Conv2d (with bias) followed by an activation: keys ``0.weight``, ``0.bias`` [, ``1.weight``]."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, bias=True), make_activation(act, cout))


def conv_bn_act(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1, act: bool = True
) -> nn.Sequential:
    """Bias-free Conv2d + BatchNorm [+ PReLU], the unit of the HD (v1) flow network."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


def deconv_act(cin: int, cout: int) -> nn.Sequential:
    """ConvTranspose2d(4, 2, 1) doubling the resolution, then PReLU."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=True), nn.PReLU(cout))


class Conv2(nn.Module):
    """Two 3x3 conv+PReLU layers, the first one strided (the fusion U-Nets' and ContextNets' unit)."""

    def __init__(self, cin: int, cout: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv_act(cin, cout, 3, stride, 1)
        self.conv2 = conv_act(cout, cout, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


class ResConv(nn.Module):
    """Residual 3x3 conv with a learned per-channel gain ``beta`` (Practical-RIFE 4.5+)."""

    def __init__(self, channels: int, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1, groups=groups)
        self.beta = nn.Parameter(torch.ones((1, channels, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, inplace=True)
        self.gain_folded = False  # set by vsrife.arch.widen.fold_gains: beta already in conv's weights

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return self.relu((y if self.gain_folded else y * self.beta) + x)


class SEResBlock(nn.Module):
    """Residual block with squeeze-and-excitation gating (RIFE HD, v1).

    ``batchnorm=True`` is the flow network's variant (5x5 first conv, BatchNorm, stride 1 default);
    ``False`` is the ContextNet/FusionNet variant (3x3 convs with bias, no BatchNorm).
    """

    def __init__(self, cin: int, cout: int, stride: int, batchnorm: bool) -> None:
        super().__init__()
        self.conv0: nn.Module
        if cin == cout and stride == 1:
            self.conv0 = nn.Identity()
        else:
            self.conv0 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        if batchnorm:
            self.conv1 = conv_bn_act(cin, cout, 5, stride, 2)
            self.conv2 = conv_bn_act(cout, cout, 3, 1, 1, act=False)
        else:
            self.conv1 = conv_act(cin, cout, 3, stride, 1)
            self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=True))
        self.relu1 = nn.PReLU(1)
        self.relu2 = nn.PReLU(cout)
        self.fc1 = nn.Conv2d(cout, 16, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(16, cout, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.conv0(x)
        x = self.conv2(self.conv1(x))
        w = x.mean(3, True).mean(2, True)
        w = torch.sigmoid(self.fc2(self.relu1(self.fc1(w))))
        return self.relu2(x * w + skip)
