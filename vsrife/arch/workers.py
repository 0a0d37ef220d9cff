"""Worker threads for CPU work that PyTorch would run on one thread: fork-safe, process-wide pools.

One pool per kind of work: the two directions of an HD v3.x block (``"pair"``,
:func:`vsrife.arch.winograd.run_pair`) and the row strips of a warp (``"warp"``,
:func:`vsrife.arch.warp.backward_warp`). Separate pools keep a thread's history to one kind of work:
oneDNN convolutions in a thread that had run other work with another thread count came out different in
the last bit. Work submitted from a worker never waits on other workers' work (callers check
:func:`in_worker`), so the bounded pools cannot deadlock.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["MAX_WORKERS", "in_worker", "pool"]

MAX_WORKERS = 8
_PREFIX = "vsrife-"
_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}


def pool(kind: str) -> ThreadPoolExecutor:
    """The shared pool for ``kind`` of work, started on first use."""
    with _lock:
        if kind not in _pools:
            _pools[kind] = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix=_PREFIX + kind)
        return _pools[kind]


def in_worker() -> bool:
    """Whether the calling thread is a worker of one of the pools."""
    return threading.current_thread().name.startswith(_PREFIX)


def _forget() -> None:
    """A forked child has none of the parent's worker threads: start new pools there when needed."""
    global _lock, _pools
    _lock, _pools = threading.Lock(), {}


os.register_at_fork(after_in_child=_forget)
