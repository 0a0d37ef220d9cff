"""Interpolator: the torch-level engine under the VapourSynth filter (and usable without it).

It owns a loaded network and does everything around it: input checks, padding to the model's
size multiple and cropping back, precision (fp32 / fp16 / bf16 autocast), memory format,
arbitrary timesteps for models without a timestep input, and a bounded per-source-frame cache
(padded tensors and 4.7+ encoder features), so each source frame is prepared once however many
output frames use it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from vsrife.arch import RIFENet, widen
from vsrife.arch.winograd import WinogradConv2d, use_winograd
from vsrife.engine import devices
from vsrife.engine.compiled import CompiledNetwork
from vsrife.engine.devices import resolve_device, resolve_precision
from vsrife.engine.graphs import CudaGraphs
from vsrife.engine.tensorrt import EngineCache, ExportedCall, TensorRTNetwork
from vsrife.models import store
from vsrife.models.loading import LoadedModel, load_model, resolve_files
from vsrife.models.registry import DEFAULT_MODEL, get_model

__all__ = ["SCALES", "TIMESTEP_MODES", "Interpolator", "PreparedFrame"]

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
TIMESTEP_MODES = ("auto", "native", "linear", "bisect")
_RANGE_TOLERANCE = 1e-3
_BISECT_DEPTH = 4  # 3.5 network calls per frame for 1/3 + 2/3; keeps most of depth 6's gain
# Bisection midpoints are kept for this many pairs (most recently used): a pair's output frames are asked
# for close together, and each midpoint is a full padded frame (25 MB at 1080p in fp32, 100 MB at 4K).
_MID_PAIRS = 2


@dataclass
class PreparedFrame:
    """A source frame ready for the network: padded, on the device, plus encoder features."""

    image: Tensor
    features: Tensor | None
    height: int
    width: int


class Interpolator:
    """Batched frame interpolation with one RIFE model.

    Args:
        model: version name, an already loaded model, or ``None`` for the offline default.
        model_path: checkpoint file or folder (see :func:`vsrife.models.load_model`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"auto"``, ``"fp32"``, ``"fp16"`` (CUDA) or ``"bf16"``.
        scale: flow estimation at ``scale`` x resolution (0.5 for 4K, 2.0 for small frames).
        ensemble: average with a second, mirrored pass (slower, smoother in hard areas).
        timestep_mode: how t != 0.5 is produced for models without a timestep input
            (``bisect``, the default: recursive halving, 4 levels; ``linear``: rescale the t = 0.5 flows,
            one network call per frame); 4.x models take t as an input.
        cache_frames: how many prepared source frames to keep (LRU).
        channels_last: NHWC memory format for the network (default: on unless the precision is fp32 on CUDA
            or "fp32" asked for); on the CPU frames and the glue between convolutions stay NCHW (faster there).
        cuda_graphs: replay captured CUDA graphs of the network (default: on for CUDA; results are
            the same as eager, launches are cheaper). Off automatically where capture fails.
        inference_layout: zero-pad block inputs (on CUDA only) and hidden widths that are not multiples
            of 8 (90 -> 96 in v3.6) so fp16 / bf16 convolutions get tensor-core / AMX kernels, and fold ResConv gains
            into the convolutions; same results up to rounding (default: on in half precision, off in
            fp32, which keeps the official computation). See :mod:`vsrife.arch.widen`.
        keep_freed_memory: on CPU, have glibc keep freed large blocks for reuse instead of unmapping
            and page-faulting them in again each forward pass (1.35x at 720p; process-wide: threads
            share one heap, memory goes back to the system at exit). ``None``: from the first
            prepared frame whose size is in ``KEEP_FREED_PIXELS`` on; ``True``: now (before
            worker threads start, as the filter does for such clips). See
            :func:`vsrife.engine.devices.keep_freed_memory`.
        torch_compile: run the network through ``torch.compile`` (inductor fuses the memory-bound
            glue between convolutions; opt-in: a compile per frame size, seconds to minutes). Falls
            back to eager where compiling fails; see :attr:`torch_compile` and :mod:`vsrife.engine.compiled`.
        winograd: on CPU in fp32, run the 3x3 stride-1 convolutions with NNPACK's Winograd kernels
            (about 2x fewer operations; outputs within ~1e-4 of the direct convolution). Default: on
            for the families where it was measured to pay (``WINOGRAD_FAMILIES``: HD v3.x) when
            ``precision`` is ``"auto"`` and resolves to fp32 on a CPU without AVX-512 (see
            :func:`~vsrife.engine.devices.cpu_prefers_winograd`), without ``torch_compile``; an explicit
            ``"fp32"`` keeps the official computation; ``True`` for any family. Off where this PyTorch
            build has no NNPACK (see :attr:`winograd`). With it, HD v3.x blocks also run their two
            directions side by side on half of the calling thread's cores each (bit-identical; 1.16x
            at 720p on two cores). See :mod:`vsrife.arch.winograd`.
        trt: run the network as TensorRT engines built by torch-tensorrt (CUDA; extra ``trt``): one
            build of minutes per model, frame size, precision, GPU and TensorRT version, cached on disk
            in ``trt_cache_dir`` (default ``<user cache>/vsrife/engines``). CUDA graphs default to off
            with it. Falls back to eager where building fails; see :attr:`tensorrt` and
            :mod:`vsrife.engine.tensorrt`.
        trt_cache_dir: folder of built TensorRT engines.
    """

    def __init__(
        self,
        model: str | LoadedModel | None = None,
        *,
        model_path: str | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        scale: float = 1.0,
        ensemble: bool = False,
        timestep_mode: str = "auto",
        cache_frames: int = 8,
        channels_last: bool | None = None,
        cuda_graphs: bool | None = None,
        inference_layout: bool | None = None,
        keep_freed_memory: bool | None = None,
        torch_compile: bool = False,
        winograd: bool | None = None,
        trt: bool = False,
        trt_cache_dir: str | Path | None = None,
    ) -> None:
        if isinstance(scale, bool) or scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")
        if timestep_mode not in TIMESTEP_MODES:
            raise ValueError(f"timestep_mode must be one of {', '.join(TIMESTEP_MODES)}, got {timestep_mode!r}")
        if isinstance(cache_frames, bool) or not isinstance(cache_frames, int) or cache_frames < 2:
            raise ValueError(f"cache_frames must be at least 2 (an integer), got {cache_frames!r}")
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        precision = str(precision).strip().lower()  # as resolve_precision read it
        if trt and torch_compile:
            raise ValueError("trt and torch_compile exclude each other (TensorRT builds its own kernels)")
        if trt and self.device.type != "cuda":
            raise ValueError(f"trt needs a CUDA device, got device {str(self.device)!r}")
        self._tune_on_large = keep_freed_memory is None and self.device.type == "cpu"
        if self.device.type == "cpu":
            devices.share_heaps()  # before worker threads allocate: one heap does not fragment across threads
            if keep_freed_memory:
                devices.keep_freed_memory()
        if channels_last is None:
            # channels_last is much faster on CPU and for fp16/bf16 tensor-core convolutions on CUDA,
            # but sums in a different order; fp32 keeps the official memory layout so results match
            # the reference implementation.
            channels_last = precision != "fp32" and not (self.device.type == "cuda" and self.dtype == torch.float32)
        self.channels_last = channels_last
        if inference_layout is None:
            inference_layout = self.dtype != torch.float32
        self.inference_layout = bool(inference_layout)
        wino = self._winograd_choice(winograd, precision, torch_compile)
        weight_dtype = self.dtype if self.device.type == "cuda" else torch.float32
        place = _Placement(self.device, weight_dtype, channels_last, self.inference_layout, wino)
        if isinstance(model, LoadedModel):
            loaded = model
            # ``.to`` converts a module in place: never change the caller's network (another engine may use it)
            net = _place(copy.deepcopy(model.network), place)
        else:
            try:
                loaded, net = _shared_network(model, model_path, place)
            except KeyError as exc:  # an unknown version name
                raise ValueError(exc.args[0]) from None
        self.loaded = loaded
        self.spec = loaded.info.spec
        self._winograd = any(isinstance(m, WinogradConv2d) for m in net.modules())
        if ensemble and self.spec.ensemble == "none":
            raise ValueError(f"ensemble is not supported by model {loaded.name} (Practical-RIFE 4.21 and later)")
        if trt and self.spec.large_motion_restart:
            raise ValueError(f"trt is not supported by model {loaded.name} (large-motion restart is a host decision)")
        if timestep_mode == "native" and not self.spec.timestep_input:
            raise ValueError(f'timestep_mode "native" needs a 4.x model; {loaded.name} has no timestep input')
        self.scale = float(scale)
        self.ensemble = bool(ensemble)
        self.timestep_mode: Literal["native", "linear", "bisect"]
        if self.spec.timestep_input:
            self.timestep_mode = "native"
        else:
            # Measured on real footage (README): bisection beats flow rescaling at t = 1/3, 2/3.
            self.timestep_mode = "bisect" if timestep_mode in ("auto", "native") else timestep_mode  # type: ignore[assignment]
        self.network = net
        self._compiled = CompiledNetwork(net) if torch_compile else None
        self.multiple = self.spec.pad_multiple(self.scale)
        self._cache: OrderedDict[Hashable, PreparedFrame] = OrderedDict()
        self._mids: OrderedDict[Hashable, dict[str, PreparedFrame]] = OrderedDict()  # pair key -> path -> mid
        self._cache_frames = cache_frames
        self._lock = threading.RLock()
        self._trt = self._tensorrt(trt_cache_dir) if trt else None
        if cuda_graphs is None:
            cuda_graphs = self.device.type == "cuda" and not trt
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"cuda_graphs needs a CUDA device, got device {str(self.device)!r}")
        # 4.0/4.1 decide on the host whether to restart at doubled scales: not capturable.
        self._graphs = (
            CudaGraphs(self._graph_call, self.device) if cuda_graphs and not self.spec.large_motion_restart else None
        )

    # ------------------------------------------------------------------ public API

    @property
    def name(self) -> str:
        """Version name of the loaded model."""
        return self.loaded.name

    def interpolate(self, img0: Tensor, img1: Tensor, t: float | Sequence[float] | Tensor = 0.5) -> Tensor:
        """Frames at times ``t`` between ``img0`` and ``img1``.

        ``img0``/``img1``: RGB float tensors in [0, 1], (3, H, W) or (N, 3, H, W), any size.
        ``t``: one value or one per batch item, each in [0, 1]. t = 0 and t = 1 return the
        inputs exactly. The result has the inputs' shape, dtype and device.
        """
        a, squeeze = self._check_image("img0", img0)
        b, _ = self._check_image("img1", img1)
        if img0.shape != img1.shape:  # as given: (3, H, W) and (1, 3, H, W) do not pair either
            raise ValueError(f"img0 and img1 must have the same shape, got {tuple(img0.shape)} and {tuple(img1.shape)}")
        ts = self._check_t(t, a.shape[0])
        out = torch.empty_like(a)
        for i, ti in enumerate(ts):
            if ti == 0.0:
                out[i] = a[i]
            elif ti == 1.0:
                out[i] = b[i]
            else:
                with self._lock:
                    f0 = self.prepare(a[i : i + 1])
                    f1 = self.prepare(b[i : i + 1])
                    out[i] = self.interpolate_prepared(f0, f1, ti)[0].to(out.device, out.dtype)
        return out[0] if squeeze else out

    def cached(self, key: Hashable) -> PreparedFrame | None:
        """The prepared frame stored under ``key``, if still cached."""
        with self._lock:
            frame = self._cache.get(key)
            if frame is not None:
                self._cache.move_to_end(key)
            return frame

    def prepare(self, image: Tensor, key: Hashable | None = None) -> PreparedFrame:
        """Pad and upload one (1, 3, H, W) frame and compute its encoder features; cached by ``key``.

        The image is assumed valid (the filter produces it); use :meth:`interpolate` for checks.
        """
        with self._lock:
            if key is not None and key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            h, w = image.shape[2:]
            ph, pw = _round_up(h, self.multiple), _round_up(w, self.multiple)
            if self._tune_on_large and devices.keeps_freed_memory_for(ph * pw):
                self._tune_on_large = False
                devices.keep_freed_memory()
            # out of place: ``image`` may be the caller's tensor (``.to``/``.float`` return it unchanged)
            x = image.to(self.device, non_blocking=True).float().clamp(0.0, 1.0)
            if (ph, pw) != (h, w):
                x = F.pad(x, (0, pw - w, 0, ph - h))
            x = self._frame_layout(x)
            feats = None
            if self.network.has_encoder:
                with self._inference():
                    feats = self._frame_layout(self.network.encode(x))
            frame = PreparedFrame(x, feats, h, w)
            if key is not None:
                self._cache[key] = frame
                while len(self._cache) > self._cache_frames:
                    self._cache.popitem(last=False)
            return frame

    def interpolate_prepared(
        self, f0: PreparedFrame, f1: PreparedFrame, t: float, key: Hashable | None = None
    ) -> Tensor:
        """Interpolated frame (1, 3, H, W) in float32 on the engine's device, cropped to the input size.

        ``key`` identifies the (f0, f1) pair so bisection can reuse midpoints across calls.
        """
        if f0.image.shape != f1.image.shape or (f0.height, f0.width) != (f1.height, f1.width):
            raise ValueError("frames of one interpolation must have the same size")
        if not 0.0 <= t <= 1.0 or math.isnan(t):
            raise ValueError(f"t must be in [0, 1], got {t}")
        with self._lock:
            if t == 0.0:
                out = f0.image
            elif t == 1.0:
                out = f1.image
            elif self.timestep_mode == "bisect":
                out = self._bisect(f0, f1, t, key)  # t = 0.5 too, so the first midpoint is cached and shared
            else:
                out = self._run(f0, f1, t)
            return out[:, :, : f0.height, : f0.width].float()

    def clear_cache(self) -> None:
        """Forget all prepared frames (frees device memory)."""
        with self._lock:
            self._cache.clear()
            self._mids.clear()

    # ------------------------------------------------------------------ internals

    def _winograd_choice(self, winograd: bool | None, precision: str, torch_compile: bool) -> bool | None:
        """The placement's Winograd setting: ``None`` where it pays (the network's family decides)."""
        cpu_fp32 = self.device.type == "cpu" and self.dtype == torch.float32
        if winograd is None:
            auto = precision == "auto"
            return None if cpu_fp32 and auto and not torch_compile and devices.cpu_prefers_winograd() else False
        if winograd and not cpu_fp32:
            raise ValueError(f"winograd needs fp32 on the CPU, got device {str(self.device)!r} and {self.dtype}")
        if winograd and torch_compile:
            raise ValueError("winograd and torch_compile exclude each other (inductor generates its own convolutions)")
        return bool(winograd)

    def _tensorrt(self, cache_dir: str | Path | None) -> TensorRTNetwork:
        """TensorRT engines of this network as placed (each built at the first frame of its size, or loaded)."""
        call = ExportedCall(self.network, dtype=self.dtype, scale=self.scale, ensemble=self.ensemble)
        fields = {
            "model": self.name,
            "dtype": str(self.dtype),
            "channels_last": self.channels_last,
            "inference_layout": self.inference_layout,
            "scale": self.scale,
            "ensemble": self.ensemble,
        }
        return TensorRTNetwork(call, self.device, EngineCache(cache_dir), fields)

    @property
    def cuda_graphs(self) -> str:
        """``"on"``, ``"off"`` or ``"disabled: <reason>"`` (capture failed; eager results are identical)."""
        if self._graphs is None:
            return "off"
        return "on" if self._graphs.disabled is None else f"disabled: {self._graphs.disabled}"

    @property
    def tensorrt(self) -> str:
        """``"on"``, ``"off"`` or ``"disabled: <reason>"`` (building failed; the network runs eagerly)."""
        if self._trt is None:
            return "off"
        return "on" if self._trt.disabled is None else f"disabled: {self._trt.disabled}"

    @property
    def winograd(self) -> bool:
        """Whether the network's 3x3 convolutions run NNPACK's Winograd kernels (CPU fp32)."""
        return self._winograd

    @property
    def torch_compile(self) -> str:
        """``"on"``, ``"off"`` or ``"disabled: <reason>"`` (compiling failed; eager results are the same network's)."""
        if self._compiled is None:
            return "off"
        return "on" if self._compiled.disabled is None else f"disabled: {self._compiled.disabled}"

    def _frame_layout(self, x: Tensor) -> Tensor:
        """Frames and features as the network's glue reads them best.

        On CUDA channels_last when the network is. On the CPU always NCHW, even for a channels_last
        network: there the full-resolution glue between the convolutions (bilinear resizes of few-channel
        maps, concatenations) runs up to 2x faster on NCHW, and each convolution converts its input
        itself (see :func:`vsrife.arch.layers.cpu_glue`; in bf16 at 720p 4.x 1.4x, v3.6 1.1x faster,
        the layout alone changing no value).
        """
        if self.channels_last and self.device.type == "cuda":
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    @contextlib.contextmanager
    def _inference(self, cache: bool = True) -> Iterator[None]:
        with torch.no_grad():
            if self.dtype == torch.float32 and self.device.type == "cuda":
                # fp32 means fp32: cuDNN would otherwise use TF32 (10-bit mantissa) for convolutions.
                with devices.ieee_fp32_convolutions():
                    yield
            elif self.dtype == torch.float32:
                yield
            else:
                # Graph capture needs autocast's weight-cast cache off (weights already have the dtype on CUDA).
                with torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=cache):
                    yield

    def _run(self, f0: PreparedFrame, f1: PreparedFrame, t: float) -> Tensor:
        if self._graphs is not None and (self.spec.timestep_input or t == 0.5):
            out = self._graphs(f0.image, f1.image, t, f0.features, f1.features)
            if out is not None:
                return out
        return self._forward(f0.image, f1.image, t, f0.features, f1.features)

    def _forward(
        self, img0: Tensor, img1: Tensor, t: Tensor | float, feat0: Tensor | None, feat1: Tensor | None,
        cache: bool = True,
    ) -> Tensor:  # fmt: skip
        """One network call under the engine's precision, clamped to [0, 1] in fp32."""
        if self._trt is not None and (self.spec.timestep_input or t == 0.5):
            with torch.no_grad():
                out = self._trt(img0, img1, _t_tensor(t, img0.device), feat0, feat1)
            if out is not None:
                return out.float().clamp_(0.0, 1.0)
        net: CompiledNetwork | RIFENet = self.network
        if self._compiled is not None:
            if self.spec.timestep_input:
                # t as a tensor: one compiled graph for every t (a Python float would be traced as a constant)
                net = self._compiled
                t = _t_tensor(t, img0.device)
            elif t == 0.5:
                # Families without a timestep input branch on t in Python (linear mode); the compiled
                # graph is traced at t = 0.5 only, other t run eagerly.
                net = self._compiled
        with self._inference(cache):
            out = net(img0, img1, t, scale=self.scale, ensemble=self.ensemble, feat0=feat0, feat1=feat1)
        if self.device.type == "cpu":
            devices.release_free_heap()  # rate-limited; keeps resident memory flat over long renders
        return out.float().clamp_(0.0, 1.0)

    def _graph_call(self, img0: Tensor, img1: Tensor, t: Tensor, feat0: Tensor | None, feat1: Tensor | None) -> Tensor:
        """The network call that :class:`CudaGraphs` captures (t as a device tensor for 4.x)."""
        return self._forward(img0, img1, t if self.spec.timestep_input else 0.5, feat0, feat1, cache=False)

    def _bisect(self, f0: PreparedFrame, f1: PreparedFrame, t: float, key: Hashable | None) -> Tensor:
        """Recursive halving: t is reached by a path of t = 0.5 steps; the last interval is blended."""
        lo, hi, a, b = 0.0, 1.0, f0, f1
        path = ""
        for _ in range(_BISECT_DEPTH):
            mid_t = (lo + hi) / 2
            if abs(t - mid_t) < 1e-9:
                return self._mid(a, b, key, path).image
            mid = self._mid(a, b, key, path)
            if t < mid_t:
                hi, b, path = mid_t, mid, path + "0"
            else:
                lo, a, path = mid_t, mid, path + "1"
        w = (t - lo) / (hi - lo)
        return a.image * (1 - w) + b.image * w

    def _mid(self, a: PreparedFrame, b: PreparedFrame, key: Hashable | None, path: str) -> PreparedFrame:
        """The t = 0.5 frame between ``a`` and ``b`` (``path``: the halvings from pair ``key`` to them)."""
        mids = None
        if key is not None:
            mids = self._mids.setdefault(key, {})
            self._mids.move_to_end(key)
            while len(self._mids) > _MID_PAIRS:
                self._mids.popitem(last=False)
            if path in mids:
                return mids[path]
        img = self._run(a, b, 0.5)
        frame = PreparedFrame(self._frame_layout(img), None, a.height, a.width)
        if mids is not None:
            mids[path] = frame
        return frame

    @staticmethod
    def _check_image(name: str, img: object) -> tuple[Tensor, bool]:
        if not isinstance(img, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(img).__name__}")
        if not img.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor with values in [0, 1], got dtype {img.dtype}")
        squeeze = img.dim() == 3
        x = img.unsqueeze(0) if squeeze else img
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{name} must have shape (3, H, W) or (N, 3, H, W) (RGB), got {tuple(img.shape)}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"{name} must not be empty, got shape {tuple(img.shape)}")
        lo, hi = torch.aminmax(x.detach().float())
        lo_v, hi_v = float(lo), float(hi)
        if not (math.isfinite(lo_v) and math.isfinite(hi_v)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if lo_v < -_RANGE_TOLERANCE or hi_v > 1 + _RANGE_TOLERANCE:
            raise ValueError(f"{name} values must lie in [0, 1], found min {lo_v:.4g} and max {hi_v:.4g}")
        return x, squeeze

    @staticmethod
    def _check_t(t: object, n: int) -> list[float]:
        def real(v: object) -> float:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):  # numpy scalars are Real; complex is not
                raise TypeError(f"t must be a number, a sequence of numbers or a tensor, got {t!r}")
            return float(v)

        if isinstance(t, (str, bytes)):
            raise TypeError(f"t must be a number, a sequence of numbers or a tensor, got {t!r}")
        if isinstance(t, Tensor) or getattr(t, "ndim", None) is not None:  # tensors and numpy arrays, 0-d too
            flat = cast(Any, t).flatten().tolist()
            values = [real(v) for v in (flat if isinstance(flat, list) else [flat])]
        elif isinstance(t, numbers.Real):
            values = [real(t)]
        else:
            try:
                values = [real(v) for v in cast(Any, t)]  # any iterable; anything else is the TypeError below
            except TypeError as exc:
                raise TypeError(f"t must be a number, a sequence of numbers or a tensor, got {t!r}") from exc
        if len(values) == 1:
            values = values * n
        if len(values) != n:
            raise ValueError(f"t must have one value or one per batch item ({n}), got {len(values)}")
        for v in values:
            if math.isnan(v) or not 0.0 <= v <= 1.0:
                raise ValueError(f"t must be in [0, 1], got {v}")
        return values


