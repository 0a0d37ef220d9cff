"""vsrife.train.distributed: two gloo processes (DDP) give the gradients of one process on the same global batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsrife.train import TrainConfig
from vsrife.train.distributed import gradient_probe


@pytest.mark.parametrize("teacher", ["dis"])
def test_gloo_two_processes_match_one(tmp_path: Path, teacher: str) -> None:
    cfg = TrainConfig(
        out_dir=str(tmp_path), arch={"widths": [16, 16], "scales": [2, 1]}, data=["sample:carphone"], max_frames=40,
        windows=[3, 4], crop=[64], batch_size=4, steps=10, teacher=teacher, tensorboard=False, threads=1,
    ).to_dict()  # fmt: skip
    one = gradient_probe(cfg, world=1, step=3)
    two = gradient_probe(cfg, world=2, step=3)
    assert one.keys() == two.keys() and len(one) > 10
    scale = max(float(g.abs().max()) for g in one.values())
    assert scale > 0
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6 * scale, msg=name)
    # and it is not trivially equal: another step's batch gives other gradients
    other = gradient_probe(cfg, world=1, step=4)
    assert any(not torch.allclose(other[n], one[n]) for n in one)
