"""Backward warping with bilinear ``grid_sample`` (border padding, ``align_corners=True``).

All official RIFE releases warp the same way: a pixel displacement field (x, y) is normalised by
((W - 1) / 2, (H - 1) / 2) of the (padded) frame and added to an identity grid in [-1, 1].
The identity grid is cached per size and device, because it is rebuilt for every warp otherwise.
The grid is always float32: in fp16/bf16 the sampling position would be off by up to several pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor

from vsrife.arch import workers

__all__ = ["backward_warp", "base_grid", "cached_grids", "clear_grid_cache"]

_CACHE_SIZE = 16
_SPLIT_MIN_PIXELS = 1 << 16  # below this a warp takes well under a millisecond: one call
_grid_cache: OrderedDict[tuple[int, int, torch.device], Tensor] = OrderedDict()
_grid_lock = threading.Lock()


def base_grid(height: int, width: int, device: torch.device) -> Tensor:
    """Identity sampling grid of shape (1, 2, H, W) in float32, cached (LRU) per size and device.

    Not cached while ``torch.compile`` / ``torch.export`` trace, nor while a CUDA graph captures: there
    the grid is a traced tensor, or one whose values are only written when the graph replays, that eager
    calls must never find in the cache.
    """
    if torch.compiler.is_compiling() or (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
        return _identity_grid(height, width, device)
    key = (height, width, device)
    with _grid_lock:
        grid = _grid_cache.get(key)
        if grid is not None:
            _grid_cache.move_to_end(key)
            return grid
    grid = _identity_grid(height, width, device)
    with _grid_lock:
        _grid_cache[key] = grid
        while len(_grid_cache) > _CACHE_SIZE:
            _grid_cache.popitem(last=False)
    return grid


def _identity_grid(height: int, width: int, device: torch.device) -> Tensor:
    xs = torch.linspace(-1.0, 1.0, width, dtype=torch.float32, device=device).view(1, 1, 1, width)
    ys = torch.linspace(-1.0, 1.0, height, dtype=torch.float32, device=device).view(1, 1, height, 1)
    return torch.cat((xs.expand(1, 1, height, width), ys.expand(1, 1, height, width)), 1)


def cached_grids() -> list[Tensor]:
    """The grids cached now (CUDA graphs hold references so eviction cannot free what they read)."""
    with _grid_lock:
        return list(_grid_cache.values())


def clear_grid_cache() -> None:
    """Drop all cached grids (frees device memory after a resolution change)."""
    with _grid_lock:
        _grid_cache.clear()


def backward_warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` (N, C, H, W) at ``position + flow`` (N, 2, H, W, pixels); returns image's dtype."""
    h, w = flow.shape[2:]
    dtype = image.dtype
    flow = flow.float()
    div_x = (image.shape[3] - 1.0) / 2.0 or 1.0
    div_y = (image.shape[2] - 1.0) / 2.0 or 1.0
    norm = torch.cat((flow[:, 0:1] / div_x, flow[:, 1:2] / div_y), 1)
    grid = (base_grid(h, w, flow.device) + norm).permute(0, 2, 3, 1)
    out = _sample_rows(image.float(), grid)
    return out if dtype == torch.float32 else out.to(dtype)


def _sample(image: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _sample_rows(image: Tensor, grid: Tensor) -> Tensor:
    """``grid_sample``; on the CPU in inference its output rows split over the caller's intra-op threads.

    PyTorch's CPU kernel parallelises over the batch only, so one frame's warp ran on one core (720p:
    6-7 ms, a fifth of a 4.6 interpolation). Each output pixel depends on its own grid entry only, so
    strips of rows give the same values bit for bit. Not with autograd on (training keeps one call),
    nor while ``torch.compile`` / ``torch.export`` trace the network (the graph gets one ``grid_sample``;
    worker threads cannot run traced tensors).
    """
    h, w = grid.shape[1:3]
    parts = min(torch.get_num_threads(), h, workers.MAX_WORKERS + 1)
    if (
        image.device.type != "cpu"
        or parts < 2
        or h * w < _SPLIT_MIN_PIXELS
        or torch.is_grad_enabled()
        or torch.compiler.is_compiling()
        or workers.in_worker()
    ):
        return _sample(image, grid)
    out = torch.empty((image.shape[0], image.shape[1], h, w), dtype=image.dtype)
    edges = [h * i // parts for i in range(parts + 1)]
    inference = torch.is_inference_mode_enabled()

    def strip(top: int, bottom: int) -> None:
        with torch.inference_mode(inference), torch.no_grad():
            out[:, :, top:bottom] = _sample(image, grid[:, top:bottom])

    pool = workers.pool("warp")
    futures = [pool.submit(strip, edges[i], edges[i + 1]) for i in range(1, parts)]
    try:
        strip(edges[0], edges[1])
    finally:
        for future in futures:  # all strips finish before the call returns, even when one failed
            future.exception()
    for future in futures:
        future.result()
    return out
