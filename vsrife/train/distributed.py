"""Scale-out: DistributedDataParallel under ``torchrun`` (NCCL on GPUs, gloo on CPU).

``torchrun --nproc_per_node=8 [--nnodes=N --rdzv-endpoint=HOST:PORT] -m vsrife.train fit ...`` sets
RANK / WORLD_SIZE / LOCAL_RANK; :func:`init_distributed` reads them. ``batch_size`` is the global
batch: every process takes its ``batch_size / world`` share of each step's batch, so the averaged
gradients equal those of one process on the whole batch (:func:`gradient_probe` checks exactly that).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vsrife.train.config import ConfigError

__all__ = ["DistContext", "all_mean", "barrier", "cleanup", "free_port", "gradient_probe", "init_distributed",
           "resolve_device", "spawn", "wrap_ddp"]  # fmt: skip


_CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = _CPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA (this process's GPU) when available, else CPU; errors name the option."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} requested but CUDA is not available")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group described by torchrun's environment (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_mean(values: list[float], ctx: DistContext) -> list[float]:
    """Mean of each value over all processes (identity for one process)."""
    if not ctx.distributed or not values:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return (t / ctx.world).tolist()


def wrap_ddp(module: nn.Module, ctx: DistContext) -> nn.Module:
    """DistributedDataParallel around ``module`` when running with more than one process."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(DistContext(rank, world, rank, torch.device("cpu")), *args)
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], world: int, *args: Any) -> None:
    """Run ``fn(ctx, *args)`` in ``world`` CPU processes joined by gloo (tests, local checks)."""
    import torch.multiprocessing as mp

    mp.spawn(_spawned, args=(world, free_port(), fn, args), nprocs=world, join=True)


def _probe_worker(ctx: DistContext, config: dict[str, Any], step: int, out: str) -> None:
    from vsrife.train.config import TrainConfig
    from vsrife.train.loop import Trainer

    trainer = Trainer(TrainConfig.from_dict(config), ctx=ctx, quiet=True)
    batch = trainer.batch(step)
    trainer.forward_backward(batch)  # a second iteration checks DDP's reducer is ready again (all params used)
    trainer.forward_backward(batch)
    if ctx.is_main:
        torch.save(trainer.gradients(), out)


def gradient_probe(config: dict[str, Any], world: int, step: int = 0) -> dict[str, Tensor]:
    """Gradients after one forward/backward of ``step``'s global batch, computed by ``world`` gloo
    processes (DDP-averaged) or, for ``world == 1``, by this process alone."""
    from vsrife.train.config import TrainConfig
    from vsrife.train.loop import Trainer

    if world == 1:
        trainer = Trainer(TrainConfig.from_dict(config), quiet=True)
        trainer.forward_backward(trainer.batch(step))
        return trainer.gradients()
    with tempfile.TemporaryDirectory(prefix="vsrife-probe-") as tmp:
        out = str(Path(tmp) / "grads.pt")
        spawn(_probe_worker, world, config, step, out)
        return torch.load(out, weights_only=True)
