"""Architecture hyperparameters: one frozen dataclass describes every official RIFE network.

The version table that fills these in lives in :mod:`vsrife.models.registry`; this module only
says what the knobs mean, so that :func:`vsrife.arch.build_network` can build any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal, get_args

__all__ = ["ArchSpec", "Body", "EncoderKind", "Family", "FusionKind", "HeadKind"]

Family = Literal["paper", "hd", "hdv2", "v3", "v4"]
Body = Literal["residual", "plain", "resconv", "v3", "hd", "hdv2"]
HeadKind = Literal["deconv", "shuffle", "v3", "hd", "hdv2"]
EncoderKind = Literal["seq2", "seq7", "head"]
FusionKind = Literal["paper", "hd", "hdv2"]


@dataclass(frozen=True)
class ArchSpec:
    """Everything that distinguishes one official RIFE network from another.

    Attributes:
        family: ``paper`` (ECCV 2022 final: IFNet + ContextNet + U-Net), ``hd``/``hdv2`` (v1.x/v2.x,
            three checkpoint files), ``v3`` (HD v3.x, bidirectional IFBlocks, mask blend), ``v4``
            (Practical-RIFE 4.x, timestep input).
        widths: channel width ``c`` of each IFBlock, coarse to fine.
        scales: downscale factor of each IFBlock at ``scale=1`` (divided by the user's scale).
        act: activation inside the IFBlocks.
        body: IFBlock body: ``residual`` (8 convs, one skip), ``plain`` (8 convs, no skip),
            ``resconv`` (8 ResConv with beta), ``v3`` (4 residual pairs), ``hd``/``hdv2`` legacy.
        head: IFBlock output layer: ``deconv`` (ConvTranspose to 5, x2 resize), ``shuffle``
            (ConvTranspose to 4*head_channels + PixelShuffle), ``v3`` (separate flow/mask heads).
        head_channels: channels the head produces (flow 4 + mask 1 [+ block features]).
        groups: grouped convolution inside ResConv (4.14.lite uses 2).
        encoder: per-frame feature encoder of 4.7+ (``None`` before).
        encoder_width / encoder_channels: hidden width and output channels of that encoder.
        block_features: channels a block hands to the next one (8 for 4.21+).
        mask_update: ``accumulate`` residual mask logits (<= 4.6) or ``replace`` them (4.7+).
        large_motion_restart: 4.0/4.1 restart at doubled scales when the second block sees >32 px.
        ensemble: ``native`` (4.x bidirectional pass), ``flip`` (test-time flip average), ``none``.
        teacher: the official checkpoint also holds the privileged teacher ``block_tea``.
        fusion: ContextNet + fusion U-Net variant (``None``: mask blend only).
        modulus: frames are padded to a multiple of this (times 1/scale when scale < 1).
        corr_radius: 4.x only, our extension: > 0 starts the cascade from a bilateral cost volume
            (:class:`~vsrife.arch.correlation.BilateralCorrelation`, search radius in 1/8 pixels);
            every IFBlock then refines. 0 (all official versions): the first block starts from scratch.
    """

    family: Family
    widths: tuple[int, ...]
    scales: tuple[float, ...]
    act: Literal["prelu", "leaky"] = "leaky"
    body: Body = "resconv"
    head: HeadKind = "shuffle"
    head_channels: int = 6
    groups: int = 1
    encoder: EncoderKind | None = None
    encoder_width: int = 0
    encoder_channels: int = 0
    block_features: int = 0
    mask_update: Literal["accumulate", "replace"] = "accumulate"
    large_motion_restart: bool = False
    ensemble: Literal["native", "flip", "none"] = "native"
    teacher: bool = False
    fusion: FusionKind | None = None
    modulus: int = 32
    corr_radius: int = 0

    def __post_init__(self) -> None:
        """Reject impossible specs (e.g. from a checkpoint's metadata) here, not as a crash at the first frame."""
        kinds = {
            "family": Family, "body": Body, "head": HeadKind, "encoder": EncoderKind | None,
            "fusion": FusionKind | None, "act": Literal["prelu", "leaky"],
            "mask_update": Literal["accumulate", "replace"], "ensemble": Literal["native", "flip", "none"],
        }  # fmt: skip
        for name, kind in kinds.items():
            allowed = _literals(kind)
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name, low in (("head_channels", 5), ("groups", 1), ("modulus", 1)):
            _check_int(name, getattr(self, name), low)
        for name in ("encoder_width", "encoder_channels", "block_features", "corr_radius"):
            _check_int(name, getattr(self, name), 0)
        if not isinstance(self.widths, tuple) or not self.widths:
            raise ValueError(f"widths must be a non-empty tuple of channel counts, got {self.widths!r}")
        # IFBlocks (paper, v3, v4) start with a convolution of width // 2 channels: width 1 would have none
        narrowest = 2 if self.family in ("paper", "v3", "v4") else 1
        for w in self.widths:
            _check_int("widths", w, narrowest)
            if self.body == "resconv" and w % self.groups:
                raise ValueError(f"widths must be multiples of groups ({self.groups}), got {self.widths!r}")
        if not isinstance(self.scales, tuple) or len(self.scales) != len(self.widths):
            raise ValueError(f"scales must give one factor per width ({len(self.widths)}), got {self.scales!r}")
        for s in self.scales:
            if isinstance(s, bool) or not isinstance(s, int | float) or not (math.isfinite(s) and s > 0):
                raise ValueError(f"scales must be positive finite numbers, got {self.scales!r}")
        for f in fields(self):
            if f.type == "bool" and not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"{f.name} must be True or False, got {getattr(self, f.name)!r}")

    @property
    def timestep_input(self) -> bool:
        """Whether the network takes the timestep t as an input plane (4.x only)."""
        return self.family == "v4"

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """Official checkpoint files as (file name, key prefix inside :class:`RIFENet`)."""
        if self.fusion in ("hd", "hdv2"):
            return (("flownet.pkl", "flownet."), ("contextnet.pkl", "contextnet."), ("unet.pkl", "fusionnet."))
        return (("flownet.pkl", "flownet."),)

    def pad_multiple(self, scale: float = 1.0) -> int:
        """Size multiple the padded frame must have for ``scale`` (official: max(m, m / scale))."""
        return max(self.modulus, int(self.modulus / scale))


def _literals(kind: object) -> tuple[object, ...]:
    """The values a ``Literal[...]`` (or ``Literal[...] | None``) admits."""
    out: list[object] = []
    for arg in get_args(kind):
        out += _literals(arg) if get_args(arg) else [None if arg is type(None) else arg]
    return tuple(out)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
