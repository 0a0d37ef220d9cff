"""RIFENet: one module with one call signature for every RIFE family.

``RIFENet.flownet`` holds exactly what the official ``flownet.pkl`` holds (for the paper's
final release that includes its ContextNet and U-Net); HD and HD v2 add ``contextnet`` and
``fusionnet`` for their ``contextnet.pkl`` and ``unet.pkl``. Inputs are padded RGB frames in
[0, 1] (padding is the engine's job), so the network itself never changes sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.fusion import ContextNet, FusionNet
from vsrife.arch.ifnet import FlowEstimate, IFNet
from vsrife.arch.legacy import IFNetHD, IFNetHDv2
from vsrife.arch.spec import ArchSpec
from vsrife.arch.warp import backward_warp

__all__ = ["RIFENet", "build_network"]


class RIFENet(nn.Module):
    """Frame interpolation network for any :class:`ArchSpec`; see :meth:`forward`."""

    def __init__(self, spec: ArchSpec, teacher: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.flownet: IFNet | IFNetHD | IFNetHDv2
        if spec.family in ("hd", "hdv2"):
            self.flownet = IFNetHD(spec) if spec.family == "hd" else IFNetHDv2(spec)
            self.contextnet = ContextNet(spec.family)
            self.fusionnet = FusionNet(spec.family)
        else:
            self.flownet = IFNet(spec, teacher=teacher)

    @property
    def has_encoder(self) -> bool:
        """Whether per-frame features (4.7+) can be computed once per source frame and reused."""
        return self.spec.encoder is not None

    def encode(self, img: Tensor) -> Tensor:
        """Per-frame encoder features of a padded frame (4.7+ only)."""
        if not self.has_encoder:
            raise ValueError("this model has no per-frame encoder")
        return self.ifnet.encode(img)

    def forward(
        self,
        img0: Tensor,
        img1: Tensor,
        timestep: Tensor | float = 0.5,
        scale: float = 1.0,
        ensemble: bool = False,
        feat0: Tensor | None = None,
        feat1: Tensor | None = None,
    ) -> Tensor:
        """Interpolate between padded frames ``img0``/``img1`` (N, 3, H, W).

        ``timestep`` (float or (N,) / (N, 1, 1, 1) tensor) is used by 4.x models only; the other
        families always produce t = 0.5. ``feat0``/``feat1`` are cached :meth:`encode` outputs.
        """
        spec = self.spec
        if ensemble and spec.ensemble == "none":
            raise ValueError("ensemble is not supported by this model (Practical-RIFE 4.21 and later)")
        if spec.family == "v4":
            t = torch.as_tensor(timestep, dtype=img0.dtype, device=img0.device)
            t = t.reshape(-1, 1, 1, 1).expand(img0.shape[0], 1, 1, 1)
            est = self.ifnet.estimate(img0, img1, t, scale, ensemble, feat0, feat1)
            return est.blend()
        fixed = float(timestep)
        if ensemble:
            # Test-time augmentation of the official code: average with the result on flipped frames.
            flipped = self._fixed_t(img0.flip(2, 3), img1.flip(2, 3), scale, fixed).flip(2, 3)
            return (self._fixed_t(img0, img1, scale, fixed) + flipped) / 2
        return self._fixed_t(img0, img1, scale, fixed)

    @property
    def ifnet(self) -> IFNet:
        """The flow net of the families built on :class:`IFNet` (paper's final release, v3, v4)."""
        if not isinstance(self.flownet, IFNet):
            raise TypeError(f"family {self.spec.family!r} has no IFNet")
        return self.flownet

    def _fixed_t(self, img0: Tensor, img1: Tensor, scale: float, t: float = 0.5) -> Tensor:
        """Synthesis for the families without a timestep input.

        At t = 0.5 this is exactly the official computation. Other t rescale the t = 0.5 flows
        linearly (F_t->0 = 2t F_0.5->0, F_t->1 = 2(1-t) F_0.5->1) and shift the mask logit by
        log((1-t)/t) so the nearer frame weighs more; see ``timestep_mode="linear"`` in the engine.
        """
        spec = self.spec
        g0, g1 = 2.0 * t, 2.0 * (1.0 - t)
        bias = 0.0 if t == 0.5 else math.log((1.0 - t) / t)
        if spec.family in ("paper", "v3"):
            est: FlowEstimate = self.ifnet.estimate(img0, img1, scale=scale)
            if t != 0.5:
                flow = torch.cat((est.flow[:, :2] * g0, est.flow[:, 2:4] * g1), 1)
                est = FlowEstimate(
                    [*est.flows[:-1], flow],
                    [*est.mask_logits[:-1], est.mask_logits[-1] + bias],
                    backward_warp(img0, flow[:, :2]),
                    backward_warp(img1, flow[:, 2:4]),
                )
            return self.ifnet.synthesize(img0, img1, est)
        flow = self.flownet(img0, img1, scale)[-1]
        if spec.family == "hd":
            flow0, flow1 = flow * g0, -flow * g1
        else:
            flow0, flow1 = flow[:, :2] * g0, flow[:, 2:4] * g1
        c0 = self.contextnet(img0, flow0)
        c1 = self.contextnet(img1, flow1)
        flow0 = F.interpolate(flow0, scale_factor=2.0, mode="bilinear", align_corners=False) * 2.0
        flow1 = F.interpolate(flow1, scale_factor=2.0, mode="bilinear", align_corners=False) * 2.0
        w0, w1 = backward_warp(img0, flow0), backward_warp(img1, flow1)
        out = self.fusionnet(w0, w1, flow0 if spec.family == "hd" else torch.cat((flow0, flow1), 1), c0, c1)
        res = torch.sigmoid(out[:, :3]) * 2 - 1
        mask = torch.sigmoid(out[:, 3:4] + bias)
        return torch.clamp(w0 * mask + w1 * (1 - mask) + res, 0, 1)


def build_network(spec: ArchSpec, teacher: bool = False) -> RIFENet:
    """Build an (untrained) network for ``spec``; ``teacher`` adds the privileged ``block_tea``."""
    if teacher and spec.family not in ("paper", "v3"):
        raise ValueError(f"family {spec.family!r} has no official teacher block layout")
    return RIFENet(spec, teacher=teacher)
