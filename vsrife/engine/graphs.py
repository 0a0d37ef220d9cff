"""CUDA graphs for the network call: capture once per input shape, then replay.

At 1080p a 4.x network is a few hundred small kernels; launched one by one from Python the GPU
waits on the launches. A captured graph launches them all at once. Inputs are copied into static
buffers (device-to-device, microseconds) and the output is cloned out of the graph's buffer, so
callers see ordinary tensors. Anything that cannot be captured (a data-dependent branch such as
4.0/4.1's large-motion restart, a driver without graph support) turns graphs off for this engine
with the reason in :attr:`CudaGraphs.disabled` and the engine runs eagerly, with identical results.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from vsrife.arch import warp

__all__ = ["CudaGraphs", "NetworkCall"]

_log = logging.getLogger("vsrife")
# One capture at a time in the process: engines (RIFE(RIFE(clip)), two filters) capture on their own
# streams, but a second capture starting meanwhile could not tell its kernels from the first's.
_CAPTURE_LOCK = threading.Lock()

NetworkCall = Callable[[Tensor, Tensor, Tensor, Tensor | None, Tensor | None], Tensor]
"""(img0, img1, t (1,) tensor, feat0, feat1) -> image, run under the engine's precision context."""


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: list[Tensor | None]
    output: Tensor
    keep: list[Tensor] = field(default_factory=list)  # tensors the graph reads that it does not own


def _key(tensors: list[Tensor | None]) -> tuple[object, ...]:
    # Shape and dtype only: inputs are copied into the static buffers, whatever their strides.
    return tuple(None if x is None else (tuple(x.shape), x.dtype) for x in tensors)


class CudaGraphs:
    """Replays one captured CUDA graph of ``call`` per input layout (LRU, at most ``max_graphs``)."""

    def __init__(self, call: NetworkCall, device: torch.device, max_graphs: int = 2) -> None:
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}")
        self.call = call
        self.device = device
        self.max_graphs = max_graphs
        self.disabled: str | None = None
        self.captures = 0
        self._graphs: OrderedDict[tuple[object, ...], _Graph] = OrderedDict()

    def __call__(
        self, img0: Tensor, img1: Tensor, t: float, feat0: Tensor | None, feat1: Tensor | None
    ) -> Tensor | None:
        """The network output (a fresh tensor), or ``None`` when graphs are off (run eagerly then)."""
        if self.disabled is not None:
            return None
        inputs = [img0, img1, feat0, feat1]
        key = _key(inputs)
        entry = self._graphs.get(key)
        if entry is None:
            previous, previous_device = torch.cuda.current_stream(self.device), torch.cuda.current_device()
            try:
                with _CAPTURE_LOCK:
                    entry = self._capture(inputs)
            except Exception as exc:
                # a failed capture can leave this thread on the capture stream (torch restores it after
                # capture_end, which is what failed): back to the stream the engine's other work uses
                torch.cuda.set_stream(previous)  # (this also makes the stream's device current)
                torch.cuda.set_device(previous_device)
                with contextlib.suppress(RuntimeError):  # a sticky error surfaces again in the eager call
                    torch.cuda.synchronize(self.device)
                self.disabled = f"{type(exc).__name__}: {exc}"
                self._graphs.clear()
                _log.warning("vsrife: CUDA graphs disabled, running eagerly (%s)", self.disabled)
                return None
            self._graphs[key] = entry
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        for static, x in zip(entry.inputs[:4], inputs, strict=True):
            if static is not None and x is not None:
                static.copy_(x)
        entry.inputs[-1].fill_(t)  # type: ignore[union-attr]
        entry.graph.replay()
        return entry.output.clone(memory_format=torch.contiguous_format)

    def _capture(self, inputs: list[Tensor | None]) -> _Graph:
        static: list[Tensor | None] = [None if x is None else x.clone() for x in inputs]
        t = torch.full((1,), 0.5, dtype=torch.float32, device=self.device)
        static.append(t)
        img0, img1, feat0, feat1 = static[:4]
        assert img0 is not None and img1 is not None
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(2):
                self.call(img0, img1, t, feat0, feat1)
        torch.cuda.current_stream(self.device).wait_stream(side)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        # On this engine's own stream of its own device (torch's default capture stream is one per process,
        # made on whichever device was current first: cuda:1's kernels would run outside the capture).
        # "thread_local": other threads' CUDA calls (other filters, pinned-memory frees) may go on meanwhile.
        with torch.cuda.device(self.device), torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
            output = self.call(img0, img1, t, feat0, feat1)
        self.captures += 1
        # The warp grids are cached module-wide and may be evicted later: the graph keeps reading
        # them, so hold on to every grid that existed at capture time.
        return _Graph(graph, static, output, keep=warp.cached_grids())
