"""``trt``: what runs without a GPU - the exported graph TensorRT is built from, the engine cache and its
keys, and the argument errors. Building and running engines is in ``tests/test_cuda.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from helpers.checkpoints import seeded_checkpoint
from torch._subclasses.fake_tensor import FakeTensor

import vsrife.arch.warp as warp
from vsrife.arch import build_network
from vsrife.engine import Interpolator
from vsrife.engine.tensorrt import (
    ENGINE_SUFFIX,
    EngineCache,
    ExportedCall,
    engine_key,
    export_network,
    network_digest,
    tensorrt_versions,
)
from vsrife.media import read_frames
from vsrife.models import get_model
from vsrife.quality import psnr, to_tensor
from vsrife.samples import sample_path

# A real 512x256 crop: 131,072 pixels, above the size where CPU warps split into row strips.
LEFT, TOP, WIDTH, HEIGHT = 64, 0, 512, 256


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    frames = read_frames(sample_path("bikes"), count=3)[:, TOP : TOP + HEIGHT, LEFT : LEFT + WIDTH]
    return to_tensor(frames[0]), to_tensor(frames[2])


@pytest.mark.parametrize(
    ("version", "precision"), [("3.6", "fp32"), ("3.6", "bf16"), ("4.25", "fp32"), ("4.6", "bf16")]
)
def test_exported_graph_is_the_engines_computation(version: str, precision: str, tmp_path: Path) -> None:
    """The graph handed to TensorRT computes the engine's frame (fp32: the same values; bf16: the same
    picture), t included for 4.x, encoder features as inputs for 4.7+; exporting leaves no traced grid
    behind for eager calls (it once cached a fake tensor that broke the next eager warp), and the row
    strips of CPU warps stay out of the trace (their worker threads cannot run traced tensors)."""
    if precision == "bf16" and not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN bf16")
    path = None if version == "3.6" else str(seeded_checkpoint(version, tmp_path))
    engine = Interpolator(version, model_path=path, device="cpu", precision=precision, winograd=False)
    a, b = _pair()
    f0, f1 = engine.prepare(a), engine.prepare(b)
    t = 0.5 if version == "3.6" else 0.3
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # row strips would run in worker threads: the trace must not
    warp.clear_grid_cache()  # the trace comes first: it must not leave its (fake) grids for eager calls
    try:
        call = ExportedCall(engine.network, dtype=engine.dtype, scale=engine.scale, ensemble=engine.ensemble)
        inputs = (f0.image, f1.image, torch.full((1,), t))
        if f0.features is not None and f1.features is not None:
            inputs += (f0.features, f1.features)
        program = export_network(call, inputs)
        with torch.no_grad():
            exported = program.module()(*inputs).clamp(0, 1)[:, :, :HEIGHT, :WIDTH]
        before = engine.interpolate_prepared(f0, f1, t)
    finally:
        torch.set_num_threads(threads)
    assert warp.cached_grids() and not any(isinstance(g, FakeTensor) for g in warp.cached_grids())
    diff = (exported - before).abs().max().item()
    if precision == "fp32":
        assert diff < 1e-5, diff
    else:  # the traced graph casts where autocast does; fused differently, a few pixels round differently
        assert diff < 0.05 and psnr(exported, before) > 50.0, diff
    # The frames are inputs of the graph, not constants traced into it: other frames, another output.
    still = (inputs[0], inputs[0], inputs[2], *([inputs[3], inputs[3]] if len(inputs) > 3 else []))
    with torch.no_grad():
        other = program.module()(*still).clamp(0, 1)[:, :, :HEIGHT, :WIDTH]
    assert (other - exported).abs().max().item() > 0.01


def test_engine_key_depends_on_every_field_not_their_order() -> None:
    fields = {"model": "4.6", "dtype": "torch.float16", "inputs": [[1, 3, 1088, 1920]], "gpu": {"name": "H100"}}
    key = engine_key(fields)
    assert key == engine_key(dict(reversed(list(fields.items()))))
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)
    for name, other in [("model", "4.25"), ("dtype", "torch.bfloat16"), ("inputs", [[1, 3, 736, 1280]]),
                        ("gpu", {"name": "H200"})]:  # fmt: skip
        assert engine_key({**fields, name: other}) != key, name
    assert engine_key({**fields, "tensorrt": "11.1.0"}) != engine_key({**fields, "tensorrt": "11.2.0"})


def test_network_digest_tracks_weights_and_placement() -> None:
    torch.manual_seed(0)
    net = build_network(get_model("4.6").spec)
    digest = network_digest(net)
    assert digest == network_digest(net)
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] += 1e-3
    assert network_digest(net) != digest
    assert network_digest(net.half()) != network_digest(net.float())


def test_engine_cache_builds_once_then_loads(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    builds: list[Path] = []

    def build(path: Path) -> None:
        builds.append(path)
        path.write_bytes(b"engine")

    loaded, built = cache.get_or_build("ab" * 32, lambda p: p.read_bytes(), build)
    assert (loaded, built) == (b"engine", True)
    again, built = cache.get_or_build("ab" * 32, lambda p: p.read_bytes(), build)
    assert (again, built) == (b"engine", False) and len(builds) == 1
    assert [p.name for p in (tmp_path / "engines").iterdir()] == [f"{'ab' * 20}{ENGINE_SUFFIX}"]
    assert builds[0].parent == cache.folder and builds[0] != cache.path("ab" * 32)  # written aside, then renamed


def test_engine_cache_never_keeps_partial_files(tmp_path: Path) -> None:
    """A build that fails leaves nothing under the key (the next run builds again); a file that fails to
    load (another TensorRT's, truncated) is built again."""
    cache = EngineCache(tmp_path)

    def broken(path: Path) -> None:
        path.write_bytes(b"half an eng")
        raise RuntimeError("builder ran out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get_or_build("cd" * 32, lambda p: p.read_bytes(), broken)
    assert list(tmp_path.iterdir()) == []

    cache.path("cd" * 32).write_bytes(b"stale")

    def load(path: Path) -> bytes:
        data = path.read_bytes()
        if data == b"stale":
            raise ValueError("serialized engine from TensorRT 10")
        return data

    loaded, built = cache.get_or_build("cd" * 32, load, lambda p: p.write_bytes(b"fresh"))
    assert (loaded, built) == (b"fresh", True)


def test_default_cache_is_in_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert EngineCache().folder == tmp_path / "vsrife" / "engines"
    assert EngineCache("~/x").folder == Path.home() / "x"


def test_trt_argument_errors() -> None:
    with pytest.raises(ValueError, match="trt and torch_compile exclude each other"):
        Interpolator(device="cpu", trt=True, torch_compile=True)
    with pytest.raises(ValueError, match="trt needs a CUDA device, got device 'cpu'"):
        Interpolator(device="cpu", trt=True)


@pytest.mark.skipif(importlib.util.find_spec("torch_tensorrt") is not None, reason="torch-tensorrt is installed")
def test_missing_tensorrt_names_the_extra() -> None:
    with pytest.raises(ValueError, match=r"trt=True needs torch-tensorrt and TensorRT \(pip install 'vsrife\[trt\]'\)"):
        tensorrt_versions()
