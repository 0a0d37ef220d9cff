"""The trainable module: a student :class:`~vsrife.arch.RIFENet` plus an optional privileged teacher.

Paper and v3 networks use their official ``block_tea``; 4.x networks (timestep input) get a
:class:`~vsrife.train.teachers.TimestepTeacher` that lives here, outside the architecture.
:class:`Objective` turns the forward outputs into the training loss.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from vsrife.arch import RIFENet, build_network
from vsrife.arch.spec import ArchSpec
from vsrife.models import FetchError, ModelLoadError, get_model, load_model, read_state_dict
from vsrife.models.loading import spec_from_dict, spec_to_dict
from vsrife.train.config import DEFAULT_TEACHER_WIDTH, ConfigError, TrainConfig
from vsrife.train.losses import LaplacianLoss, better_mask, blend, distillation_loss, photometric_error
from vsrife.train.teachers import TimestepTeacher

__all__ = ["TRAINABLE_FAMILIES", "Objective", "StudentSource", "TrainModule", "build_student",
           "student_from_checkpoint", "teacher_note", "teacher_width_of"]  # fmt: skip

TRAINABLE_FAMILIES = ("paper", "v3", "v4")


@dataclass
class StudentSource:
    """The network to train and where it came from (``origin``: for messages)."""

    network: RIFENet
    base: str | None
    teacher_state: dict[str, Tensor]
    notes: list[str]
    origin: str = "scratch"


def _arch_spec(cfg: TrainConfig) -> ArchSpec:
    assert cfg.arch is not None
    try:
        base = get_model(cfg.arch_base).spec
    except KeyError as exc:
        raise ConfigError(f"arch_base: {exc.args[0]}") from exc
    data = spec_to_dict(base)
    unknown = sorted(set(cfg.arch) - set(data))
    if unknown:
        raise ConfigError(f"arch: unknown architecture field {unknown[0]!r} (known: {', '.join(data)})")
    data.update(cfg.arch)
    try:
        spec = spec_from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"arch: {exc}") from exc
    if len(spec.widths) != len(spec.scales) or not spec.widths:
        raise ConfigError(f"arch: widths {list(spec.widths)} and scales {list(spec.scales)} need the same length")
    return spec


def build_student(cfg: TrainConfig) -> StudentSource:
    """Build (``arch``) or load (``model`` / ``model_path``) the student network, in train mode."""
    privileged = cfg.teacher == "privileged"
    notes: list[str] = []
    teacher_state: dict[str, Tensor] = {}
    origin = "scratch"
    if cfg.arch is not None:
        spec = _arch_spec(cfg)
        _check_family(spec, "arch")
        official_tea = privileged and spec.family in ("paper", "v3")
        try:
            net = build_network(replace(spec, teacher=official_tea), teacher=official_tea)
        except ValueError as exc:
            raise ConfigError(f"arch: {exc}") from exc
        base = None
    else:
        option = "model" if cfg.model is not None else "model_path"
        if cfg.model is not None:
            try:
                _check_family(get_model(cfg.model).spec, "model")
            except KeyError as exc:
                raise ConfigError(f"model: {exc.args[0]}") from exc
        try:
            loaded = load_model(cfg.model, cfg.model_path, teacher=False)
        except (ModelLoadError, FetchError) as exc:
            raise ConfigError(f"{option}: {exc}") from exc
        spec = loaded.info.spec
        _check_family(spec, option)
        base = loaded.info.name if cfg.model is not None else str(loaded.metadata.get("name", cfg.model_path))
        origin = f"model {cfg.model}" if cfg.model is not None else f"model_path {cfg.model_path}"
        file_state, _ = read_state_dict(loaded.paths[0])
        if privileged and spec.family in ("paper", "v3"):
            net = build_network(replace(spec, teacher=True), teacher=True)
            missing, _ = net.load_state_dict(loaded.network.state_dict(), strict=False)
            assert all(k.startswith("flownet.block_tea.") for k in missing), missing
            tea = {k.removeprefix("block_tea."): v for k, v in file_state.items() if k.startswith("block_tea.")}
            if _try_load(net.ifnet.get_submodule("block_tea"), tea):
                notes.append("privileged teacher block_tea loaded from the checkpoint")
            else:
                notes.append("the checkpoint has no usable block_tea: the teacher starts from scratch")
        else:
            net = loaded.network
        teacher_state = {k.removeprefix("teacher."): v for k, v in file_state.items() if k.startswith("teacher.")}
    net = net.float().train().requires_grad_(True)
    return StudentSource(net, base, teacher_state, notes, origin)


def student_from_checkpoint(state: dict[str, Any], path: str) -> StudentSource:
    """The network of a training checkpoint, built from its recorded architecture, in train mode.

    Its weights come with the rest of the checkpoint's state, so a resumed fine-tune needs neither the
    model it started from (``model_path``) nor that version's file in the model store (``model``).
    """
    try:
        spec = spec_from_dict(state["spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"resume: {path} records no usable architecture ({exc})") from None
    module_state: dict[str, Tensor] = state["module"]
    with_tea = any(k.startswith("net.flownet.block_tea.") for k in module_state)
    net = build_network(spec, teacher=with_tea).float().train().requires_grad_(True)
    teacher_state = {k.removeprefix("teacher."): v for k, v in module_state.items() if k.startswith("teacher.")}
    base = state.get("base")
    return StudentSource(net, None if base is None else str(base), teacher_state, [], f"checkpoint {path}")


def teacher_width_of(state: dict[str, Tensor]) -> int | None:
    """Width of a trained 4.x privileged teacher from its state dict (None: there is none)."""
    weight = state.get("block.conv0.1.0.weight")
    return None if weight is None else int(weight.shape[0])


def teacher_note(source: StudentSource, width: int, loaded: bool) -> str:
    """What became of the source's 4.x privileged teacher (logged, so a dropped one is never silent)."""
    found = teacher_width_of(source.teacher_state)
    if loaded:
        return f"privileged teacher: the trained teacher of {source.origin} (width {width}) is trained on"
    if found is not None:
        return (f"privileged teacher: teacher_width {width} differs from the width {found} of the trained teacher "
                f"in {source.origin}, which is left out: a new teacher starts from scratch (leave teacher_width "
                "unset to train that one on)")  # fmt: skip
    where = "" if source.origin == "scratch" else f" ({source.origin} holds none)"
    return f"privileged teacher: a new teacher of width {width} starts from scratch{where}"


