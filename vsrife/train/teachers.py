"""Flow teachers for leakage distillation: they see I_t and return F_t->0, F_t->1.

* :class:`DISTeacher` -- OpenCV DIS optical flow, offline and cheap (CPU).
* :class:`RAFTTeacher` -- torchvision RAFT with a user-supplied weights file (torchvision optional).
* privileged (trained jointly with the student): the official ``block_tea`` of paper/v3 networks,
  or :class:`TimestepTeacher`, our own extra IFBlock for 4.x networks (see :mod:`vsrife.train.model`).

Convention (that of :func:`vsrife.arch.warp.backward_warp`): ``backward_warp(I0, F_t->0) ~ I_t``,
i.e. F_t->0(x) is the displacement from pixel x of I_t to its match in I0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsrife.arch.ifnet import FlowEstimate, IFBlock
from vsrife.arch.spec import ArchSpec
from vsrife.train.config import ConfigError

__all__ = ["DISTeacher", "FlowTeacher", "RAFTTeacher", "TimestepTeacher", "build_flow_teacher"]


class FlowTeacher(Protocol):
    """Computes the teacher flow (N, 4, H, W) = (F_t->0, F_t->1) for frames in [0, 1]."""

    name: str

    def __call__(self, img0: Tensor, gt: Tensor, img1: Tensor) -> Tensor: ...


def _gray_u8(x: Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W) uint8 luma (BT.601)."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    y = (x.detach().float().clamp(0, 1) * w).sum(1).mul(255.0).round()
    return y.to(torch.uint8).cpu().numpy()


class DISTeacher:
    """OpenCV DIS optical flow from I_t to I0 and I_t to I1 (``calc(I_t, I_k)`` is F_t->k).

    ``preset``: ``ultrafast``, ``fast`` or ``medium`` (OpenCV's presets; medium is the most accurate).
    The DIS object is created lazily per process (it does not pickle).
    """

    name = "dis"

    def __init__(self, preset: str = "medium") -> None:
        self.preset = preset
        self._dis: Any = None  # cv2.DISOpticalFlow, made on first use (cv2 is imported lazily)

    def _engine(self) -> Any:
        if self._dis is None:
            import cv2

            presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                       "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}  # fmt: skip
            self._dis = cv2.DISOpticalFlow.create(presets[self.preset])
        return self._dis

    def flow(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 flow f with ``src(x) ~ dst(x + f(x))`` for uint8 gray images."""
        return self._engine().calc(np.ascontiguousarray(src), np.ascontiguousarray(dst), None)

    @torch.no_grad()
    def __call__(self, img0: Tensor, gt: Tensor, img1: Tensor) -> Tensor:
        g0, gt_, g1 = _gray_u8(img0), _gray_u8(gt), _gray_u8(img1)
        out = np.empty((len(gt_), 4, *gt_.shape[1:]), dtype=np.float32)
        for i in range(len(gt_)):
            out[i, :2] = self.flow(gt_[i], g0[i]).transpose(2, 0, 1)
            out[i, 2:] = self.flow(gt_[i], g1[i]).transpose(2, 0, 1)
        return torch.from_numpy(out).to(gt.device)


class RAFTTeacher(nn.Module):
    """torchvision RAFT (large or small) loaded from ``weights`` (a state dict file); frozen."""

    name = "raft"

    def __init__(self, weights: str | Path, small: bool = False, iters: int = 12) -> None:
        super().__init__()
        try:
            from torchvision.models.optical_flow import raft_large, raft_small
        except ImportError as exc:
            raise ImportError(
                "teacher 'raft' needs torchvision (pip install torchvision matching your torch version); "
                "or use teacher 'dis' (OpenCV) or 'privileged'"
            ) from exc
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"raft_weights: {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # not a zip/pickle, or pickles more than tensors (refused, never run)
            raise ConfigError(f"raft_weights: {path} is not a PyTorch state dict of tensors") from exc
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ConfigError(f"raft_weights: {path} is not a state dict (found {type(state).__name__})")
        state = {str(k).removeprefix("module."): v for k, v in state.items()}
        self.net = raft_small(weights=None) if small else raft_large(weights=None)
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            kind = "raft_small" if small else "raft_large"
            raise ConfigError(
                f"raft_weights: {path} does not fit torchvision {kind} (raft_small flag?): {exc}"
            ) from exc
        self.net.eval().requires_grad_(False)
        self.iters = iters

    def train(self, mode: bool = True) -> RAFTTeacher:  # always in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, img0: Tensor, gt: Tensor, img1: Tensor) -> Tensor:
        n, _, h, w = gt.shape
        # RAFT needs sides that are multiples of 8 and at least 128 (its correlation pyramid).
        ph, pw = max(128 - h, (-h) % 8), max(128 - w, (-w) % 8)
        src = torch.cat((gt, gt)).float()
        dst = torch.cat((img0, img1)).float()
        src, dst = (F.pad(x, (0, pw, 0, ph), mode="replicate") * 2 - 1 for x in (src, dst))
        flow = self.net(src, dst, num_flow_updates=self.iters)[-1][:, :, :h, :w]
        return torch.cat((flow[:n], flow[n:]), 1)


class TimestepTeacher(nn.Module):
    """Privileged teacher for 4.x networks: one more IFBlock that also sees I_t (and t).

    Input: both frames warped by the student's final flow, t, the student's mask logit and I_t, plus
    the flow (15 + 4 channels); output: refined (flow, mask logit) like the official ``block_tea``.
    """

    def __init__(self, spec: ArchSpec, width: int = 64) -> None:
        super().__init__()
        self.block = IFBlock(3 + 3 + 1 + 1 + 3 + 4, width, spec)

    def forward(self, t: Tensor, gt: Tensor, est: FlowEstimate) -> tuple[Tensor, Tensor]:
        n, _, h, w = gt.shape
        tplane = t.to(gt.dtype).expand(n, 1, h, w)
        mask = est.mask_logits[-1]
        x = torch.cat((est.warped0, est.warped1, tplane, mask, gt), 1)
        fd, md, _ = self.block(x, est.flow, 1.0)
        return est.flow + fd, mask + md


def build_flow_teacher(kind: str, *, dis_preset: str = "medium", raft_weights: str | None = None,
                       raft_small: bool = False, raft_iters: int = 12, device: torch.device | None = None,
                       ) -> FlowTeacher | None:  # fmt: skip
    """The external flow teacher for ``kind`` (``dis``/``raft``), or None (``none``/``privileged``)."""
    if kind == "dis":
        return DISTeacher(dis_preset)
    if kind == "raft":
        if raft_weights is None:
            raise ConfigError("raft_weights: teacher 'raft' needs the path of a torchvision RAFT weights file")
        return RAFTTeacher(raft_weights, raft_small, raft_iters).to(device or "cpu")
    return None
