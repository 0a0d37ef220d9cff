"""Output files that appear only when complete: written under a temporary name beside the target, renamed at the end.

On an error or Ctrl-C the temporary file is removed, so a failed or interrupted run never leaves
a half-written OUT (nor a stray temporary) behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

from vsrife._files import new_file_mode
from vsrife.cli.errors import UsageError

__all__ = ["AtomicOutput", "check_output", "check_report", "write_text_atomically"]

PART_MARK = ".vsrife-part"
"""Every temporary output name contains this (e.g. ``.out.mkv.k2j3.vsrife-part.mkv``)."""


def check_output(out: Path, *, overwrite: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse outputs that would clobber a file without ``--overwrite``, an input, or need a missing folder."""
    if out.suffix == "":
        raise UsageError(f"output {out} has no extension; ffmpeg needs one to pick the container (.mkv, .mp4, ...)")
    if out.is_dir():
        raise UsageError(f"output {out} is a directory")
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist")
    for p in inputs:
        if p.exists() and out.exists() and os.path.samefile(p, out):
            raise UsageError(f"output {out} is also an input; write to another file")
    if out.exists() and not overwrite:
        raise UsageError(f"output {out} already exists; pass --overwrite to replace it")
    return out


def check_report(path: Path, option: str, *, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse a report path (``--json``, ``--out``) before the work starts: a folder, an input, or not writable.

    Reports replace an existing file of that name and get their folder created, so only what would
    fail at the end (or destroy an input) is refused here.
    """
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory")
    for p in inputs:
        if p.exists() and path.exists() and os.path.samefile(p, path):
            raise UsageError(f"{option} {path} is also an input; write to another file")
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path} cannot be written: {folder} is not a folder")
    try:
        if folder == path.absolute().parent:
            tempfile.TemporaryFile(dir=folder).close()
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except OSError as exc:
        raise UsageError(
            f"{option} {path} cannot be written: no file can be created in {folder} ({exc.strerror or exc})"
        ) from None
    return path


def _mode(target: Path) -> int:
    """The replaced file's permissions, else 0666 minus the umask (what a plain open() would give)."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    return new_file_mode()


class AtomicOutput:
    """``with AtomicOutput(out) as tmp:`` write ``tmp`` (same folder and extension); it becomes ``out`` on success."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temp: Path | None = None

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=f"{PART_MARK}{self.target.suffix}", dir=self.target.parent
        )
        os.close(fd)
        self.temp = Path(name)
        return self.temp

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.temp is not None
        if exc_type is None:
            os.chmod(self.temp, _mode(self.target))  # mkstemp makes 0600; give the usual permissions
            os.replace(self.temp, self.target)
        else:
            self.temp.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Write a small text file (reports) through a temporary name, creating its folder; replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicOutput(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
