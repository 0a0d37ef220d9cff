"""File helpers shared by the model store and the command line's outputs."""

from __future__ import annotations

import os

__all__ = ["new_file_mode"]


def new_file_mode() -> int:
    """0666 minus the process umask: the permissions a plain ``open()`` gives a new file.

    Files written through ``tempfile.mkstemp`` (0600) and renamed into place get these instead.
    """
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS tells (Linux: /proc/self/status); setting
    and restoring it would give files other threads create meanwhile a umask of 0 (world-writable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0)  # elsewhere: the only portable way
    os.umask(umask)
    return umask
