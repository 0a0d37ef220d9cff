"""Shared pytest fixtures (keep this file small and generic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture
def model_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private model store: ``$VSRIFE_MODEL_DIR`` points at it, no mirror is configured."""
    root = tmp_path / "model-store"
    root.mkdir()
    monkeypatch.setenv("VSRIFE_MODEL_DIR", str(root))
    monkeypatch.delenv("VSRIFE_MODEL_MIRROR", raising=False)
    return root


@pytest.fixture(scope="module")
def official_v36() -> Path:
    """The user's installed v3.6 flownet.pkl (fetched by scripts/setup.sh), found before ``model_store`` points
    the store elsewhere (module scope: set up before any test's environment changes)."""
    from vsrife.models import locate

    folder = locate("3.6")
    if folder is None:
        pytest.skip("model 3.6 is not installed (run ./scripts/setup.sh or `vsrife models fetch 3.6`)")
    return folder / "flownet.pkl"


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One torch intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("single_thread")``).

    On a shared 2-core machine two contended OpenMP threads can run ~10x slower than one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- filter / e2e / mpv tests


@pytest.fixture(scope="session")
def bs_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private BestSource index folder for the session: ``$VSRIFE_BS_CACHE`` points at it."""
    folder = tmp_path_factory.mktemp("bsindex")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSRIFE_BS_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def sample_clip(bs_cache: Path):
    """``sample_clip(name)``: sample video ``name`` (bigbuckbunny, bikes, carphone) opened with BestSource."""
    vs = pytest.importorskip("vapoursynth")
    if not hasattr(vs.core, "bs"):
        pytest.skip("BestSource (core.bs) is not installed")
    from vsrife.filter.source import open_video
    from vsrife.samples import sample_path

    def _open(name: str):
        return open_video(sample_path(name))

    return _open