# Families whose CPU fp32 forward NNPACK's Winograd convolutions speed up, measured end to end (README):
# v3.6 at 720p 1.97 -> 1.76 s; 4.6 0.80 -> 0.81 s and 4.25 1.19 -> 1.33 s (narrow or tiny 3x3 layers
# gain little and their one-thread sums cost more), so 4.x only with winograd=True.
WINOGRAD_FAMILIES = ("v3",)
_SHARED_MAX = 4
_shared: OrderedDict[tuple[object, ...], tuple[LoadedModel, RIFENet]] = OrderedDict()
_shared_lock = threading.Lock()


@dataclass(frozen=True)
class _Placement:
    """How an engine's copy of a network is placed (also the shared-network cache key)."""

    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    layout: bool
    winograd: bool | None  # None: where measured to pay (WINOGRAD_FAMILIES)


def _place(net: RIFENet, place: _Placement) -> RIFENet:
    if place.layout:
        widen.inference_layout(net, inputs=place.device.type == "cuda")  # tensor cores want 8-wide inputs
    net = net.to(place.device, place.dtype)
    if place.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if place.winograd or (place.winograd is None and net.spec.family in WINOGRAD_FAMILIES):
        if not place.layout:
            widen.fold_gains(net)  # 4.x: one pass less per ResConv; rounding changes anyway
        use_winograd(net)  # after the memory format: its weights stay NCHW
    return net


