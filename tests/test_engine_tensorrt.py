"""``trt``: what runs without a GPU - the exported graph TensorRT is built from, the engine cache and its
keys, the per-layout engine wrapper (with torch.export's save/load standing in for torch-tensorrt's
compile/save/load, the only calls not run here) and the argument errors. Building and running real
engines is in ``tests/test_cuda.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from helpers.checkpoints import seeded_checkpoint
from torch._subclasses.fake_tensor import FakeTensor

import vsrife.arch.warp as warp
import vsrife.engine.tensorrt as trt_module
from vsrife.arch import build_network
from vsrife.engine import Interpolator
from vsrife.engine.tensorrt import (
    ENGINE_SUFFIX,
    EngineCache,
    ExportedCall,
    TensorRTNetwork,
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


def _small_prepared(engine: Interpolator, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _pair()
    f0, f1 = engine.prepare(a[..., :96, :width]), engine.prepare(b[..., :96, :width])
    return f0.image, f1.image


def _exported_backend(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str]) -> list[Path]:
    """TensorRTNetwork with torch.export's own save/load where torch-tensorrt compiles and saves: everything
    but the TensorRT build itself. Returns the list of files built."""
    built: list[Path] = []

    def build(program: torch.export.ExportedProgram, inputs: object, device: object, path: Path) -> None:
        built.append(path)
        torch.export.save(program, path)

    monkeypatch.setattr(trt_module, "tensorrt_versions", lambda: dict(versions))
    monkeypatch.setattr(trt_module, "build_engine", build)
    monkeypatch.setattr(trt_module, "load_engine", lambda path: torch.export.load(path).module())
    return built


def test_engine_per_layout_built_once_then_loaded_by_later_engines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = _exported_backend(monkeypatch, {"tensorrt": "11.1.0", "torch_tensorrt": "2.14.0"})
    engine = Interpolator("3.6", device="cpu", precision="fp32", winograd=False)

    def network() -> TensorRTNetwork:
        call = ExportedCall(engine.network, dtype=engine.dtype, scale=engine.scale, ensemble=engine.ensemble)
        return TensorRTNetwork(call, engine.device, EngineCache(tmp_path), {"model": engine.name})

    first = network()
    t = torch.full((1,), 0.5)
    img0, img1 = _small_prepared(engine, 128)
    out = first(img0, img1, t, None, None)
    assert out is not None and first.builds == 1 and first.disabled is None
    with torch.no_grad():
        assert (out.clamp(0, 1) - engine._forward(img0, img1, 0.5, None, None)).abs().max().item() < 1e-5
    again = first(img0, img1, t, None, None)
    assert again is not None and torch.equal(again, out) and first.builds == 1  # the loaded module is kept
    wide0, wide1 = _small_prepared(engine, 160)
    assert first(wide0, wide1, t, None, None) is not None and first.builds == 2  # another size, another engine
    assert len(list(tmp_path.glob(f"*{ENGINE_SUFFIX}"))) == 2 and not list(tmp_path.glob("*.partial"))

    later = network()  # a new process, a re-created filter: loads, builds nothing
    loaded = later(img0, img1, t, None, None)
    assert later.builds == 0 and loaded is not None and torch.equal(loaded, out)
    assert len(built) == 2

    _exported_backend(monkeypatch, {"tensorrt": "11.2.0", "torch_tensorrt": "2.14.0"})
    upgraded = network()  # engines of another TensorRT are not used
    assert upgraded(img0, img1, t, None, None) is not None and upgraded.builds == 1


def test_engine_build_failure_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _exported_backend(monkeypatch, {"tensorrt": "11.1.0", "torch_tensorrt": "2.14.0"})
    attempts: list[int] = []

    def unsupported(*args: object) -> None:
        attempts.append(1)
        raise RuntimeError("no converter for aten.foo\nmore detail")

    monkeypatch.setattr(trt_module, "build_engine", unsupported)
    engine = Interpolator("3.6", device="cpu", precision="fp32", winograd=False)
    call = ExportedCall(engine.network, dtype=engine.dtype, scale=engine.scale, ensemble=engine.ensemble)
    net = TensorRTNetwork(call, engine.device, EngineCache(tmp_path), {"model": engine.name})
    img0, img1 = _small_prepared(engine, 128)
    t = torch.full((1,), 0.5)
    assert net(img0, img1, t, None, None) is None  # the caller runs the network eagerly
    assert net.disabled == "RuntimeError: no converter for aten.foo"
    assert net(img0, img1, t, None, None) is None and len(attempts) == 1  # not retried every frame
    assert list(tmp_path.iterdir()) == []

    def out_of_memory(*args: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory while building")

    monkeypatch.setattr(trt_module, "build_engine", out_of_memory)
    net = TensorRTNetwork(call, engine.device, EngineCache(tmp_path), {"model": engine.name})
    with pytest.raises(torch.OutOfMemoryError):  # a real resource problem is the user's to see
        net(img0, img1, t, None, None)
