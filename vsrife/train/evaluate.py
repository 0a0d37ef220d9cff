"""Benchmarks: Vimeo90K triplets, UCF101 (RIFE layout), Middlebury Other, real footage, held-out windows.

Layouts (as the official ECCV2022-RIFE ``benchmark/`` scripts read them):

* Vimeo90K: ``ROOT/tri_testlist.txt`` and ``ROOT/sequences/<id>/im1..3.png`` (or ``ROOT/target/<id>/``,
  the ``vimeo_interp_test`` layout); im2 is predicted from im1 and im3.
* UCF101: ``ROOT/<any>/frame_00.png``, ``frame_02.png`` (inputs) and ``frame_01_gt.png``.
* Middlebury Other: ``ROOT/other-data/<name>/frame10.png``, ``frame11.png`` and
  ``ROOT/other-gt-interp/<name>/frame10i11.png``; reports the interpolation error IE (mean absolute
  difference in 0..255 units of the rounded output).
* Footage: predict k+1 from k and k+2 (t = 1/2), or k+1 and k+2 from k and k+3 (t = 1/3, 2/3);
  windows with a duplicate or a cut between neighbouring frames are skipped.

Predictions are rounded to 8 bits before scoring, as the official scripts do, and SSIM is theirs
(:func:`vsrife.quality.rife_ssim`: colour as a third window dimension), so the numbers compare with the
papers' tables; ``vsrife eval`` reports the usual per-channel SSIM instead. Every result also
carries the baselines ``average`` ((I0 + I1) / 2), ``blend`` ((1 - t) I0 + t I1) and ``repeat`` (I0).

Every file a benchmark layout names is checked before the first prediction (a missing one is a
``FileNotFoundError`` naming it); an image that cannot be decoded raises :class:`EvaluationError`.
"""

from __future__ import annotations

import bisect
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vsrife.arch import RIFENet
from vsrife.quality import psnr, rife_ssim
from vsrife.train.data import ArraySequence, FrameSequence, Window, WindowDataset, make_windows, read_image

__all__ = [
    "PSNR_CAP",
    "EvalResult",
    "EvaluationError",
    "Interpolate",
    "evaluate_footage",
    "evaluate_middlebury",
    "evaluate_ucf101",
    "evaluate_vimeo",
    "evaluate_windows",
    "heldout_subset",
    "json_safe",
    "network_interpolator",
]

Interpolate = Callable[[Tensor, Tensor, float], Tensor]
"""(img0 (1, 3, H, W), img1, t) -> prediction (1, 3, H, W), all in [0, 1]."""

PSNR_CAP = 100.0
"""An infinite PSNR (every prediction exact) is written to JSON as this, as ``vsrife eval`` does."""


class EvaluationError(RuntimeError):
    """A benchmark could not be scored: nothing to score, or an image that cannot be read."""


def json_safe(value: Any) -> Any:
    """``value`` with floats JSON can hold: NaN (no value) -> None, +-inf (a PSNR of exact frames) -> +-PSNR_CAP."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else math.copysign(PSNR_CAP, value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def network_interpolator(net: RIFENet, device: torch.device | str = "cpu", scale: float = 1.0,
                         ensemble: bool = False) -> Interpolate:  # fmt: skip
    """Wrap a network: zero-pad to the architecture's multiple (as the official scripts), crop back."""
    multiple = net.spec.pad_multiple(scale)
    device = torch.device(device)

    @torch.no_grad()
    def run(img0: Tensor, img1: Tensor, t: float) -> Tensor:
        h, w = img0.shape[2:]
        pad = (0, (-w) % multiple, 0, (-h) % multiple)
        a = F.pad(img0.to(device), pad)
        b = F.pad(img1.to(device), pad)
        out = net(a, b, timestep=t, scale=scale, ensemble=ensemble)
        return out[:, :, :h, :w].float().cpu()

    return run


def _tensor(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


@dataclass
class EvalResult:
    """Mean scores of one benchmark; ``per_t`` groups them by timestep."""

    benchmark: str
    count: int = 0
    psnr: float = math.nan
    ssim: float = math.nan
    ie: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    per_t: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, items: bool = False) -> dict[str, Any]:
        """JSON-ready (see :func:`json_safe`): no score yet is None, an infinite PSNR ``PSNR_CAP``."""
        d = asdict(self)
        if not items:
            d.pop("items")
        return json_safe(d)