def _files_key(paths: Sequence[Path]) -> tuple[object, ...]:
    return tuple(sorted((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths))


def _shared_network(
    model: str | None,
    model_path: str | None,
    place: _Placement,
) -> tuple[LoadedModel, RIFENet]:
    """Load a network once per process and placement; engines share it read-only.

    Re-creating a filter (mpv re-runs its script after every seek) then costs no disk read. The
    key includes the files' size and mtime, so a replaced checkpoint is loaded afresh.
    """
    try:
        # the files load_model will read (the same resolution: HD's three files, no stray ones)
        info = get_model(model) if model is not None else None
        if model_path is not None:
            files = list(resolve_files(model_path, info.spec if info else None).values())
        else:
            info = info or get_model(DEFAULT_MODEL)
            folder = store.locate(info.name)
            files = list(resolve_files(folder, info.spec).values()) if folder is not None else []
        key: tuple[object, ...] | None = None
        if files:
            key = (model, _files_key(files), place)
    except (OSError, KeyError, ValueError):  # (ModelLoadError is a ValueError: load_model says what is wrong)
        key = None
    with _shared_lock:
        if key is not None and key in _shared:
            _shared.move_to_end(key)
            return _shared[key]
    loaded = load_model(model, model_path)
    net = _place(loaded.network, place)
    key = (model, _files_key(loaded.paths), place)
    with _shared_lock:
        _shared[key] = (loaded, net)
        while len(_shared) > _SHARED_MAX:
            _shared.popitem(last=False)
    return loaded, net


def _t_tensor(t: Tensor | float, device: torch.device) -> Tensor:
    """t as a (1,) float32 tensor on ``device`` (compiled graphs and engines take it as an input)."""
    return t if isinstance(t, Tensor) else torch.full((1,), float(t), dtype=torch.float32, device=device)


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m
