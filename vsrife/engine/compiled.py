"""``torch.compile`` for the network call, with an eager fallback.

Most of a RIFE forward pass is memory-bound glue between the convolutions: bias adds, activations,
residual adds, concatenations, resizes and warps, each a full pass over an activation. Inductor
fuses chains of them into single kernels (Triton on CUDA, C++/OpenMP on CPU). It costs a compile
per input shape (about 20 s on an H100 host, a minute on a 2-core CPU; inductor's on-disk cache
makes later runs of the same shape faster), so it is opt-in. Where compiling fails (no C++ compiler
on a CPU machine, no Triton) the engine logs why and runs eagerly with the same results.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["CompiledNetwork"]

_log = logging.getLogger("vsrife")


class CompiledNetwork:
    """Calls ``torch.compile(network)``; after the first failure, ``network`` itself (see :attr:`disabled`)."""

    def __init__(self, network: nn.Module) -> None:
        self.network = network
        self.disabled: str | None = None
        # dynamic=False: one specialised graph per frame size (a clip has one); the recompile limit
        # bounds how many sizes get their own graph before further sizes run eagerly.
        self._compiled = torch.compile(network, dynamic=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        if self.disabled is None:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as exc:  # a missing compiler/Triton surfaces at the first call
                if isinstance(exc, torch.OutOfMemoryError):
                    raise
                first_line = (str(exc).strip().splitlines() or [""])[0]
                self.disabled = f"{type(exc).__name__}: {first_line[:300]}"
                _log.warning("vsrife: torch.compile disabled, running eagerly (%s)", self.disabled)
        return self.network(*args, **kwargs)
