"""IFNet: coarse-to-fine intermediate flow estimation (paper final, HD v3.x and Practical-RIFE 4.x).

Each IFBlock looks at the two frames (warped by the current flow estimate) at a reduced
resolution and predicts a residual update of the flows F_t->0, F_t->1 and of a fusion-mask logit.
The three families differ in block layout and in how the loop feeds the blocks; the
:class:`~vsrife.arch.spec.ArchSpec` says which variant to build.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.correlation import BilateralCorrelation
from vsrife.arch.fusion import ContextNet, FusionNet
from vsrife.arch.layers import ResConv, conv_act, cpu_glue
from vsrife.arch.spec import ArchSpec
from vsrife.arch.warp import backward_warp
from vsrife.arch.winograd import SubPixelHeads, run_body, run_pair, winograd_applies

__all__ = ["FlowEstimate", "Head", "IFBlock", "IFBlockV3", "IFNet", "make_encoder"]

_TEACHER_WIDTH = 90
_RESTART_PIXELS = 32.0


def _resize(x: Tensor, factor: float) -> Tensor:
    """Bilinear resize by ``factor`` exactly as the official code calls it (identity skipped)."""
    if factor == 1.0:
        return x
    return F.interpolate(cpu_glue(x), scale_factor=factor, mode="bilinear", align_corners=False)


def _fit(x: Tensor, size: torch.Size, is_flow: bool) -> Tensor:
    """Resize ``x`` to ``size``; flow vectors are scaled with the resolution change."""
    h, w = x.shape[2:]
    x = F.interpolate(cpu_glue(x), size=tuple(size), mode="bilinear", align_corners=False)
    if is_flow:
        # Python scalars, not a gain tensor: no host-to-device copy, so CUDA graphs can capture this.
        gx, gy = size[1] / w, size[0] / h
        x = torch.cat((x[:, 0:1] * gx, x[:, 1:2] * gy, x[:, 2:3] * gx, x[:, 3:4] * gy), 1)
    return x


def _swap(flow: Tensor) -> Tensor:
    """Exchange F_t->0 and F_t->1 (the view from the other frame)."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFBlock(nn.Module):
    """Flow/mask update block of the paper's final IFNet and of Practical-RIFE 4.x."""

    def __init__(self, cin: int, c: int, spec: ArchSpec) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv_act(cin, c // 2, 3, 2, 1, spec.act), conv_act(c // 2, c, 3, 2, 1, spec.act))
        if spec.body == "resconv":
            self.convblock = nn.Sequential(*(ResConv(c, spec.groups) for _ in range(8)))
        else:
            self.convblock = nn.Sequential(*(conv_act(c, c, act=spec.act) for _ in range(8)))
        self.residual = spec.body == "residual"
        self.lastconv: nn.Module
        if spec.head == "deconv":
            self.lastconv = nn.ConvTranspose2d(c, spec.head_channels, 4, 2, 1)
            self.upscale = 2.0
        else:
            self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * spec.head_channels, 4, 2, 1), nn.PixelShuffle(2))
            self.upscale = 1.0
        self.serial_body = False  # set by vsrife.arch.winograd.use_winograd

    def body(self, feat: Tensor) -> Tensor:
        """The 3x3 stack at the block's working resolution (most of the block's arithmetic)."""
        return self.convblock(feat) + feat if self.residual else self.convblock(feat)

    def forward(self, x: Tensor, flow: Tensor | None, scale: float) -> tuple[Tensor, Tensor, Tensor]:
        """Return (flow update, mask logit update, block features) at the input resolution."""
        size = x.shape[2:]
        x = _resize(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, _resize(flow, 1.0 / scale) / scale), 1)
        feat = self.conv0(x)
        feat = run_body(self.body, feat, self.serial_body)
        out = _resize(self.lastconv(feat), scale * self.upscale)
        flow = out[:, :4] * (scale * self.upscale)
        if out.shape[2:] != size:
            # Only when the frame is not a multiple of the block's total stride (the official code
            # fails there, e.g. 4.0's large-motion restart at doubled scales): resample to size.
            flow = _fit(flow, size, is_flow=True)
            out = _fit(out, size, is_flow=False)
        return flow, out[:, 4:5], out[:, 5:]


