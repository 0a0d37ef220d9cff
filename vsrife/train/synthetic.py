"""Tiny dataset folders in the real layouts, made from given frames (tests and smoke runs).

The real datasets (Vimeo90K, UCF101, Middlebury) are not available offline; these writers produce
the same folder structure from, e.g., frames of the sample videos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_frames", "write_middlebury", "write_ucf101", "write_vimeo"]


def _save(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f"cannot write {path}")


def write_frames(folder: str | Path, frames: Sequence[np.ndarray], pattern: str = "{:05d}.png") -> Path:
    """A folder of numbered frames."""
    folder = Path(folder)
    for i, f in enumerate(frames):
        _save(folder / pattern.format(i), f)
    return folder


def write_vimeo(root: str | Path, groups: Sequence[Sequence[np.ndarray]], septuplet: bool = False,
                test: Sequence[int] = ()) -> Path:  # fmt: skip
    """Vimeo90K layout: ``sequences/00001/000k/im1..N.png`` plus train/test list files.

    ``groups`` are 3 (or 7 with ``septuplet``) frames each; the indices in ``test`` go to the test list.
    """
    root = Path(root)
    n = 7 if septuplet else 3
    prefix = "sep" if septuplet else "tri"
    train_ids: list[str] = []
    test_ids: list[str] = []
    for g, frames in enumerate(groups):
        if len(frames) != n:
            raise ValueError(f"group {g} has {len(frames)} frames, expected {n}")
        seq_id = f"{g // 1000 + 1:05d}/{g % 1000 + 1:04d}"
        for i, f in enumerate(frames):
            _save(root / "sequences" / seq_id / f"im{i + 1}.png", f)
        (test_ids if g in test else train_ids).append(seq_id)
    (root / f"{prefix}_trainlist.txt").write_text("\n".join(train_ids) + "\n")
    (root / f"{prefix}_testlist.txt").write_text("\n".join(test_ids) + "\n")
    return root


def write_ucf101(root: str | Path, triplets: Sequence[Sequence[np.ndarray]]) -> Path:
    """RIFE's UCF101 layout: ``<k>/frame_00.png``, ``frame_01_gt.png``, ``frame_02.png``."""
    root = Path(root)
    for k, (a, mid, b) in enumerate(triplets):
        _save(root / str(k) / "frame_00.png", a)
        _save(root / str(k) / "frame_01_gt.png", mid)
        _save(root / str(k) / "frame_02.png", b)
    return root


def write_middlebury(root: str | Path, triplets: dict[str, Sequence[np.ndarray]]) -> Path:
    """Middlebury Other: ``other-data/<name>/frame10.png, frame11.png``, ``other-gt-interp/<name>/frame10i11.png``."""
    root = Path(root)
    for name, (a, mid, b) in triplets.items():
        _save(root / "other-data" / name / "frame10.png", a)
        _save(root / "other-data" / name / "frame11.png", b)
        _save(root / "other-gt-interp" / name / "frame10i11.png", mid)
    return root