class _Scores:
    def __init__(self, benchmark: str, with_ie: bool = False) -> None:
        self.benchmark, self.with_ie = benchmark, with_ie
        self.items: list[dict[str, Any]] = []
        self.skipped = 0

    def add(self, name: str, img0: Tensor, img1: Tensor, gt: Tensor, pred: Tensor, t: float) -> None:
        pred = pred.clamp(0, 1).mul(255).round().div(255)
        item: dict[str, Any] = {"name": name, "t": round(t, 4), "psnr": psnr(pred, gt), "ssim": rife_ssim(pred, gt),
                                "psnr_average": psnr((img0 + img1) / 2, gt),
                                "psnr_blend": psnr((1 - t) * img0 + t * img1, gt),
                                "psnr_repeat": psnr(img0, gt)}  # fmt: skip
        if self.with_ie:
            item["ie"] = float((pred - gt).abs().mean() * 255.0)
        self.items.append(item)

    def result(self) -> EvalResult:
        res = EvalResult(self.benchmark, len(self.items), skipped=self.skipped, items=self.items)
        if not self.items:
            return res

        def mean(rows: list[dict[str, Any]], key: str) -> float:
            vals = [r[key] for r in rows if math.isfinite(r[key])]
            return float(np.mean(vals)) if vals else math.inf

        res.psnr, res.ssim = mean(self.items, "psnr"), mean(self.items, "ssim")
        if self.with_ie:
            res.ie = mean(self.items, "ie")
        res.baselines = {b: mean(self.items, f"psnr_{b}") for b in ("average", "blend", "repeat")}
        groups: dict[float, list[dict[str, Any]]] = defaultdict(list)
        for r in self.items:
            groups[r["t"]].append(r)
        for t, rows in sorted(groups.items()):
            res.per_t[f"{t:.4f}"] = {
                "count": len(rows),
                "psnr": mean(rows, "psnr"),
                "ssim": mean(rows, "ssim"),
                **{f"psnr_{b}": mean(rows, f"psnr_{b}") for b in ("average", "blend", "repeat")},
            }
        return res


def _triplets(scores: _Scores, interp: Interpolate, items: Sequence[tuple[str, Path, Path, Path]],
              limit: int | None) -> EvalResult:  # fmt: skip
    """Score ``items`` (at most ``limit``), after checking that all their files exist."""
    items = list(items[:limit] if limit is not None else items)
    _check_files(items)
    for name, p0, pt, p1 in items:
        try:
            img0, gt, img1 = (_tensor(read_image(p)) for p in (p0, pt, p1))
        except OSError as exc:
            raise EvaluationError(f"root: {exc} (not an image, or damaged)") from None
        scores.add(name, img0, img1, gt, interp(img0, img1, 0.5), 0.5)
    return scores.result()


def _check_files(items: Iterable[tuple[str, Path, Path, Path]]) -> None:
    """Raise FileNotFoundError naming the first missing file (and how many), before any prediction."""
    listed: dict[Path, set[str]] = {}
    missing: list[Path] = []
    for _, *paths in items:
        for path in paths:
            folder = path.parent
            if folder not in listed:
                try:
                    listed[folder] = set(os.listdir(folder))
                except OSError:
                    listed[folder] = set()
            if path.name not in listed[folder]:
                missing.append(path)
    if missing:
        more = f" (and {len(missing) - 1} more files)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"root: {missing[0]} does not exist{more}")


def evaluate_vimeo(root: str | Path, interp: Interpolate, list_name: str = "tri_testlist.txt",
                   limit: int | None = None) -> EvalResult:  # fmt: skip
    """Vimeo90K triplet test set (PSNR / SSIM at t = 1/2)."""
    root = Path(root)
    list_file = root / list_name
    if not list_file.is_file():
        raise FileNotFoundError(f"{root} is not a Vimeo90K triplet folder ({list_name} is missing)")
    seq_root = root / "sequences" if (root / "sequences").is_dir() else root / "target"
    ids = [s.strip() for s in list_file.read_text().splitlines() if s.strip()]
    items = [(i, seq_root / i / "im1.png", seq_root / i / "im2.png", seq_root / i / "im3.png") for i in ids]
    return _triplets(_Scores("vimeo90k"), interp, items, limit)


