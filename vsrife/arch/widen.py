"""Inference layout of IFBlocks: channel counts that tensor cores like, fewer memory-bound kernels.

fp16/bf16 tensor-core convolution kernels want channel counts that are multiples of 8; official widths
such as 90, 45, 150 or 75 are not, nor are the block inputs (11, 17... channels), so cuDNN falls back to
slower kernels for those layers (measured on an H100: v3.6 71.6 -> 91.8 interpolations/s at 1080p
with widened hidden layers). :func:`widen_channels` zero-pads them: added channels have zero weights,
zero bias and zero ``beta``, so they stay exactly zero through every layer (PReLU / LeakyReLU keep 0 at
0, residual sums add 0) and the outputs are the same network's up to summation order.
:func:`fold_gains` multiplies ResConv's ``beta`` into its convolution, which saves one full pass over
each activation. Applied to a loaded network's copy at inference time only (the checkpoint layout,
inputs and outputs are unchanged).
"""

from __future__ import annotations

import torch
from torch import nn

from vsrife.arch.ifnet import IFBlock, IFBlockV3
from vsrife.arch.layers import ResConv

__all__ = ["fold_gains", "inference_layout", "widen_channels"]


def _up(c: int, multiple: int) -> int:
    return (c + multiple - 1) // multiple * multiple


def _pad_to(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    out = t.new_zeros(shape)
    out[tuple(slice(0, s) for s in t.shape)] = t
    return out


def _conv(conv: nn.Conv2d | nn.ConvTranspose2d, cin: int, cout: int) -> None:
    """Widen ``conv`` in place to ``cin`` inputs and ``cout`` outputs (new entries zero)."""
    if conv.groups != 1:
        raise ValueError("grouped convolutions are not widened")
    w = conv.weight.data
    # Conv2d weight: (out, in, k, k); ConvTranspose2d: (in, out, k, k)
    shape = (cout, cin) if isinstance(conv, nn.Conv2d) else (cin, cout)
    conv.weight = nn.Parameter(_pad_to(w, (*shape, *w.shape[2:])), requires_grad=False)
    if conv.bias is not None:
        conv.bias = nn.Parameter(_pad_to(conv.bias.data, (cout,)), requires_grad=False)
    conv.in_channels, conv.out_channels = cin, cout


def _act(act: nn.Module, channels: int) -> None:
    if isinstance(act, nn.PReLU) and act.weight.numel() > 1:
        act.weight = nn.Parameter(_pad_to(act.weight.data, (channels,)), requires_grad=False)
        act.num_parameters = channels


def _conv_of(module: object) -> nn.Conv2d | nn.ConvTranspose2d:
    """``module`` as a convolution; a layout this module does not know is an error, not a silent skip."""
    if not isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        raise TypeError(f"expected a convolution in an IFBlock, got {type(module).__name__}")
    return module


def _seq(module: object) -> nn.Sequential:
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"expected nn.Sequential in an IFBlock, got {type(module).__name__}")
    return module


def _conv_act(seq: object, cin: int, cout: int) -> None:
    seq = _seq(seq)
    _conv(_conv_of(seq[0]), cin, cout)
    if len(seq) > 1:
        _act(seq[1], cout)


class _PadInputChannels:
    """Forward pre-hook: append zero channels to a conv's input up to the conv's (widened) width."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def __call__(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        x = args[0]
        missing = self.channels - x.shape[1]
        if missing <= 0:
            return None
        fmt = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) else None
        zeros = x.new_zeros((x.shape[0], missing, *x.shape[2:]))
        return (torch.cat((x, zeros if fmt is None else zeros.contiguous(memory_format=fmt)), 1), *args[1:])


def _widen_block(block: IFBlock | IFBlockV3, multiple: int, inputs: bool = True) -> bool:
    conv0 = _seq(block.conv0)
    first, second = _seq(conv0[0]), _seq(conv0[1])
    first_conv = _conv_of(first[0])
    cin, half, c = first_conv.in_channels, first_conv.out_channels, _conv_of(second[0]).out_channels
    cin2, h2, c2 = _up(cin, multiple) if inputs else cin, _up(half, multiple), _up(c, multiple)
    if (cin2, h2, c2) == (cin, half, c):
        return False
    _conv_act(first, cin2, h2)
    if cin2 != cin:
        first_conv.register_forward_pre_hook(_PadInputChannels(cin2))
    _conv_act(second, h2, c2)
    if isinstance(block, IFBlockV3):
        for i in range(4):
            pair = _seq(block.get_submodule(f"convblock{i}"))
            _conv_act(pair[0], c2, c2)
            _conv_act(pair[1], c2, c2)
        for head in (block.conv1, block.conv2):
            up, last = _conv_of(head[0]), _conv_of(head[2])
            mid = _up(up.out_channels, multiple)
            _conv(up, c2, mid)
            _act(head[1], mid)
            _conv(last, mid, last.out_channels)
        return True
    for unit in _seq(block.convblock):
        if isinstance(unit, ResConv):
            _conv(unit.conv, c2, c2)
            unit.beta = nn.Parameter(_pad_to(unit.beta.data, (1, c2, 1, 1)), requires_grad=False)
        else:
            _conv_act(unit, c2, c2)
    lastconv = block.lastconv
    last = _conv_of(lastconv[0] if isinstance(lastconv, nn.Sequential) else lastconv)
    _conv(last, c2, last.out_channels)
    return True


def widen_channels(net: nn.Module, multiple: int = 8, inputs: bool = True) -> int:
    """Pad the input and hidden widths of every IFBlock in ``net`` to a multiple of ``multiple``, in place.

    ``inputs=False`` keeps the block inputs as they are (the CPU: padding them costs a concatenation with
    zeros and a wider layout conversion at the block's input resolution, full resolution for the last
    block, and gained nothing; 4.25 1.09x, v3.6 1.03x faster without, same frames). Returns how many
    blocks changed. Blocks with grouped convolutions (4.14.lite) are left as they are. Only for
    inference: the widened parameters do not require gradients.
    """
    changed = 0
    for module in list(net.modules()):
        if isinstance(module, IFBlock | IFBlockV3):
            if any(isinstance(u, ResConv) and u.conv.groups != 1 for u in module.modules()):
                continue
            changed += _widen_block(module, multiple, inputs)
    return changed


def fold_gains(net: nn.Module) -> int:
    """Fold every ResConv's per-channel ``beta`` into its convolution's weights and bias, in place.

    Exact in real arithmetic (``(W x + b) * beta == (beta W) x + beta b``); in fp16 the rounding differs
    slightly. Returns how many ResConvs were folded.
    """
    folded = 0
    for unit in net.modules():
        if isinstance(unit, ResConv) and not unit.gain_folded:
            beta = unit.beta.data.reshape(-1)
            unit.conv.weight = nn.Parameter(unit.conv.weight.data * beta.reshape(-1, 1, 1, 1), requires_grad=False)
            if unit.conv.bias is not None:
                unit.conv.bias = nn.Parameter(unit.conv.bias.data * beta, requires_grad=False)
            unit.gain_folded = True
            folded += 1
    return folded


def inference_layout(net: nn.Module, multiple: int = 8, inputs: bool = True) -> nn.Module:
    """:func:`widen_channels` then :func:`fold_gains`; returns ``net`` (changed in place)."""
    widen_channels(net, multiple, inputs)
    fold_gains(net)
    return net