def _check_family(spec: ArchSpec, option: str) -> None:
    if spec.family not in TRAINABLE_FAMILIES:
        raise ConfigError(f"{option}: training supports the families {', '.join(TRAINABLE_FAMILIES)}, "
                          f"not {spec.family!r}")  # fmt: skip


def _try_load(module: nn.Module, state: dict[str, Tensor]) -> bool:
    own = module.state_dict()
    if not state or set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        return False
    module.load_state_dict(state)
    return True


class TrainModule(nn.Module):
    """Student forward (plus privileged teacher) returning what :class:`Objective` needs."""

    def __init__(self, net: RIFENet, privileged: bool, teacher_width: int = DEFAULT_TEACHER_WIDTH,
                 teacher_state: dict[str, Tensor] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.net = net
        self.privileged = privileged
        self.family = net.spec.family
        self.loaded_teacher = False
        if privileged and self.family == "v4":
            try:
                self.teacher = TimestepTeacher(net.spec, teacher_width)
            except ValueError as exc:  # e.g. a width that is not a multiple of the architecture's groups
                raise ConfigError(f"teacher_width: {exc}") from None
            self.loaded_teacher = _try_load(self.teacher, teacher_state or {})
        if not privileged and hasattr(net.flownet, "block_tea"):
            net.flownet.get_submodule("block_tea").requires_grad_(False)  # unused: keep it out of the optimizer and DDP

    def forward(self, img0: Tensor, img1: Tensor, gt: Tensor, t: Tensor) -> dict[str, Any]:
        flownet = self.net.ifnet  # the trainable families all use IFNet
        if self.family == "v4":
            est = flownet.estimate(img0, img1, t.reshape(-1, 1, 1, 1))
            pred = est.blend()
        else:
            est = flownet.estimate(img0, img1)
            pred = flownet.synthesize(img0, img1, est)
        out: dict[str, Any] = {"pred": pred, "flows": est.flows, "masks": est.mask_logits}
        if self.privileged:
            if self.family == "v4":
                flow, mask = self.teacher(t.reshape(-1, 1, 1, 1), gt, est)
            else:
                flow, mask = flownet.teacher(img0, img1, gt, est)
            out["teacher_flow"] = flow
            out["teacher_pred"] = blend(img0, img1, flow, mask)
        return out


@dataclass
class Objective:
    """Reconstruction + (privileged teacher reconstruction) + weighted leakage distillation."""

    lap: LaplacianLoss
    distill_weight: float = 0.01
    distill_norm: str = "rms"
    distill_mask: str = "better"
    teacher_weight: float = 1.0

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> Objective:
        lap = LaplacianLoss(cfg.lap_levels, cfg.lap_lowpass)
        return cls(lap, cfg.distill_weight, cfg.distill_norm, cfg.distill_mask, cfg.teacher_weight)

    def __call__(
        self, out: dict[str, Any], img0: Tensor, img1: Tensor, gt: Tensor, teacher_flow: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(total loss, named terms) for one batch; ``teacher_flow`` comes from an external teacher."""
        rec = self.lap(out["pred"], gt)
        terms = {"rec": rec}
        total = rec
        masks: list[Tensor | None] | None = None
        flows: list[Tensor] = out["flows"]
        if "teacher_flow" in out:
            tea = self.lap(out["teacher_pred"], gt)
            terms["teacher"] = tea
            total = total + self.teacher_weight * tea
            teacher_flow = out["teacher_flow"]
            if self.distill_mask == "better":
                with torch.no_grad():
                    tea_err = (out["teacher_pred"].float() - gt).abs().mean(1, keepdim=True)
                    masks = [
                        better_mask((blend(img0, img1, f.float(), m.float()) - gt).abs().mean(1, keepdim=True), tea_err)
                        for f, m in zip(flows, out["masks"], strict=True)
                    ]
        elif teacher_flow is not None and self.distill_mask == "better":
            with torch.no_grad():
                tea_err = photometric_error(img0, img1, gt, teacher_flow)
                masks = [better_mask(photometric_error(img0, img1, gt, f.detach().float()), tea_err) for f in flows]
        if teacher_flow is not None:
            dist = distillation_loss(flows, teacher_flow, masks, norm=self.distill_norm)  # type: ignore[arg-type]
            terms["distill"] = dist
            total = total + self.distill_weight * dist
        terms["total"] = total
        return total, terms
