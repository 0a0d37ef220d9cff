"""Official-layout checkpoints with seeded random weights (4.x files exist offline in layout only)."""

from __future__ import annotations

from pathlib import Path

import torch

from vsrife.arch import build_network
from vsrife.models import get_model


def seeded_checkpoint(version: str, folder: Path, seed: int = 0) -> Path:
    """``folder/flownet_v<version>.pkl`` as the official files name their keys (``module.``), weights from ``seed``."""
    torch.manual_seed(seed)
    net = build_network(get_model(version).spec)
    path = folder / f"flownet_v{version}.pkl"
    torch.save({f"module.{k}": v for k, v in net.flownet.state_dict().items()}, path)
    return path
