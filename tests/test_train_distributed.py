"""vsrife.train.distributed: two gloo processes (DDP) give the gradients of one process on the same global batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from vsrife.train import TrainConfig
from vsrife.train.distributed import DistContext, _spawned, free_port, gradient_probe


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


def _time_limited_worker(ctx: DistContext, config: dict[str, Any], out: str) -> None:
    from vsrife.train.loop import Trainer

    # rank 0 is past its limit at once, rank 1 would train for an hour: both must stop at the same step
    limit = 1e-6 if ctx.rank == 0 else 3600.0
    trainer = Trainer(TrainConfig.from_dict({**config, "time_limit": limit}), ctx=ctx, quiet=True)
    summary = trainer.fit()
    Path(f"{out}.{ctx.rank}").write_text(json.dumps({"step": summary["step"], "stopped": summary["stopped"]}))


def test_time_limit_stops_every_process_at_the_same_step(tmp_path: Path) -> None:
    cfg = TrainConfig(
        out_dir=str(tmp_path / "run"), arch={"widths": [16, 16], "scales": [2, 1]}, data=["sample:carphone"],
        max_frames=30, crop=[64], batch_size=2, steps=100_000, warmup=1, val_every=100_000, ckpt_every=100_000,
        val_max=1, tensorboard=False, threads=1, export_final=False,
    ).to_dict()  # fmt: skip
    out = str(tmp_path / "summary")
    procs = mp.spawn(_spawned, args=(2, free_port(), _time_limited_worker, (cfg, out)), nprocs=2, join=False)
    for _ in range(120):  # a process left waiting in an all-reduce hangs: fail instead of waiting forever
        if procs.join(timeout=1):
            break
    else:
        for p in procs.processes:
            p.kill()
        pytest.fail("the processes did not stop together (one is waiting in a collective)")
    summaries = [json.loads(Path(f"{out}.{rank}").read_text()) for rank in (0, 1)]
    assert summaries[0] == summaries[1] and summaries[0]["stopped"] == "time_limit", summaries
    assert (tmp_path / "run" / "checkpoints").is_dir()
