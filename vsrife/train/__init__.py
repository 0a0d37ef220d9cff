"""Training RIFE: data, leakage distillation, the training loop, DDP scale-out, export and benchmarks.

Builds on :mod:`vsrife.arch` and :mod:`vsrife.models` only (never on the VapourSynth filter).
Command line: ``python -m vsrife.train fit|evaluate|export|ddp-check``.
"""

from __future__ import annotations

from vsrife.train.config import ConfigError, TrainConfig
from vsrife.train.export import export_checkpoint, export_model
from vsrife.train.loop import Trainer

__all__ = ["ConfigError", "TrainConfig", "Trainer", "export_checkpoint", "export_model"]
