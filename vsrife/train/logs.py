"""Run logging: CSV files (``train.csv``, ``val.csv``), TensorBoard when installed, PNG sample grids."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["RunLogger", "image_grid"]


def image_grid(rows: list[list[Tensor]], max_rows: int = 4) -> np.ndarray:
    """uint8 RGB grid (H, W, 3): one row per sample, each cell a (3, h, w) image in [0, 1]."""
    out = []
    for row in rows[:max_rows]:
        cells = [c.detach().float().clamp(0, 1).cpu() for c in row]
        out.append(torch.cat(cells, 2))
    grid = torch.cat(out, 1).mul(255).round().to(torch.uint8)
    return grid.permute(1, 2, 0).numpy()


class RunLogger:
    """Writes only in the main process. On resume, rows after the resumed step are dropped."""

    def __init__(self, folder: str | Path, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ("train.csv", "val.csv"):
            if resume_step is not None:
                self._truncate(self.folder / name, resume_step)
            else:  # a fresh run: its own tables, not rows appended under an earlier run's header
                (self.folder / name).unlink(missing_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: say so, a run asked for it
                self.message("tensorboard: TensorBoard is not installed (pip install tensorboard); logging to "
                             "train.csv and val.csv only (--no-tensorboard silences this)")  # fmt: skip
            else:
                self.writer = SummaryWriter(str(self.folder / "tensorboard"), purge_step=resume_step)

    @staticmethod
    def _truncate(path: Path, step: int) -> None:
        if not path.is_file():
            return
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows(kept)

    def scalars(self, name: str, step: int, values: dict[str, Any], tag: str | None = None) -> None:
        """Append a row ``step, values...`` to ``<name>.csv`` (columns fixed by the first row)."""
        if not self.enabled:
            return
        path = self.folder / f"{name}.csv"
        row = {"step": step, **values}
        new = not path.is_file() or path.stat().st_size == 0
        if not new:
            with path.open(newline="") as fh:
                header = next(csv.reader(fh))
        else:
            header = list(row)
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        if self.writer is not None:
            prefix = f"{name}/{tag}/" if tag else f"{name}/"
            for k, v in values.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    self.writer.add_scalar(prefix + k, v, step)

    def image(self, step: int, grid: np.ndarray, name: str = "samples") -> Path | None:
        if not self.enabled:
            return None
        import cv2

        path = self.folder / name / f"step_{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.ascontiguousarray(grid[:, :, ::-1]))
        if self.writer is not None:
            self.writer.add_image(name, grid, step, dataformats="HWC")
        return path

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, file=sys.stderr, flush=True)
        with (self.folder / "log.txt").open("a") as fh:
            fh.write(line + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _fmt(v: Any) -> Any:
    return repr(v) if isinstance(v, float) else v
