"""File helpers shared by the model store and the command line's outputs."""

from __future__ import annotations

import os

__all__ = ["new_file_mode"]


def new_file_mode() -> int:
    """0666 minus the process umask: the permissions a plain ``open()`` gives a new file.

    Files written through ``tempfile.mkstemp`` (0600) and renamed into place get these instead.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
