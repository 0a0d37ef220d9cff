"""Export a trained network in the official checkpoint layout, with vsrife metadata.

``<folder>/flownet.pkl`` is a flat state dict with ``module.``-prefixed keys (as the official
releases), plus the JSON string entry ``"__vsrife__"``: name, family, base model, architecture
(``spec_to_dict``), training configuration, data and metrics. ``vsrife.models.load_model(model_path=
<folder>)`` rebuilds the architecture from that metadata, so custom architectures load too (and so
does the VapourSynth filter, which goes through ``load_model``). Training-only tensors travel along
under ``block_tea.`` (paper/v3) and ``teacher.`` (our 4.x teacher); inference loading ignores them.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vsrife.arch import RIFENet, build_network
from vsrife.models.loading import METADATA_KEY, load_model, spec_from_dict, spec_to_dict
from vsrife.train.checkpoint import load_checkpoint

__all__ = ["export_checkpoint", "export_model", "official_state"]


def official_state(net: RIFENet, teacher: nn.Module | None = None, include_teacher: bool = True) -> dict[str, Tensor]:
    """``module.``-prefixed CPU float32 tensors of the flownet (+ training-only teacher tensors)."""
    if net.spec.files != (("flownet.pkl", "flownet."),):
        raise ValueError(f"export supports single-file families (paper, v3, v4), not {net.spec.family!r}")
    out: dict[str, Tensor] = {}
    for k, v in net.state_dict().items():
        key = k.removeprefix("flownet.")
        if key.startswith("block_tea.") and not include_teacher:
            continue
        out["module." + key] = v.detach().float().cpu().clone()
    if teacher is not None and include_teacher:
        for k, v in teacher.state_dict().items():
            out["module.teacher." + k] = v.detach().float().cpu().clone()
    return out


def export_model(
    model: nn.Module,
    folder: str | Path,
    *,
    name: str = "custom",
    base: str | None = None,
    config: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    include_teacher: bool = True,
    verify: bool = True,
) -> Path:
    """Write ``folder/flownet.pkl`` for a :class:`RIFENet` or a training module holding one (``.net``).

    With ``verify`` the file is loaded back with :func:`vsrife.models.load_model`.
    """
    net: RIFENet = model.net if hasattr(model, "net") else model  # type: ignore[assignment]
    teacher = getattr(model, "teacher", None) if hasattr(model, "net") else None
    state = official_state(net, teacher, include_teacher)
    spec = net.spec
    has_tea = any(k.startswith("module.block_tea.") for k in state)
    if spec.family in ("paper", "v3"):
        spec = replace(spec, teacher=has_tea)
    meta = {
        "format": 1,
        "name": name,
        "family": spec.family,
        "base": base,
        "spec": spec_to_dict(spec),
        "summary": f"vsrife-trained {spec.family} network" + (f" (from {base})" if base else " (from scratch)"),
        "training": config or {},
        "data": data or {},
        "metrics": metrics or {},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    from vsrife import __version__

    meta["vsrife"] = __version__
    blob: dict[str, Any] = dict(state)
    blob[METADATA_KEY] = json.dumps(meta, default=str)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flownet.pkl"
    tmp = folder / f".flownet.pkl.{os.getpid()}.tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)
    if verify:
        load_model(model_path=folder)
    return path


def export_checkpoint(checkpoint: str | Path, folder: str | Path, name: str | None = None) -> Path:
    """Export the network of a training checkpoint (``step_XXXXXXXX.pt``)."""
    state = load_checkpoint(checkpoint)
    spec = spec_from_dict(state["spec"])
    module_state: dict[str, Tensor] = state["module"]
    net_state = {k.removeprefix("net."): v for k, v in module_state.items() if k.startswith("net.")}
    net = build_network(spec, teacher=any(k.startswith("flownet.block_tea.") for k in net_state))
    net.load_state_dict(net_state)
    holder = nn.Module()
    holder.net = net
    teacher_state = {k.removeprefix("teacher."): v for k, v in module_state.items() if k.startswith("teacher.")}
    if teacher_state:
        from vsrife.train.teachers import TimestepTeacher

        width = int(teacher_state["block.conv0.1.0.weight"].shape[0])
        teacher = TimestepTeacher(spec, width)
        teacher.load_state_dict(teacher_state)
        holder.teacher = teacher
    cfg = state.get("config", {})
    return export_model(
        holder,
        folder,
        name=name or str(cfg.get("name", "custom")),
        base=state.get("base"),
        config=cfg,
        metrics={"step": int(state["step"]), "train": (state.get("history") or [{}])[-1]},
    )