def evaluate_ucf101(root: str | Path, interp: Interpolate, limit: int | None = None) -> EvalResult:
    """UCF101 triplets in the RIFE benchmark layout."""
    root = Path(root)
    dirs = sorted(d for d in root.iterdir() if (d / "frame_01_gt.png").is_file()) if root.is_dir() else []
    if not dirs:
        raise FileNotFoundError(f"{root} holds no UCF101 triplet folders (frame_00.png, frame_01_gt.png, frame_02.png)")
    items = [(d.name, d / "frame_00.png", d / "frame_01_gt.png", d / "frame_02.png") for d in dirs]
    return _triplets(_Scores("ucf101"), interp, items, limit)


def evaluate_middlebury(root: str | Path, interp: Interpolate, limit: int | None = None) -> EvalResult:
    """Middlebury Other (interpolation error IE, plus PSNR / SSIM)."""
    root = Path(root)
    gt_root, data_root = root / "other-gt-interp", root / "other-data"
    names = sorted(d.name for d in gt_root.iterdir() if (d / "frame10i11.png").is_file()) if gt_root.is_dir() else []
    if not names:
        raise FileNotFoundError(f"{root} is not a Middlebury Other folder (other-gt-interp/<name>/frame10i11.png)")
    scores = _Scores("middlebury", with_ie=True)
    items = [(n, data_root / n / "frame10.png", gt_root / n / "frame10i11.png", data_root / n / "frame11.png")
             for n in names]  # fmt: skip
    return _triplets(scores, interp, items, limit)


def evaluate_footage(frames: np.ndarray | FrameSequence, interp: Interpolate, thirds: bool = False,
                     limit: int | None = None, name: str = "footage") -> EvalResult:  # fmt: skip
    """Real-footage protocol on consecutive frames (uint8 (N, H, W, 3) or a sequence).

    ``thirds=False``: predict k+1 from (k, k+2); ``True``: k+1 and k+2 from (k, k+3) at t = 1/3, 2/3.
    Windows are stepped by their span (k, k+2, k+4 ... or k, k+3 ...) so no prediction reuses a target; a
    window holding a cut or a duplicate is skipped (counted once) and the walk goes on at the next good one.
    """
    seq = frames if not isinstance(frames, np.ndarray) else ArraySequence(name, frames)
    length = 4 if thirds else 3
    windows, _, _ = make_windows([seq], [length], val_fraction=0.0, segment=max(len(seq), 1))
    good = sorted({w.start for w in windows})
    good_set = set(good)
    scores = _Scores(f"{name}-{'thirds' if thirds else 'half'}")
    start, used = 0, 0
    while start + length <= len(seq) and (limit is None or used < limit):
        if start not in good_set:
            scores.skipped += 1
            after = bisect.bisect_right(good, start)
            if after == len(good):
                break
            start = good[after]
            continue
        used += 1
        img0, img1 = _tensor(seq.frame(start)), _tensor(seq.frame(start + length - 1))
        for j in range(1, length - 1):
            t = j / (length - 1)
            scores.add(f"{start}+{j}", img0, img1, _tensor(seq.frame(start + j)), interp(img0, img1, t), t)
        start += length - 1
    return scores.result()


def evaluate_windows(dataset: WindowDataset, interp: Interpolate, limit: int | None = None,
                     name: str = "heldout") -> EvalResult:  # fmt: skip
    """Score held-out windows of a :class:`WindowDataset` (validation: fixed inner frames, no augmentation)."""
    scores = _Scores(name)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(count):
        item = dataset[i]
        img0, gt, img1 = (item[k].unsqueeze(0).float().div(255.0) for k in ("img0", "gt", "img1"))
        t = float(item["t"])
        win: Window = dataset.windows[i]
        name = f"{dataset.sequences[win.seq].name}:{win.start}+{win.inner}"
        scores.add(name, img0, img1, gt, interp(img0, img1, t), t)
    return scores.result()


def heldout_subset(windows: Sequence[Window], limit: int | None) -> list[Window]:
    """At most ``limit`` windows spread evenly over the list (deterministic); None: all, 0: none."""
    if limit is None or len(windows) <= limit:
        return list(windows)
    if limit <= 0:
        return []
    idx = np.linspace(0, len(windows) - 1, limit).round().astype(int)
    return [windows[i] for i in idx]