class IFBlockV3(nn.Module):
    """IFBlock of HD v3.x: four residual conv pairs and separate flow / mask heads."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv_act(cin, c // 2, 3, 2, 1), conv_act(c // 2, c, 3, 2, 1))
        for i in range(4):
            setattr(self, f"convblock{i}", nn.Sequential(conv_act(c, c), conv_act(c, c)))
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2), nn.ConvTranspose2d(c // 2, 4, 4, 2, 1)
        )
        self.conv2 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2), nn.ConvTranspose2d(c // 2, 1, 4, 2, 1)
        )
        self.serial_body = False  # set by vsrife.arch.winograd.use_winograd
        self.subpixel_heads: SubPixelHeads | None = None  # ditto: conv1 / conv2 as Winograd convolutions

    def body(self, feat: Tensor) -> Tensor:
        """Four residual conv pairs at the block's working resolution."""
        for i in range(4):
            feat = getattr(self, f"convblock{i}")(feat) + feat
        return feat

    def _body_and_first_stage(self, feat: Tensor) -> Tensor:
        assert self.subpixel_heads is not None
        return self.subpixel_heads.first(self.body(feat))

    def forward(self, x: Tensor, flow: Tensor | None, scale: float) -> tuple[Tensor, Tensor, Tensor]:
        assert flow is not None, "v3 blocks always take the current flow"
        x = torch.cat((_resize(x, 1.0 / scale), _resize(flow, 1.0 / scale) / scale), 1)
        feat = self.conv0(x)
        if self.subpixel_heads is not None and self.serial_body and winograd_applies(feat, feat):
            # the Winograd part serialised; PReLU and the second stage's GEMMs on every thread
            phases = run_body(self._body_and_first_stage, feat, True, restore_format=False)
            up_flow, up_mask = self.subpixel_heads.second(phases)
        else:
            feat = run_body(self.body, feat, self.serial_body)
            up_flow, up_mask = self.conv1(feat), self.conv2(feat)
        flow = _resize(up_flow, scale) * scale
        mask = _resize(up_mask, scale)
        return flow, mask, flow[:, :0]


class Head(nn.Module):
    """Per-frame feature encoder of Practical-RIFE 4.13+ (the official ``Head``)."""

    def __init__(self, width: int, channels: int) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, width, 3, 2, 1)
        self.cnn1 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn2 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(width, channels, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.cnn0(x.clamp(0.0, 1.0)))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


def make_encoder(spec: ArchSpec) -> nn.Module:
    """The 4.7+ per-frame encoder in the module layout of the spec's version."""
    w, out = spec.encoder_width, spec.encoder_channels
    if spec.encoder == "seq2":
        return nn.Sequential(nn.Conv2d(3, w, 3, 2, 1), nn.ConvTranspose2d(w, out, 4, 2, 1))
    if spec.encoder == "seq7":
        lrelu = nn.LeakyReLU(0.2, inplace=True)
        return nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1), lrelu, nn.Conv2d(w, w, 3, 1, 1), lrelu,
            nn.Conv2d(w, w, 3, 1, 1), lrelu, nn.ConvTranspose2d(w, out, 4, 2, 1),
        )  # fmt: skip
    return Head(w, out)


def _block_inputs(spec: ArchSpec) -> list[int]:
    """Input channels of each IFBlock (images, warped images, timestep, mask, features, flow)."""
    n = len(spec.widths)
    if spec.family == "paper":
        return [6] + [17] * (n - 1)
    if spec.family == "v3":
        return [11] * n
    enc = 2 * spec.encoder_channels
    first = 12 + enc if spec.corr_radius else 7 + enc  # with a cost volume the first block refines too
    return [first] + [12 + enc + spec.block_features] * (n - 1)


@dataclass
class FlowEstimate:
    """Result of the IFBlock cascade; lists hold one entry per block, coarse to fine."""

    flows: list[Tensor]
    mask_logits: list[Tensor]
    warped0: Tensor
    warped1: Tensor
    merged: list[Tensor] = field(default_factory=list)

    @property
    def flow(self) -> Tensor:
        return self.flows[-1]

    @property
    def mask(self) -> Tensor:
        return torch.sigmoid(self.mask_logits[-1])

    def blend(self) -> Tensor:
        """Mask-weighted blend of the two warped frames."""
        mask = self.mask
        return self.warped0 * mask + self.warped1 * (1 - mask)


