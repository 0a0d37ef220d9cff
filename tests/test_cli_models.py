"""``vsrife models list|fetch|verify|path|import`` against a private model store (``model_store`` fixture)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vsrife.models import get_model, layout, locate

try:
    from tests.test_cli_support import cli, leftovers, vsrife_executable
except ImportError:
    from test_cli_support import cli, leftovers, vsrife_executable  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def fake_v46(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint in 4.6's official layout (``module.`` keys), random weights: the registry has no sha256 for it."""
    gen = torch.Generator().manual_seed(0)
    state = {f"module.{k}": torch.randn(shape, generator=gen) * 0.01 for k, shape in layout(get_model("4.6").spec)
             ["flownet.pkl"].items()}  # fmt: skip
    path = tmp_path_factory.mktemp("fake") / "flownet_v4.6.pkl"
    torch.save(state, path)
    return path


@pytest.fixture
def mirror(fake_v46: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local HTTP server standing in for the release downloads (``$VSRIFE_MODEL_MIRROR``)."""
    handler = functools.partial(_QuietHandler, directory=str(fake_v46.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("VSRIFE_MODEL_MIRROR", url)
    yield url
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_import_verify_list_path(
    capsys: pytest.CaptureFixture[str], model_store: Path, official_v36: Path, fake_v46: Path, tmp_path: Path
) -> None:
    code, out, err = cli(capsys, "models", "path")
    assert (code, out.strip()) == (0, str(model_store))
    code, out, err = cli(capsys, "models", "path", "3.6")
    assert code == 1 and out.strip() == str(model_store / "3.6") and "not installed" in err
    code, out, err = cli(capsys, "models", "verify")
    assert code == 0 and "no models installed" in err

    # import: the official file is checked (layout and sha256) and stored
    code, out, err = cli(capsys, "models", "import", official_v36, "--model", "v3.6")
    assert code == 0, err
    assert "verified" in out and (model_store / "3.6" / "flownet.pkl").is_file()
    code, out, _ = cli(capsys, "models", "path", "3.6")
    assert (code, out.strip()) == (0, str(model_store / "3.6"))
    # a version without a published hash is stored as unknown-hash
    code, out, err = cli(capsys, "models", "import", fake_v46, "--model", "4.6")
    assert code == 0 and "unknown-hash" in out and (model_store / "4.6" / "flownet.pkl").is_file()

    # wrong files are rejected and nothing is stored
    junk = tmp_path / "flownet.pkl"
    junk.write_text("not a checkpoint")
    code, _, err = cli(capsys, "models", "import", junk, "--model", "4.7")
    assert code == 1 and f"not imported: model file {junk}" in err
    code, _, err = cli(capsys, "models", "import", official_v36, "--model", "4.7")
    assert code == 1 and "does not fit model '4.7'" in err
    assert not (model_store / "4.7" / "flownet.pkl").exists() and leftovers(model_store / "4.7") == []
    code, _, err = cli(capsys, "models", "import", tmp_path / "missing.pkl", "--model", "4.7")
    assert code == 2 and "does not exist" in err

    code, out, _ = cli(capsys, "models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert code == 0 and len(rows) == 40
    assert (rows["3.6"]["installed"], rows["3.6"]["status"], rows["3.6"]["default"]) == (True, "verified", True)
    assert (rows["4.6"]["installed"], rows["4.6"]["status"]) == (True, "unknown-hash")
    assert (rows["4.7"]["installed"], rows["4.7"]["status"]) == (False, "-")
    assert rows["4.6"]["family"] == "v4" and "fastest" in rows["4.6"]["summary"]
    code, out, _ = cli(capsys, "models", "list")
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "FAMILY", "SOURCE", "INSTALLED", "STATUS"]
    row = next(line for line in lines if line.startswith("3.6*"))
    assert row.split()[1:5] == ["v3", "pypi", "yes", "verified"] and "live action" in row

    code, out, _ = cli(capsys, "models", "verify")
    assert code == 0 and "3.6" in out and "verified" in out and "unknown-hash" in out

    # a damaged file: verify names it and fails
    with (model_store / "3.6" / "flownet.pkl").open("ab") as fh:
        fh.write(b"\0")
    code, out, err = cli(capsys, "models", "verify", "3.6")
    assert code == 1 and "mismatch" in out and "expected fe854fc8" in out and "differ from the official" in err
    assert cli(capsys, "models", "verify")[0] == 1
    rows = {r["name"]: r for r in json.loads(cli(capsys, "models", "list", "--json")[1])["models"]}
    assert rows["3.6"]["status"] == "mismatch"


def test_fetch_with_progress_from_a_mirror(
    capsys: pytest.CaptureFixture[str], model_store: Path, mirror: str, fake_v46: Path
) -> None:
    code, out, err = cli(capsys, "models", "fetch", "4.6")
    assert code == 0, err
    stored = model_store / "4.6" / "flownet.pkl"
    assert stored.read_bytes() == fake_v46.read_bytes()
    assert "unknown-hash" in out and str(stored) in out
    assert "100%" in err and "B/s" in err  # the byte progress bar
    assert leftovers(model_store / "4.6") == []


def test_fetch_failures(capsys: pytest.CaptureFixture[str], model_store: Path, mirror: str) -> None:
    code, _, err = cli(capsys, "models", "fetch", "4.7", "--no-progress")  # the mirror does not have it
    assert code == 1 and "could not download" in err and "Traceback" not in err
    assert "`vsrife models import FILE --model 4.7`" in err
    assert "model-path" not in err and "model_path" not in err  # an option `models fetch` does not have
    assert locate("4.7") is None and leftovers(model_store / "4.7") == []
    code, _, err = cli(capsys, "models", "fetch", "paper")
    assert code == 1 and "no download address" in err and "ECCV2022-RIFE" in err
    assert "`vsrife models import FILE --model paper`" in err and "model-path" not in err and "model_path" not in err


def test_import_a_folder_verify_an_unhashed_file_and_a_closed_pipe(
    capsys: pytest.CaptureFixture[str], model_store: Path, fake_v46: Path, tmp_path: Path
) -> None:
    """HD's three files import as the folder the README says to use (was "not a regular file"); a broken file
    of a version without a published hash says so (was "expected None"); `vsrife models list | head` ends
    quietly (was "[Errno 32] Broken pipe", exit 1)."""
    from vsrife.arch import build_network

    hd_folder = tmp_path / "RIFE_HD"
    hd_folder.mkdir()
    net = build_network(get_model("hd").spec)
    for name, prefix in get_model("hd").spec.files:
        torch.save({f"module.{k.removeprefix(prefix)}": v for k, v in net.state_dict().items() if k.startswith(prefix)},
                   hd_folder / name)  # fmt: skip
    code, out, err = cli(capsys, "models", "import", hd_folder, "--model", "hd")
    assert code == 0, err
    assert sorted(p.name for p in (model_store / "hd").iterdir()) == ["contextnet.pkl", "flownet.pkl", "unet.pkl"]
    code, _, err = cli(capsys, "models", "import", tmp_path, "--model", "4.6")
    assert code == 2 and "holds none of 4.6's files (flownet.pkl)" in err

    assert cli(capsys, "models", "import", fake_v46, "--model", "4.6")[0] == 0
    (model_store / "4.6" / "flownet.pkl").write_bytes(fake_v46.read_bytes()[:5000])
    code, out, _ = cli(capsys, "models", "verify", "4.6")
    assert code == 1 and "does not load as 4.6 (no published sha256)" in out and "None" not in out

    env = {**os.environ, "VSRIFE_MODEL_DIR": str(model_store)}
    command = f"'{vsrife_executable()}' models list | head -1"
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, env=env)
    assert proc.stdout.startswith("NAME") and "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr
