"""TensorRT for the network call (torch-tensorrt, extra ``trt``), with an on-disk engine cache.

The network is exported once per input layout (``torch.export``: one static graph of the whole
interpolation, precision casts included), compiled by torch-tensorrt into TensorRT engines and saved
as an ExportedProgram file. Building takes minutes, so engines are cached on disk under a key of
everything that makes an engine valid: the network's weights and placement (precision, memory
format, inference layout), the call (scale, ensemble, input shapes and dtypes), the GPU (name,
compute capability), the software (TensorRT, torch-tensorrt, torch) and vsrife's network code. Any
change builds a new engine; the old file stays until removed (the cache is a plain folder).

Where building or loading fails (an unsupported operation, out of memory while building, an old
file from another TensorRT), the engine logs why and runs the PyTorch network eagerly, as
:class:`~vsrife.engine.compiled.CompiledNetwork` does for ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vsrife.arch import RIFENet

__all__ = [
    "ENGINE_SUFFIX",
    "EngineCache",
    "ExportedCall",
    "TensorRTNetwork",
    "build_engine",
    "default_cache_dir",
    "engine_key",
    "export_network",
    "load_engine",
    "network_digest",
    "tensorrt_versions",
]

ENGINE_SUFFIX = ".trt.pt2"
_log = logging.getLogger("vsrife")


def default_cache_dir() -> Path:
    """``<user cache>/vsrife/engines`` (beside the model store; never inside site-packages)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vsrife", appauthor=False)) / "engines"


def tensorrt_versions() -> dict[str, str]:
    """Versions of torch-tensorrt and TensorRT; ``ValueError`` naming the extra when they are missing."""
    try:
        import tensorrt
        import torch_tensorrt  # noqa: F401  (registers the TensorRT runtime ops with torch)
    except Exception as exc:  # ImportError, or a library that fails to load (OSError, RuntimeError)
        raise ValueError(
            f"trt=True needs torch-tensorrt and TensorRT (pip install 'vsrife[trt]'); importing them failed: {exc}"
        ) from exc
    return {"torch_tensorrt": importlib.metadata.version("torch-tensorrt"), "tensorrt": str(tensorrt.__version__)}


@functools.cache
def _code_digest() -> str:
    """sha256 of vsrife's network code (``arch`` and this module's export): other code, another engine."""
    here = Path(__file__).resolve()
    h = hashlib.sha256()
    for path in [*sorted((here.parents[1] / "arch").glob("*.py")), here]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def network_digest(net: nn.Module) -> str:
    """sha256 over a network's parameters and buffers (names, shapes, dtypes, values) as placed."""
    h = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        h.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        h.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def engine_key(fields: Mapping[str, object]) -> str:
    """A file-name-safe key (hex sha256) of ``fields`` (JSON-serialisable values; order does not matter)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class EngineCache:
    """A folder of built engines, one file per key; files appear whole or not at all."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.folder / f"{key[:40]}{ENGINE_SUFFIX}"

    def get_or_build(self, key: str, load: Callable[[Path], Any], build: Callable[[Path], None]) -> tuple[Any, bool]:
        """``load(path)`` of the file under ``key``, after ``build(path)`` writes it if missing.

        The file is written under a temporary name in the same folder and renamed into place, so a
        crash or a second process building the same engine never leaves a partial file under the key.
        Returns (loaded, built). A file that fails to load is rebuilt once.
        """
        path = self.path(key)
        if path.is_file():
            try:
                return load(path), False
            except Exception as exc:  # another TensorRT's file, a truncated copy: build it again
                _log.warning("vsrife: cached engine %s unusable (%s: %s); rebuilding", path, type(exc).__name__, exc)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.folder, prefix=f".{key[:12]}-", suffix=".partial")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            build(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return load(path), True


class ExportedCall(nn.Module):
    """The network call as one module with tensor inputs only, precision casts inside (what gets exported).

    ``forward(img0, img1, t, *features)``: ``t`` a (1,) float32 tensor (ignored by models without
    a timestep input, which run at t = 1/2); ``features`` the two encoder outputs of 4.7+ models.
    """

    def __init__(self, network: RIFENet, *, dtype: torch.dtype, scale: float, ensemble: bool) -> None:
        super().__init__()
        self.network = network
        self.dtype = dtype
        self.scale = scale
        self.ensemble = ensemble

    def forward(self, img0: Tensor, img1: Tensor, t: Tensor, *features: Tensor) -> Tensor:
        feat0, feat1 = features if features else (None, None)
        time: Tensor | float = t if self.network.spec.timestep_input else 0.5
        with self._precision(img0.device.type):
            out = self.network(img0, img1, time, scale=self.scale, ensemble=self.ensemble, feat0=feat0, feat1=feat1)
        return out.float()

    @contextlib.contextmanager
    def _precision(self, device_type: str) -> Iterator[None]:
        if self.dtype == torch.float32:
            yield
        else:
            with torch.autocast(device_type, dtype=self.dtype):
                yield


def export_network(call: ExportedCall, inputs: tuple[Tensor, ...]) -> torch.export.ExportedProgram:
    """``torch.export`` of ``call`` for exactly these input shapes (static: one engine per frame size)."""
    with torch.no_grad():
        return torch.export.export(call, inputs)


def _layout(inputs: tuple[Tensor, ...]) -> tuple[object, ...]:
    """Shapes, dtypes and memory formats: what an engine is built for."""
    return tuple((tuple(x.shape), str(x.dtype), x.is_contiguous(memory_format=torch.channels_last)) for x in inputs)


def _gpu(device: torch.device) -> dict[str, object]:
    if device.type != "cuda":
        return {"type": device.type}
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}", "memory": props.total_memory}


class TensorRTNetwork:
    """Runs the network through a cached TensorRT engine per input layout; eager after a failure.

    ``base`` holds the key fields of the engine's placement; the weights' digest, the input layout,
    the GPU and the software versions are added here. The Interpolator creates it on CUDA only.
    """

    def __init__(
        self, call: ExportedCall, device: torch.device, cache: EngineCache, base: Mapping[str, object]
    ) -> None:
        self.versions = tensorrt_versions()  # fails early, with the extra's name, where it is missing
        self.call = call
        self.device = device
        self.cache = cache
        self.base = dict(base)
        self.disabled: str | None = None
        self.builds = 0
        self._weights: str | None = None
        self._modules: dict[tuple[object, ...], Callable[..., Tensor]] = {}

    def key(self, inputs: tuple[Tensor, ...]) -> str:
        """The cache key of the engine for these inputs."""
        if self._weights is None:
            self._weights = network_digest(self.call.network)
        return engine_key(
            {
                **self.base,
                "weights": self._weights,
                "inputs": _layout(inputs),
                "gpu": _gpu(self.device),
                "torch": torch.__version__,
                **self.versions,
                "code": _code_digest(),
            }
        )

    def __call__(
        self, img0: Tensor, img1: Tensor, t: Tensor, feat0: Tensor | None, feat1: Tensor | None
    ) -> Tensor | None:
        """The network output, or ``None`` when TensorRT is off for this engine (run eagerly then)."""
        if self.disabled is not None:
            return None
        inputs = (img0, img1, t) if feat0 is None or feat1 is None else (img0, img1, t, feat0, feat1)
        layout = _layout(inputs)
        module = self._modules.get(layout)
        if module is None:
            try:
                module = self._engine(self.key(inputs), inputs)
            except Exception as exc:
                if isinstance(exc, torch.OutOfMemoryError):
                    raise
                first_line = (str(exc).strip().splitlines() or [""])[0]
                self.disabled = f"{type(exc).__name__}: {first_line[:300]}"
                _log.warning("vsrife: TensorRT disabled, running eagerly (%s)", self.disabled)
                return None
            self._modules[layout] = module
        return module(*inputs)

    def _engine(self, key: str, inputs: tuple[Tensor, ...]) -> Callable[..., Tensor]:
        def build(path: Path) -> None:
            _log.warning("vsrife: building TensorRT engine %s (minutes; cached in %s)", key[:12], self.cache.folder)
            build_engine(export_network(self.call, inputs), inputs, self.device, path)
            self.builds += 1

        module, _ = self.cache.get_or_build(key, load_engine, build)
        return module


def build_engine(program: torch.export.ExportedProgram, inputs: tuple[Tensor, ...], device: torch.device,
                 path: Path) -> None:  # fmt: skip
    """Compile ``program`` with torch-tensorrt for exactly ``inputs`` and save it to ``path``."""
    import torch_tensorrt

    compiled = torch_tensorrt.dynamo.compile(
        program,
        arg_inputs=list(inputs),
        device=device,
        min_block_size=1,
        disable_tf32=True,  # fp32 means fp32, as in the eager engine (TensorRT would round to TF32)
        immutable_weights=True,  # weights never change: TensorRT may fold them
        cache_built_engines=False,  # our cache: its key includes what torch-tensorrt's leaves out
        reuse_cached_engines=False,
    )
    torch_tensorrt.save(compiled, str(path), output_format="exported_program", arg_inputs=list(inputs))


def load_engine(path: Path) -> Callable[..., Tensor]:
    """The module saved by :func:`build_engine` (torch-tensorrt registers the engine-running op)."""
    import torch_tensorrt

    module: Callable[..., Tensor] = torch_tensorrt.load(str(path)).module()
    return module