class IFNet(nn.Module):
    """Intermediate flow network of the paper (final), HD v3.x and 4.x, parameterised by an ArchSpec."""

    def __init__(self, spec: ArchSpec, teacher: bool = False) -> None:
        super().__init__()
        if spec.family not in ("paper", "v3", "v4"):
            raise ValueError(f"IFNet does not build family {spec.family!r}")
        if spec.corr_radius and (spec.family != "v4" or spec.large_motion_restart):
            raise ValueError("corr_radius needs a 4.x network without large_motion_restart")
        self.spec = spec
        self.num_blocks = len(spec.widths)
        for i, (cin, c) in enumerate(zip(_block_inputs(spec), spec.widths, strict=True)):
            setattr(self, f"block{i}", self._make_block(cin, c))
        if teacher:
            cin = 20 if spec.family == "paper" else 14
            self.block_tea = self._make_block(cin, _TEACHER_WIDTH)
        if spec.encoder is not None:
            self.encode = make_encoder(spec)
        if spec.corr_radius:
            self.corr = BilateralCorrelation(spec.corr_radius)
        if spec.fusion == "paper":
            self.contextnet = ContextNet("paper")
            self.unet = FusionNet("paper")
        self.parallel_directions = False  # set by vsrife.arch.winograd.use_winograd (v3: run_pair)

    def _make_block(self, cin: int, c: int) -> nn.Module:
        return IFBlockV3(cin, c) if self.spec.family == "v3" else IFBlock(cin, c, self.spec)

    def blocks(self) -> list[nn.Module]:
        """The student IFBlocks, coarse to fine."""
        return [getattr(self, f"block{i}") for i in range(self.num_blocks)]

    def estimate(
        self,
        img0: Tensor,
        img1: Tensor,
        timestep: Tensor | None = None,
        scale: float = 1.0,
        ensemble: bool = False,
        feat0: Tensor | None = None,
        feat1: Tensor | None = None,
    ) -> FlowEstimate:
        """Run the IFBlock cascade on padded frames; ``timestep`` is (N, 1, 1, 1) for 4.x."""
        if self.spec.family == "v3":
            return self._estimate_v3(img0, img1, scale)
        if self.spec.family == "paper":
            return self._estimate_paper(img0, img1, scale)
        assert timestep is not None
        if self.spec.large_motion_restart and img0.shape[0] > 1:
            # The restart test looks at the whole batch in the official code; run per sample so the
            # result for one frame never depends on what else is in the batch.
            parts = [
                self._estimate_v4(img0[i : i + 1], img1[i : i + 1], timestep[i : i + 1], scale, ensemble, None, None)
                for i in range(img0.shape[0])
            ]
            return FlowEstimate(
                flows=[torch.cat(f) for f in zip(*(p.flows for p in parts), strict=True)],
                mask_logits=[torch.cat(m) for m in zip(*(p.mask_logits for p in parts), strict=True)],
                warped0=torch.cat([p.warped0 for p in parts]),
                warped1=torch.cat([p.warped1 for p in parts]),
            )
        return self._estimate_v4(img0, img1, timestep, scale, ensemble, feat0, feat1)

    def _estimate_v3(self, img0: Tensor, img1: Tensor, scale: float) -> FlowEstimate:
        n, _, h, w = img0.shape
        flow = img0.new_zeros((n, 4, h, w))
        mask = img0.new_zeros((n, 1, h, w))
        warped0, warped1 = img0, img1
        flows, masks = [], []
        for block, s in zip(self.blocks(), self.spec.scales, strict=True):
            # Both directions: frames swapped, flow halves swapped, mask negated.
            x0 = torch.cat((warped0, warped1, mask), 1)
            one = functools.partial(block, x0, flow, s / scale)
            other = functools.partial(block, torch.cat((warped1, warped0, -mask), 1), _swap(flow), s / scale)
            (f0, m0, _), (f1, m1, _) = run_pair(one, other, x0) if self.parallel_directions else (one(), other())
            flow = flow + (f0 + _swap(f1)) / 2
            mask = mask + (m0 - m1) / 2
            flows.append(flow)
            masks.append(mask)
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        return FlowEstimate(flows, masks, warped0, warped1)

    def _estimate_paper(self, img0: Tensor, img1: Tensor, scale: float) -> FlowEstimate:
        flows, masks = [], []
        flow: Tensor | None = None
        mask = img0[:, :0]
        warped0, warped1 = img0, img1
        for block, s in zip(self.blocks(), self.spec.scales, strict=True):
            if flow is None:
                flow, mask, _ = block(torch.cat((img0, img1), 1), None, s / scale)
            else:
                fd, md, _ = block(torch.cat((img0, img1, warped0, warped1, mask), 1), flow, s / scale)
                flow, mask = flow + fd, mask + md
            flows.append(flow)
            masks.append(mask)
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        return FlowEstimate(flows, masks, warped0, warped1)

    def _estimate_v4(
        self,
        img0: Tensor,
        img1: Tensor,
        timestep: Tensor,
        scale: float,
        ensemble: bool,
        feat0: Tensor | None,
        feat1: Tensor | None,
    ) -> FlowEstimate:
        spec = self.spec
        img0, img1 = img0.clamp(0.0, 1.0), img1.clamp(0.0, 1.0)
        if spec.encoder is not None:
            feat0 = self.encode(img0) if feat0 is None else feat0
            feat1 = self.encode(img1) if feat1 is None else feat1
            f0, f1 = [feat0], [feat1]
        else:
            f0 = f1 = []
        t = timestep.to(img0.dtype).expand(img0.shape[0], 1, img0.shape[2], img0.shape[3])
        scales = [s / scale for s in spec.scales]
        blocks = self.blocks()
        flows, masks = [], []
        bfeat: Tensor | None = None
        if spec.corr_radius:
            # Cost-volume start: its flow is the first entry (distillation supervises it too).
            # The mask starts as the t-weighted blend: sigmoid(logit) = 1 - t.
            flow, start = self.corr(img0, img1, timestep, scale), 0
            tc = t.float().clamp(1e-3, 1 - 1e-3)
            mask = torch.log((1 - tc) / tc).to(img0.dtype)
        else:
            flow, mask, bfeat = self._first_block(blocks[0], img0, img1, f0, f1, t, scales[0], ensemble)
            start = 1
        warped0 = backward_warp(img0, flow[:, :2])
        warped1 = backward_warp(img1, flow[:, 2:4])
        flows.append(flow)
        masks.append(mask)
        for i in range(start, len(blocks)):
            wf0 = [backward_warp(f0[0], flow[:, :2])] if f0 else []
            wf1 = [backward_warp(f1[0], flow[:, 2:4])] if f1 else []
            bf = [bfeat] if spec.block_features and bfeat is not None else []
            x = torch.cat((warped0, warped1, *wf0, *wf1, t, mask, *bf), 1)
            fd, md, nfeat = blocks[i](x, flow, scales[i])
            if i == 1 and spec.large_motion_restart and self._needs_restart(fd):
                scales = [s * 2 for s in scales]
                flow, mask, bfeat = self._first_block(blocks[0], img0, img1, f0, f1, t, scales[0], False)
                warped0 = backward_warp(img0, flow[:, :2])
                warped1 = backward_warp(img1, flow[:, 2:4])
                x = torch.cat((warped0, warped1, t, mask), 1)
                fd, md, nfeat = blocks[i](x, flow, scales[i])
            if ensemble:
                xr = torch.cat((warped1, warped0, *wf1, *wf0, 1 - t, -mask, *bf), 1)
                fr, mr, _ = blocks[i](xr, _swap(flow), scales[i])
                fd = (fd + _swap(fr)) / 2
                md = (md - mr) / 2
            mask = mask + md if spec.mask_update == "accumulate" else md
            flow = flow + fd
            bfeat = nfeat
            flows.append(flow)
            masks.append(mask)
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        return FlowEstimate(flows, masks, warped0, warped1)

    @staticmethod
    def _needs_restart(fd: Tensor) -> bool:
        return bool(fd[:, :2].abs().max() > _RESTART_PIXELS and fd[:, 2:4].abs().max() > _RESTART_PIXELS)

    @staticmethod
    def _first_block(
        block: nn.Module,
        img0: Tensor,
        img1: Tensor,
        f0: list[Tensor],
        f1: list[Tensor],
        t: Tensor,
        scale: float,
        ensemble: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        flow, mask, bfeat = block(torch.cat((img0, img1, *f0, *f1, t), 1), None, scale)
        if ensemble:
            fr, mr, _ = block(torch.cat((img1, img0, *f1, *f0, 1 - t), 1), None, scale)
            flow = (flow + _swap(fr)) / 2
            mask = (mask - mr) / 2
        return flow, mask, bfeat

    def teacher(self, img0: Tensor, img1: Tensor, gt: Tensor, est: FlowEstimate) -> tuple[Tensor, Tensor]:
        """Privileged teacher (sees the true middle frame ``gt``): refined (flow, mask logit)."""
        if not hasattr(self, "block_tea"):
            raise RuntimeError("this IFNet was built without the teacher block (teacher=True)")
        flow, mask = est.flow, est.mask_logits[-1]
        if self.spec.family == "paper":
            x = torch.cat((img0, img1, est.warped0, est.warped1, mask, gt), 1)
        else:
            x = torch.cat((est.warped0, est.warped1, mask, gt), 1)
        fd, md, _ = self.block_tea(x, flow, 1.0)
        return flow + fd, mask + md

    def synthesize(self, img0: Tensor, img1: Tensor, est: FlowEstimate) -> Tensor:
        """Final frame: mask blend, plus the ContextNet/U-Net residual for the paper's model."""
        merged = est.blend()
        if self.spec.fusion != "paper":
            return merged
        flow = est.flow
        c0 = self.contextnet(img0, flow[:, :2])
        c1 = self.contextnet(img1, flow[:, 2:4])
        res = self.unet(img0, img1, est.warped0, est.warped1, est.mask_logits[-1], flow, c0, c1)[:, :3] * 2 - 1
        return torch.clamp(merged + res, 0, 1)
