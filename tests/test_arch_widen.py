"""Inference layout (vsrife.arch.widen): inputs and hidden widths padded to multiples of 8, ResConv gains
folded into the convolutions; same outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from vsrife.arch import build_network
from vsrife.arch.ifnet import IFBlock, IFBlockV3
from vsrife.arch.layers import ResConv
from vsrife.arch.widen import fold_gains, inference_layout, widen_channels
from vsrife.engine import Interpolator
from vsrife.models import MODELS, load_model


def _widths(net: nn.Module) -> list[int]:
    """Input width of each block's first conv and output widths of every conv but the output layers."""
    widths = []
    for block in net.modules():
        if isinstance(block, IFBlock | IFBlockV3):
            outputs = (
                [block.conv1[2], block.conv2[2]] if isinstance(block, IFBlockV3) else list(block.lastconv.modules())
            )
            widths.append(block.conv0[0][0].in_channels)
            widths += [m.out_channels for m in block.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
                       and all(m is not o for o in outputs)]  # fmt: skip
    return widths


# 3.6 (90/45, inputs 11), paper (150/75, 90/45, inputs 6/17), 4.6 (aligned widths, inputs 7/12, gains),
# 4.25.lite (24/12, encoder features), 4.14.lite (grouped convolutions: widths left alone, gains folded)
@pytest.mark.parametrize(
    ("version", "blocks", "gains"),
    [("3.6", 4, 0), ("paper", 4, 0), ("4.6", 4, 32), ("4.25.lite", 5, 40), ("4.14.lite", 0, 32)],
)
def test_inference_layout_gives_the_same_frames(version: str, blocks: int, gains: int) -> None:
    torch.manual_seed(0)
    spec = MODELS[version].spec
    net = build_network(spec, teacher=spec.family in ("paper", "v3")).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)  # random, non-zero everywhere (PReLU slopes, betas)
    wide = copy.deepcopy(net)
    assert widen_channels(wide) == blocks  # the teacher block counts too
    assert fold_gains(wide) == gains and fold_gains(wide) == 0  # folding twice would square the gains
    if version != "4.14.lite":
        assert all(w % 8 == 0 for w in _widths(wide))
    assert any(w % 8 for w in _widths(net))
    assert all(u.gain_folded for u in wide.modules() if isinstance(u, ResConv))
    a = torch.rand(1, 3, 128, 192)
    b = torch.roll(a, 6, 3)
    with torch.no_grad():
        for t in (0.5, 0.3) if spec.timestep_input else (0.5,):
            for layout in (torch.contiguous_format, torch.channels_last):
                x0, x1 = a.contiguous(memory_format=layout), b.contiguous(memory_format=layout)
                ref = net.to(memory_format=layout)(x0, x1, t)  # the same layout: same summation order
                out = wide.to(memory_format=layout)(x0, x1, t)
                assert out.shape == ref.shape
                torch.testing.assert_close(out, ref, atol=2e-5, rtol=0)


def test_widened_official_weights_keep_the_checkpoint() -> None:
    """Real v3.6 weights: the widened copy holds the official tensors in its leading slices, zeros elsewhere."""
    loaded = load_model("3.6")
    wide = inference_layout(copy.deepcopy(loaded.network))
    official, widened = loaded.network.state_dict(), wide.state_dict()
    assert official.keys() == widened.keys()
    grown = 0
    for key, value in official.items():
        big = widened[key]
        part = big[tuple(slice(0, s) for s in value.shape)]
        assert torch.equal(part, value), key
        if big.shape != value.shape:
            grown += 1
            assert float(big.abs().sum()) == pytest.approx(float(value.abs().sum())), key  # the rest is zero
    assert grown > 0


def test_engine_widen_option() -> None:
    """Off in fp32 (the official computation); on request the engine gives the same frames."""
    a = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(1))
    b = torch.roll(a, 4, 2)
    plain = Interpolator("3.6", device="cpu", precision="fp32")
    wide = Interpolator("3.6", device="cpu", precision="fp32", inference_layout=True)
    assert not plain.inference_layout and wide.inference_layout
    assert plain.network is not wide.network  # shared networks are keyed by the option
    torch.testing.assert_close(wide.interpolate(a, b), plain.interpolate(a, b), atol=1e-5, rtol=0)


def _pads_inputs(net: torch.nn.Module) -> bool:
    from vsrife.arch.widen import _PadInputChannels

    return any(isinstance(h, _PadInputChannels) for m in net.modules() for h in m._forward_pre_hooks.values())


@pytest.mark.parametrize("version", ["3.6", "4.25.lite"])  # 90 / 45 and 24 / 12 hidden widths
def test_cpu_layout_keeps_block_inputs(version: str) -> None:
    """``inputs=False`` (what CPU engines use): hidden widths padded, block inputs as they are (no
    zero-channel concatenation before each block); the same frames."""
    torch.manual_seed(0)
    net = build_network(MODELS[version].spec).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    wide = copy.deepcopy(net)
    assert widen_channels(wide, inputs=False) > 0
    for plain, widened in zip(net.flownet.blocks(), wide.flownet.blocks(), strict=True):
        first, first_wide = plain.conv0[0][0], widened.conv0[0][0]
        assert first_wide.in_channels == first.in_channels and first_wide.out_channels % 8 == 0
    assert not _pads_inputs(wide) and _pads_inputs(inference_layout(copy.deepcopy(net)))
    a = torch.rand(1, 3, 128, 192)
    b = torch.roll(a, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(wide(a, b), net(a, b), atol=2e-5, rtol=0)


def test_cpu_engine_layout_keeps_block_inputs() -> None:
    engine = Interpolator("3.6", device="cpu", precision="bf16")
    assert engine.inference_layout and not _pads_inputs(engine.network)
