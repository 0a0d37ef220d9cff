"""Interpolator (vsrife.engine): sizes, exact endpoints, batching, dtypes, errors, caching, bisection.

Uses the real v3.6 weights (the offline default) at small sizes, and small random-weight networks
of the other families, written as official-style checkpoints (``module.`` keys) into a tmp folder
and loaded through :mod:`vsrife.models.loading`. ``-m "not slow"`` skips the 8K test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.checkpoints import seeded_checkpoint
from torch import Tensor, nn

from vsrife.arch import build_network
from vsrife.engine import Interpolator
from vsrife.models import get_model, load_model

# random-weight models: no encoder (4.6), first encoder + replaced mask (4.7), 4.21+ block features and
# no ensemble (4.22.lite), 64/128 padding and five blocks (4.25.lite), and the three-file legacy families
RANDOM_V4 = ("4.6", "4.7", "4.22.lite", "4.25.lite")
RANDOM_OTHER = ("paper", "hd", "hdv2")


def write_checkpoint(version: str, folder: Path, seed: int = 0) -> Path:
    """Random weights for ``version`` in the official file layout (``module.`` keys, one file per part)."""
    spec = get_model(version).spec
    torch.manual_seed(seed)
    state = build_network(spec).state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, prefix in spec.files:
        part = {"module." + k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        torch.save(part, folder / file_name)
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    root = tmp_path_factory.mktemp("ckpt")
    made: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version not in made:
            made[version] = write_checkpoint(version, root / version)
        return made[version]

    return get


@pytest.fixture(scope="module")
def make(checkpoints: Callable[[str], Path]) -> Callable[..., Interpolator]:
    """Interpolator factory: real weights for "3.6", random weights for every other version.

    Engines are shared between tests (loading costs more than a small interpolation) unless ``fresh``:
    tests that look at caches or count calls get their own.
    """
    engines: dict[tuple[str, tuple[tuple[str, object], ...]], Interpolator] = {}

    def build(version: str = "3.6", fresh: bool = False, **kwargs: object) -> Interpolator:
        kwargs.setdefault("device", "cpu")
        key = (version, tuple(sorted(kwargs.items())))
        if not fresh and key in engines:
            return engines[key]
        if version == "3.6":
            eng = Interpolator("3.6", **kwargs)  # type: ignore[arg-type]
        else:
            eng = Interpolator(version, model_path=str(checkpoints(version)), **kwargs)  # type: ignore[arg-type]
        if not fresh:
            engines[key] = eng
        return eng

    return build


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Small frames on a shared machine: one intra-op thread is ~20x faster than two under load (OpenMP
    barriers spin while the other core is busy) and no slower when idle. Results are the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def v36() -> Interpolator:
    return Interpolator("3.6", device="cpu", timestep_mode="linear")


def frames(h: int, w: int, n: int | None = None, seed: int = 0, shift: int = 2) -> tuple[Tensor, Tensor]:
    """Smooth random RGB frames in [0, 1] and a shifted copy; (3, H, W), or (N, 3, H, W) with ``n``."""
    g = torch.Generator().manual_seed(seed)
    batch = n or 1
    small = torch.rand(batch, 3, max(1, h // 4), max(1, w // 4), generator=g)
    a = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    b = torch.roll(a, shifts=(shift // 2, shift), dims=(2, 3))
    return (a, b) if n else (a[0], b[0])


class CallCounter:
    """Counts forward calls of a module (forward hook, removed on exit).

    Engines loaded from the same files share one network, so count only around this engine's calls.
    """

    def __init__(self, module: nn.Module) -> None:
        self.calls = 0
        self._module = module

    def _hook(self, *_: object) -> None:
        self.calls += 1

    def __enter__(self) -> CallCounter:
        self._handle = self._module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.remove()


# ------------------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize(("w", "h"), [(1, 1), (2, 3), (7, 5), (67, 45), (641, 273)])
def test_odd_sizes_v36(v36: Interpolator, w: int, h: int) -> None:
    a, b = frames(h, w)
    out = v36.interpolate(a, b, 0.5)
    assert out.shape == (3, h, w)
    assert torch.isfinite(out).all() and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("version", RANDOM_V4 + RANDOM_OTHER)
def test_odd_sizes_random(make: Callable[..., Interpolator], version: str) -> None:
    eng = make(version)
    for w, h in [(1, 1), (2, 3), (7, 5), (67, 45)]:
        a, b = frames(h, w, n=2)
        out = eng.interpolate(a, b, [0.3, 0.5])
        assert out.shape == (2, 3, h, w)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0, 4.0])
def test_odd_size_other_scales(make: Callable[..., Interpolator], scale: float) -> None:
    for version in ("3.6", "4.7"):
        eng = make(version, scale=scale)
        assert eng.multiple == max(32, int(32 / scale))
        a, b = frames(45, 67)
        assert eng.interpolate(a, b, 0.4).shape == (3, 45, 67)


def test_641x273_v4(make: Callable[..., Interpolator]) -> None:
    eng = make("4.25.lite")  # padded to a multiple of 128
    a, b = frames(273, 641)
    assert eng.interpolate(a, b, 0.5).shape == (3, 273, 641)


_EIGHT_K = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch, torch.nn.functional as F
    from vsrife.engine import Interpolator
    eng = Interpolator("3.6", device="cpu", scale=0.25)
    g = torch.Generator().manual_seed(0)
    a = F.interpolate(torch.rand(1, 3, 4320 // 16, 7680 // 16, generator=g), size=(4320, 7680), mode="bilinear")
    a = a[0].clamp(0, 1)
    b = torch.roll(a, (3, 6), (1, 2))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out = eng.interpolate(a, b, 0.5)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ok = bool(torch.isfinite(out).all()) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    mad = float((out - (a + b) / 2).abs().mean())
    print(json.dumps({"shape": list(out.shape), "dtype": str(out.dtype), "seconds": seconds, "ok": ok,
                      "mad_vs_average": mad, "base_mib": before / 1024, "peak_mib": peak / 1024}))
    """
)


@pytest.mark.slow
def test_8k_at_quarter_scale() -> None:
    """7680x4320 at scale=0.25 with v3.6 comes back at size; runtime and memory stay bounded.

    Measured on 2 shared EPYC cores: about a minute, peak RSS about 8.3 GiB (of which ~6.5 GiB working
    memory, ~200 bytes per output pixel: full-resolution flows, masks and warps of each IFBlock level).
    Runs in a subprocess so that its peak RSS is its own.
    """
    res = subprocess.run([sys.executable, "-c", _EIGHT_K], capture_output=True, text=True, check=False, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"\n8K @ scale 0.25: {info}")
    assert info["shape"] == [3, 4320, 7680]
    assert info["dtype"] == "torch.float32"
    assert info["ok"]
    assert info["mad_vs_average"] < 0.05  # a real picture, not garbage
    working = (info["peak_mib"] - info["base_mib"]) * 2**20
    assert working < 320 * 4320 * 7680, f"{working / 2**30:.1f} GiB working memory"
    assert info["seconds"] < 600


# ---------------------------------------------------------------------------- exact endpoints


ENDPOINT_ENGINES = [
    ("3.6", {}),
    ("3.6", {"precision": "fp32"}),
    ("3.6", {"precision": "bf16"}),
    ("3.6", {"timestep_mode": "bisect"}),
    ("3.6", {"ensemble": True}),
    ("3.6", {"scale": 0.5}),
    ("4.6", {}),
    ("4.6", {"precision": "bf16", "ensemble": True}),
    ("4.7", {}),
    ("4.22.lite", {"precision": "bf16"}),
    ("4.25.lite", {}),
    ("paper", {}),
    ("hd", {}),
    ("hdv2", {"timestep_mode": "bisect"}),
]


@pytest.mark.parametrize(("version", "kwargs"), ENDPOINT_ENGINES, ids=lambda p: str(p))
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_endpoints_exact(
    make: Callable[..., Interpolator], version: str, kwargs: dict[str, object], dtype: torch.dtype
) -> None:
    eng = make(version, **kwargs)
    a, b = frames(21, 34, n=3)
    a, b = a.to(dtype), b.to(dtype)
    a[0, 0, 0, 0] = 1.0005  # inside the range tolerance: still returned unchanged (not clamped)
    if dtype == torch.float32:  # with a real interpolation in the same batch
        out = eng.interpolate(a, b, [0.0, 1.0, 0.5])
        assert not torch.equal(out[2], a[2]) and not torch.equal(out[2], b[2])
    else:
        out = eng.interpolate(a[:2], b[:2], [0.0, 1.0])
    assert out.dtype == dtype
    assert torch.equal(out[0], a[0]) and torch.equal(out[1], b[1])
    assert torch.equal(eng.interpolate(a[1], b[1], 0), a[1])
    assert torch.equal(eng.interpolate(a[1], b[1], 1.0), b[1])
    assert torch.equal(eng.interpolate(a, b, torch.tensor([0.0])), a)
    assert torch.equal(eng.interpolate(a, b, np.float64(1.0)), b)


def test_prepared_endpoints(v36: Interpolator) -> None:
    a, b = frames(45, 67)
    f0, f1 = v36.prepare(a[None]), v36.prepare(b[None])
    assert torch.equal(v36.interpolate_prepared(f0, f1, 0.0), a[None])
    assert torch.equal(v36.interpolate_prepared(f0, f1, 1.0), b[None])


# ------------------------------------------------------------------------------ batching, dtypes


@pytest.mark.parametrize(("version", "kwargs"), [("3.6", {}), ("3.6", {"timestep_mode": "bisect"}), ("4.7", {})])
def test_batch_equals_items(make: Callable[..., Interpolator], version: str, kwargs: dict[str, object]) -> None:
    eng = make(version, **kwargs)
    a, b = frames(45, 67, n=4, seed=1)
    ts = [0.25, 0.5, 0.8, 1 / 3]
    batch = eng.interpolate(a, b, ts)
    for i, t in enumerate(ts):
        assert torch.equal(batch[i], eng.interpolate(a[i], b[i], t)), i
    assert torch.equal(eng.interpolate(a, b, torch.tensor(ts, dtype=torch.float64)), batch)
    assert torch.equal(eng.interpolate(a, b, tuple(ts)), batch)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_output_dtype_device(v36: Interpolator, dtype: torch.dtype) -> None:
    a, b = frames(45, 67)
    out = v36.interpolate(a.to(dtype), b.to(dtype), 0.5)
    assert out.dtype == dtype and out.device == a.device and out.shape == a.shape
    ref = v36.interpolate(a, b, 0.5)
    # fp16 frames carry rounded pixels; a bf16 network (the default on CPUs with native bf16) amplifies that
    fp16_tol = 2e-3 if v36.dtype == torch.float32 else 3e-2
    assert float((out.float() - ref).abs().max()) < (fp16_tol if dtype == torch.float16 else 1e-5)
    batch = v36.interpolate(a[None].to(dtype), b[None].to(dtype), 0.5)
    assert batch.dtype == dtype and batch.shape == (1, 3, 45, 67)


def test_inputs_not_modified(v36: Interpolator) -> None:
    a, b = frames(20, 30)
    a[0, 0, 0], b[1, 2, 3] = 1.0008, -0.0008  # tolerated, clamped internally
    a0, b0 = a.clone(), b.clone()
    v36.interpolate(a, b, 0.5)
    v36.prepare(a[None], key="not-modified")
    assert torch.equal(a, a0) and torch.equal(b, b0)


def _seeded_checkpoint(version: str, folder: Path, seed: int = 0) -> str | None:
    """An official-layout 4.x file with seeded random weights (None for 3.6: the real weights)."""
    return None if version == "3.6" else str(seeded_checkpoint(version, folder, seed))


@pytest.mark.parametrize("version", ["3.6", "4.25"])
def test_cpu_glue_runs_nchw(version: str, tmp_path: Path) -> None:
    """On the CPU a channels_last network keeps frames and features NCHW (its glue runs faster so; the
    convolutions convert their inputs), and the glue's layout changes no value: channels_last frames in
    give the same frame bit for bit."""
    from vsrife.engine import PreparedFrame

    eng = Interpolator(version, model_path=_seeded_checkpoint(version, tmp_path), device="cpu", precision="bf16")
    assert eng.channels_last
    a, b = frames(64, 96)
    f0, f1 = eng.prepare(a[None]), eng.prepare(b[None])
    for f in (f0, f1):
        assert f.image.is_contiguous() and (f.features is None or f.features.is_contiguous())
    assert (f0.features is None) == (version == "3.6")
    out = eng.interpolate_prepared(f0, f1, 0.5)

    def channels_last(f: PreparedFrame) -> PreparedFrame:
        feats = None if f.features is None else f.features.contiguous(memory_format=torch.channels_last)
        return PreparedFrame(f.image.contiguous(memory_format=torch.channels_last), feats, f.height, f.width)

    ref = eng._run(channels_last(f0), channels_last(f1), 0.5)[:, :, :64, :96].float()
    assert torch.equal(out, ref)


def test_cpu_bf16_resizes_in_fp32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 heads' flows and masks are resized in fp32 on the CPU (faster there): 4.6's bf16 frame comes
    out over 1.5x closer to the fp32 network's than with bf16 resizes (2.2-2.5x measured)."""
    import vsrife.arch.ifnet as ifnet
    from vsrife.arch.layers import cpu_glue

    x = torch.rand(1, 6, 8, 12).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    y = cpu_glue(x)
    assert y.dtype == torch.float32 and y.is_contiguous() and torch.equal(y, x.float())
    path = _seeded_checkpoint("4.6", tmp_path)
    a, b = frames(64, 96)
    ref = Interpolator("4.6", model_path=path, device="cpu", precision="fp32").interpolate(a, b, 0.5)
    eng = Interpolator("4.6", model_path=path, device="cpu", precision="bf16")
    err = float((eng.interpolate(a, b, 0.5) - ref).abs().mean())
    monkeypatch.setattr(ifnet, "cpu_glue", lambda t: t.contiguous())
    eng.clear_cache()
    err_bf16_resize = float((eng.interpolate(a, b, 0.5) - ref).abs().mean())
    assert err * 1.5 < err_bf16_resize, (err, err_bf16_resize)


def test_shared_loaded_model_not_modified() -> None:
    """Two engines on one LoadedModel: the second (channels_last) must not change the first (official layout)."""
    model = load_model("3.6")
    a, b = frames(64, 96)
    exact = Interpolator(model, device="cpu", precision="fp32")
    before = exact.interpolate(a, b, 0.5)
    fast = Interpolator(model, device="cpu")
    assert fast.channels_last and not exact.channels_last
    assert torch.equal(exact.interpolate(a, b, 0.5), before)
    assert torch.equal(Interpolator("3.6", device="cpu", precision="fp32").interpolate(a, b, 0.5), before)
    # fp32 channels_last reorders sums; bf16 (the default on CPUs with native bf16) rounds every convolution
    assert float((fast.interpolate(a, b, 0.5) - before).abs().max()) < (1e-4 if fast.dtype == torch.float32 else 3e-2)


@pytest.mark.parametrize("spelling", ["fp32", " FP32", "fp32 "])
def test_precision_spellings_choose_the_same_layout(spelling: str) -> None:
    """Every accepted spelling of "fp32" keeps the official computation: fp32, NCHW, no inference layout."""
    model = load_model("3.6")
    eng = Interpolator(model, device="cpu", precision=spelling, winograd=False)
    assert eng.dtype == torch.float32
    assert not eng.channels_last and not eng.inference_layout


# ---------------------------------------------------------------------------------- bad inputs


def _img(*shape: int, value: float = 0.5, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.full(shape, value, dtype=dtype)


GOOD = _img(3, 8, 8)
BAD_IMAGES = [
    ("non-tensor numpy", np.zeros((3, 8, 8), np.float32), TypeError, "img0 must be a torch.Tensor"),
    ("non-tensor list", [[[0.5]]], TypeError, "img0 must be a torch.Tensor"),
    ("uint8", _img(3, 8, 8, value=128, dtype=torch.uint8), TypeError, "img0 must be a floating-point"),
    ("int64", _img(3, 8, 8, value=0, dtype=torch.int64), TypeError, "img0 must be a floating-point"),
    ("bool", torch.zeros(3, 8, 8, dtype=torch.bool), TypeError, "img0 must be a floating-point"),
    ("rank 2", _img(8, 8), ValueError, r"img0 must have shape \(3, H, W\)"),
    ("rank 5", _img(1, 1, 3, 8, 8), ValueError, r"img0 must have shape \(3, H, W\)"),
    ("1 channel", _img(1, 8, 8), ValueError, "img0 must have shape"),
    ("4 channels", _img(2, 4, 8, 8), ValueError, "img0 must have shape"),
    ("HWC", _img(8, 8, 3), ValueError, "img0 must have shape"),
    ("empty H", _img(3, 0, 8), ValueError, "img0 must not be empty"),
    ("empty batch", _img(0, 3, 8, 8), ValueError, "img0 must not be empty"),
    ("NaN", GOOD.clone().index_fill_(1, torch.tensor([2]), float("nan")), ValueError, "img0 contains NaN"),
    ("inf", GOOD.clone().index_fill_(2, torch.tensor([2]), float("inf")), ValueError, "img0 contains NaN or inf"),
    ("-inf", GOOD.clone().index_fill_(2, torch.tensor([2]), -float("inf")), ValueError, "img0 contains NaN or inf"),
    ("above 1", _img(3, 8, 8, value=1.01), ValueError, r"img0 values must lie in \[0, 1\]"),
    ("below 0", _img(3, 8, 8, value=-0.01), ValueError, r"img0 values must lie in \[0, 1\]"),
    ("0..255", _img(3, 8, 8, value=200.0), ValueError, r"img0 values must lie in \[0, 1\]"),
]


@pytest.mark.parametrize(("img", "exc", "match"), [p[1:] for p in BAD_IMAGES], ids=[p[0] for p in BAD_IMAGES])
def test_bad_images(v36: Interpolator, img: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        v36.interpolate(img, GOOD, 0.5)  # type: ignore[arg-type]
    with pytest.raises(exc, match=match.replace("img0", "img1")):
        v36.interpolate(GOOD, img, 0.5)  # type: ignore[arg-type]


def test_mismatched_shapes(v36: Interpolator) -> None:
    with pytest.raises(ValueError, match="img0 and img1 must have the same shape"):
        v36.interpolate(_img(3, 8, 8), _img(3, 8, 9), 0.5)
    with pytest.raises(ValueError, match="img0 and img1 must have the same shape"):
        v36.interpolate(_img(2, 3, 8, 8), _img(3, 3, 8, 8), 0.5)
    with pytest.raises(ValueError, match="img0 and img1 must have the same shape"):
        v36.interpolate(_img(3, 8, 8), _img(1, 3, 8, 8), 0.5)
    f0 = v36.prepare(_img(1, 3, 8, 8))
    for other in (_img(1, 3, 40, 8), _img(1, 3, 9, 9)):  # also when both pad to the same size
        with pytest.raises(ValueError, match="same size"):
            v36.interpolate_prepared(f0, v36.prepare(other), 0.5)


BAD_T = [
    ("negative", -0.1, ValueError, r"t must be in \[0, 1\]"),
    ("above 1", 1.0001, ValueError, r"t must be in \[0, 1\]"),
    ("NaN", float("nan"), ValueError, r"t must be in \[0, 1\]"),
    ("inf", float("inf"), ValueError, r"t must be in \[0, 1\]"),
    ("NaN in list", [0.5, float("nan")], ValueError, r"t must be in \[0, 1\]"),
    ("tensor out of range", torch.tensor([0.5, 2.0]), ValueError, r"t must be in \[0, 1\]"),
    ("too many", [0.5, 0.5, 0.5], ValueError, r"t must have one value or one per batch item \(2\), got 3"),
    ("empty", [], ValueError, r"t must have one value or one per batch item \(2\), got 0"),
    ("string", "0.5", TypeError, "t must be a number"),
    ("None", None, TypeError, "t must be a number"),
    ("list of strings", ["a", "b"], TypeError, "t must be a number"),
    ("bool", True, TypeError, "t must be a number"),
    ("complex tensor", torch.tensor([0.5j]), TypeError, "t must be a number"),
]


def test_t_as_numpy_values(v36: Interpolator) -> None:
    """numpy scalars and arrays, 0-d included, are numbers like any other."""
    a, b = _img(2, 3, 8, 8), _img(2, 3, 8, 8)
    expected = v36.interpolate(a, b, 0.5)
    for t in (np.float32(0.5), np.array(0.5), np.array([0.5, 0.5])):
        assert torch.equal(v36.interpolate(a, b, t), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(("t", "exc", "match"), [p[1:] for p in BAD_T], ids=[p[0] for p in BAD_T])
def test_bad_t(v36: Interpolator, t: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        v36.interpolate(_img(2, 3, 8, 8), _img(2, 3, 8, 8), t)  # type: ignore[arg-type]


@pytest.mark.parametrize("t", [-0.5, 1.5, float("nan")])
def test_bad_t_prepared(v36: Interpolator, t: float) -> None:
    f = v36.prepare(_img(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"t must be in \[0, 1\]"):
        v36.interpolate_prepared(f, f, t)


BAD_OPTIONS = [
    ({"scale": 3.0}, ValueError, "scale must be one of 0.25, 0.5, 1.0, 2.0, 4.0, got 3.0"),
    ({"scale": 0.3}, ValueError, "scale must be one of"),
    ({"scale": "1"}, ValueError, "scale must be one of"),
    ({"scale": float("nan")}, ValueError, "scale must be one of"),
    ({"precision": "fp64"}, ValueError, "precision must be one of"),
    ({"precision": "half"}, ValueError, "precision must be one of"),
    ({"precision": "fp16"}, ValueError, 'precision "fp16" is not supported on CPU'),
    ({"device": "gpu"}, ValueError, "device must be"),
    ({"device": "tpu:0"}, ValueError, "device must be"),
    ({"device": "cuda:x"}, ValueError, "device must be"),
    ({"timestep_mode": "cubic"}, ValueError, "timestep_mode must be one of"),
    ({"timestep_mode": "native"}, ValueError, r'timestep_mode "native" needs a 4\.x model; 3\.6'),
    ({"cache_frames": 1}, ValueError, "cache_frames must be at least 2"),
    ({"cache_frames": "8"}, ValueError, "cache_frames must be at least 2"),
    ({"scale": True}, ValueError, "scale must be one of"),
    ({"cuda_graphs": True}, ValueError, "cuda_graphs needs a CUDA device, got device 'cpu'"),
]


@pytest.mark.parametrize(("kwargs", "exc", "match"), BAD_OPTIONS, ids=lambda p: str(p))
def test_bad_options(kwargs: dict[str, object], exc: type[Exception], match: str) -> None:
    kwargs.setdefault("device", "cpu")
    with pytest.raises(exc, match=match):
        Interpolator("3.6", **kwargs)  # type: ignore[arg-type]


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="unknown model 'bogus'"):
        Interpolator("bogus", device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_gpu() -> None:
    with pytest.raises(ValueError, match="device 'cuda' was requested but CUDA is not available"):
        Interpolator("3.6", device="cuda")


@pytest.mark.parametrize("version", ["4.22.lite", "4.25.lite"])
def test_ensemble_on_421_plus(make: Callable[..., Interpolator], version: str) -> None:
    with pytest.raises(ValueError, match=f"ensemble is not supported by model {version}"):
        make(version, ensemble=True)
    make("4.7", ensemble=True)  # before 4.21 it is fine


def test_native_mode(make: Callable[..., Interpolator]) -> None:
    assert make("4.6", timestep_mode="native").timestep_mode == "native"
    assert make("4.6", timestep_mode="bisect").timestep_mode == "native"  # 4.x always uses its t input
    for version in ("paper", "hd"):
        with pytest.raises(ValueError, match=r'timestep_mode "native" needs a 4\.x model'):
            make(version, timestep_mode="native")


# --------------------------------------------------------------------------------------- caching


def test_prepare_cache_returns_same_object(v36: Interpolator) -> None:
    a, _ = frames(45, 67)
    f = v36.prepare(a[None], key=("clip", 0))
    assert v36.prepare(a[None], key=("clip", 0)) is f
    assert v36.prepare(a[None], key=("clip", 1)) is not f
    assert v36.prepare(a[None]) is not v36.prepare(a[None])  # no key: not cached
    assert f.image.shape == (1, 3, 64, 96) and (f.height, f.width) == (45, 67)
    assert f.features is None  # v3.6 has no encoder


def test_encoder_runs_once_per_source_frame(make: Callable[..., Interpolator]) -> None:
    eng = make("4.7", fresh=True, cache_frames=4)
    assert eng.network.has_encoder
    with CallCounter(eng.network.flownet.encode) as counter:
        clip = [frames(45, 67, seed=i)[0][None] for i in range(6)]
        outs = []
        for i in range(5):
            f0, f1 = eng.prepare(clip[i], key=i), eng.prepare(clip[i + 1], key=i + 1)
            outs.extend(eng.interpolate_prepared(f0, f1, t) for t in (0.25, 0.5, 0.75))
        assert counter.calls == 6
        # cached features give exactly what the network computes by itself
        direct = make("4.7").interpolate(clip[2][0], clip[3][0], 0.75)
        assert torch.equal(outs[2 * 3 + 2][0], direct)


def test_cache_is_bounded(make: Callable[..., Interpolator]) -> None:
    eng = make("4.7", fresh=True, cache_frames=3)
    with CallCounter(eng.network.flownet.encode) as counter:
        img = frames(16, 16)[0][None]
        first = eng.prepare(img, key=0)
        for k in range(1, 10):
            eng.prepare(img, key=k)
            assert len(eng._cache) <= 3
        assert counter.calls == 10
        assert eng.prepare(img, key=9) is not None and counter.calls == 10  # still cached
        again = eng.prepare(img, key=0)  # evicted long ago: prepared anew
        assert again is not first and counter.calls == 11
        # LRU: touching a key keeps it
        eng.prepare(img, key=8)
        eng.prepare(img, key=20)
        assert eng.prepare(img, key=8) is not None and counter.calls == 12
        eng.clear_cache()
        assert len(eng._cache) == 0


def test_bisect_midpoints_bounded(make: Callable[..., Interpolator]) -> None:
    """Midpoints are full frames (100 MB each at 4K in fp32): a render keeps those of the last two pairs only,
    not a fixed number of frames from pairs it has long passed (32 frames, 3.2 GB at 4K, before)."""
    from vsrife.engine.interpolator import _MID_PAIRS

    eng = make("3.6", fresh=True, timestep_mode="bisect")
    a, b = frames(16, 16)
    f0, f1 = eng.prepare(a[None]), eng.prepare(b[None])
    for pair in range(40):  # factor 2, in order: one midpoint per pair, never needed again
        eng.interpolate_prepared(f0, f1, 0.5, key=pair)
        assert len(eng._mids) <= _MID_PAIRS and sum(map(len, eng._mids.values())) <= _MID_PAIRS
    assert list(eng._mids) == [38, 39]
    for pair in range(3):  # factor 3: 1/3 and 2/3 need three midpoints of the pair (depth 4: 2 + 1 + 1)
        for t in (1 / 3, 2 / 3):
            eng.interpolate_prepared(f0, f1, t, key=(pair, "x"))
    assert list(eng._mids) == [(1, "x"), (2, "x")]
    assert sum(map(len, eng._mids.values())) <= _MID_PAIRS * (2**4 - 1)
    eng.clear_cache()
    assert not eng._mids


# -------------------------------------------------------------------------------------- bisection


def test_bisect_reuses_midpoints(make: Callable[..., Interpolator]) -> None:
    eng = make("3.6", fresh=True, timestep_mode="bisect")
    with CallCounter(eng.network) as calls:
        a, b = frames(64, 96, seed=4, shift=6)
        f0, f1 = eng.prepare(a[None], key="a"), eng.prepare(b[None], key="b")
        quarter = eng.interpolate_prepared(f0, f1, 0.25, key=("a", "b"))
        assert calls.calls == 2  # t = 1/2, then t = 1/4 of (a, mid)
        half = eng.interpolate_prepared(f0, f1, 0.5, key=("a", "b"))
        three = eng.interpolate_prepared(f0, f1, 0.75, key=("a", "b"))
        assert calls.calls == 3  # t = 1/2 reused twice
        # asking again costs nothing and gives the same frames
        for t, prev in ((0.25, quarter), (0.5, half), (0.75, three)):
            assert torch.equal(eng.interpolate_prepared(f0, f1, t, key=("a", "b")), prev)
        assert calls.calls == 3
        # non-dyadic t: four halvings (depth 4), then a blend; the t = 1/2, 1/4 and 3/4 midpoints are reused
        eng.interpolate_prepared(f0, f1, 1 / 3, key=("a", "b"))
        assert calls.calls == 3 + 2
        eng.interpolate_prepared(f0, f1, 2 / 3, key=("a", "b"))
        assert calls.calls == 3 + 2 + 2
        # a different pair key does not reuse: 1/3 costs 4 calls, then 2/3 shares only the first midpoint
        eng.interpolate_prepared(f0, f1, 1 / 3, key=("a", "c"))
        assert calls.calls == 7 + 4
        eng.interpolate_prepared(f0, f1, 2 / 3, key=("a", "c"))
        assert calls.calls == 11 + 3


def test_bisect_is_recursive_halving(make: Callable[..., Interpolator]) -> None:
    """At a multiple of 32 (no padding) bisection equals halving by hand; t = 1/2 equals linear mode."""
    bis, lin = make("3.6", fresh=True, timestep_mode="bisect"), make("3.6", timestep_mode="linear")
    a, b = frames(64, 96, seed=5, shift=6)
    mid = lin.interpolate(a, b, 0.5)
    assert torch.equal(bis.interpolate(a, b, 0.5), mid)
    assert torch.equal(bis.interpolate(a, b, 0.25), lin.interpolate(a, mid, 0.5))
    assert torch.equal(bis.interpolate(a, b, 0.75), lin.interpolate(mid, b, 0.5))
    # unkeyed interpolate == keyed interpolate_prepared
    f0, f1 = bis.prepare(a[None], key=0), bis.prepare(b[None], key=1)
    for t in (0.25, 1 / 3, 0.9):
        assert torch.equal(bis.interpolate(a, b, t), bis.interpolate_prepared(f0, f1, t, key=(0, 1))[0])


def test_linear_mode_moves_with_t(v36: Interpolator) -> None:
    a, b = frames(64, 96, seed=6, shift=8)
    dist = [float((v36.interpolate(a, b, t) - a).abs().mean()) for t in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert dist == sorted(dist)


# ----------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(("version", "kwargs"), [("3.6", {}), ("3.6", {"timestep_mode": "bisect"}), ("4.7", {})])
def test_deterministic_and_order_independent(
    make: Callable[..., Interpolator], version: str, kwargs: dict[str, object]
) -> None:
    pairs = [frames(45, 67, seed=s, shift=4) for s in range(3)]
    ts = (0.25, 0.5, 0.8)
    jobs = [(p, t) for p in range(3) for t in ts]

    def run(order: list[tuple[int, float]], eng: Interpolator, keyed: bool) -> dict[tuple[int, float], Tensor]:
        out = {}
        for p, t in order:
            a, b = pairs[p]
            if keyed:
                f0, f1 = eng.prepare(a[None], key=(p, 0)), eng.prepare(b[None], key=(p, 1))
                out[p, t] = eng.interpolate_prepared(f0, f1, t, key=p)[0]
            else:
                out[p, t] = eng.interpolate(a, b, t)
        return out

    eng = make(version, fresh=True, **kwargs)
    first = run(jobs, eng, keyed=False)
    again = run(jobs, eng, keyed=False)
    backwards = run(jobs[::-1], make(version, fresh=True, **kwargs), keyed=True)
    shuffled = run([jobs[i] for i in torch.randperm(len(jobs), generator=torch.Generator().manual_seed(1))],
                   eng, keyed=True)  # fmt: skip
    for job in jobs:
        assert torch.equal(first[job], again[job]), job
        assert torch.equal(first[job], backwards[job]), job
        assert torch.equal(first[job], shuffled[job]), job


def test_cpu_engine_has_no_cuda_graphs(v36: Interpolator) -> None:
    assert v36.cuda_graphs == "off"


_FAULTS = """
import resource, sys, torch
from vsrife.engine.devices import keep_freed_memory
if sys.argv[1] == "keep" and not keep_freed_memory():
    sys.exit(3)
def faults():
    x = torch.empty(12 * 2**20)  # 48 MiB, above glibc's largest mmap threshold (32 MiB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x.fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
seen = [faults() for _ in range(6)]  # the heap settles: the first blocks are placed while it grows
print(min(seen[3:]))
"""


def _second_allocation_faults(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True)
    if proc.returncode == 3:
        pytest.skip("the C library does not take mallopt (not glibc)")
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_keep_freed_memory_reuses_large_blocks() -> None:
    """A freed 48 MiB tensor's memory is reused: no page faults when the next one is filled."""
    plain = _second_allocation_faults("plain")
    if plain < 1000:
        pytest.skip(f"large blocks already come without per-page faults here ({plain}; huge pages?)")
    kept = _second_allocation_faults("keep")
    assert kept < plain / 20, (plain, kept)


_ARENAS = """
import ctypes, sys, threading
from vsrife.engine.devices import share_heaps
if sys.argv[1] == "share" and not share_heaps():
    sys.exit(3)
ready = threading.Barrier(5)
def work():
    blocks = [bytearray(4096) for _ in range(64)]  # malloc'd in this thread's heap
    ready.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
ready.wait()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per heap, on stderr
for t in threads:
    t.join()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_share_heaps_gives_threads_one_heap() -> None:
    """Four threads allocating at once: own heaps by default, the main heap after share_heaps()."""

    def arenas(mode: str) -> int:
        proc = subprocess.run([sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True)
        if proc.returncode == 3:
            pytest.skip("the C library does not take mallopt (not glibc)")
        assert proc.returncode == 0, proc.stderr
        return sum(line.startswith("Arena ") for line in proc.stderr.splitlines())

    assert arenas("plain") >= 3
    assert arenas("share") == 1


_HOLES = """
import sys, torch
from pathlib import Path
from vsrife.engine import devices
def rss():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) // 1024
if sys.argv[1] == "keep" and not devices.keep_freed_memory():
    sys.exit(3)
# 1 MiB blocks in the heap (glibc's mmap threshold fixed above them; by default it rises there by
# itself once larger blocks were freed) with a smaller long-lived block after each: freeing the big
# ones leaves holes in the middle of the heap, which glibc keeps resident
import ctypes
ctypes.CDLL(None).mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
pinned, big = [], []
for _ in range(200):
    big.append(torch.ones(2**18))
    pinned.append(torch.ones(50_000))  # 200 KiB: no free chunk that size yet, so it comes from the top
del big
before = rss()
first = devices.release_free_heap(0.0)
after = rss()
print(before, after, first, devices.release_free_heap(3600.0))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_release_free_heap_returns_holes() -> None:
    """Free memory in the middle of the heap goes back to the system (200 MiB of holes here), at most
    once per interval, and never where freed blocks are kept on purpose."""

    def run(mode: str) -> tuple[int, int, bool, bool]:
        proc = subprocess.run([sys.executable, "-c", _HOLES, mode], capture_output=True, text=True)
        if proc.returncode == 3:
            pytest.skip("the C library does not take mallopt (not glibc)")
        assert proc.returncode == 0, proc.stderr
        before, after, first, second = proc.stdout.split()
        return int(before), int(after), first == "True", second == "True"

    before, after, first, second = run("plain")
    assert first and not second  # trimmed, then rate-limited
    assert before - after > 150, (before, after)
    before, after, first, _ = run("keep")
    assert not first and before - after < 20, (before, after)


def test_cpu_engine_releases_free_heap(monkeypatch: pytest.MonkeyPatch, v36: Interpolator) -> None:
    """Every CPU network call offers the heap back (the rate limit lives in release_free_heap)."""
    from vsrife.engine import devices

    calls: list[int] = []
    monkeypatch.setattr(devices, "release_free_heap", lambda: bool(calls.append(1)))
    v36.interpolate(torch.rand(3, 32, 32), torch.rand(3, 32, 32))
    assert calls == [1]


def test_cpu_engine_shares_heaps(monkeypatch: pytest.MonkeyPatch, v36: Interpolator) -> None:
    from vsrife.engine import devices

    calls: list[int] = []
    monkeypatch.setattr(devices, "share_heaps", lambda: bool(calls.append(1)) or True)
    Interpolator(v36.loaded, device="cpu", keep_freed_memory=False)
    assert calls == [1]


def test_cpu_engine_tunes_the_allocator(monkeypatch: pytest.MonkeyPatch, v36: Interpolator) -> None:
    """Default: from the first large frame on; True: at once; False: never."""
    from vsrife.engine import devices

    calls: list[int] = []
    monkeypatch.setattr(devices, "keep_freed_memory", lambda: bool(calls.append(1)) or True)
    small, large, huge = (torch.zeros(1, 3, h, w) for h, w in ((360, 640), (544, 960), (2160, 3840)))
    auto = Interpolator(v36.loaded, device="cpu")
    auto.prepare(small)
    auto.prepare(huge)
    assert calls == []
    auto.prepare(large)
    auto.prepare(large)
    assert calls == [1]
    Interpolator(v36.loaded, device="cpu", keep_freed_memory=True)
    assert calls == [1, 1]
    never = Interpolator(v36.loaded, device="cpu", keep_freed_memory=False)
    never.prepare(large)
    assert calls == [1, 1]


def test_fp32_convolution_setting_survives_overlapping_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two fp32 CUDA engines in two threads: TF32 stays off until the last leaves (torch's cudnn.flags
    turned it back on when the first left, mid-forward of the other) and the user's other cuDNN
    settings are kept."""
    import threading

    from vsrife.engine.devices import ieee_fp32_convolutions

    cudnn = torch.backends.cudnn
    monkeypatch.setattr(cudnn, "allow_tf32", True)
    monkeypatch.setattr(cudnn, "benchmark", True)
    monkeypatch.setattr(cudnn, "deterministic", True)
    first_in, first_out, seen = threading.Event(), threading.Event(), []

    def first() -> None:
        with ieee_fp32_convolutions():
            first_in.set()
            first_out.wait(10)

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(10)
    with ieee_fp32_convolutions():
        first_out.set()
        worker.join(10)  # the first engine has left; this one is still inside
        seen.append(cudnn.allow_tf32)
    assert seen == [False]
    assert cudnn.allow_tf32 and cudnn.benchmark and cudnn.deterministic


def test_store_networks_are_read_once_per_process(model_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines (a filter re-created after every seek in mpv) share a loaded network. The cache key listed the
    store folder while the stored key used the files read, so HD's three files, or any stray file beside a
    flownet.pkl, meant a disk read on every creation."""
    from collections import OrderedDict

    import vsrife.engine.interpolator as engine_module
    from vsrife.models.store import version_dir

    torch.manual_seed(0)
    hd = build_network(get_model("hd").spec)
    folder = version_dir(get_model("hd"), model_store)
    folder.mkdir(parents=True)
    for name, prefix in get_model("hd").spec.files:
        state = {f"module.{k.removeprefix(prefix)}": v for k, v in hd.state_dict().items() if k.startswith(prefix)}
        torch.save(state, folder / name)
    v46 = version_dir(get_model("4.6"), model_store)
    v46.mkdir(parents=True)
    seeded_checkpoint("4.6", v46).rename(v46 / "flownet.pkl")
    (v46 / "flownet.pkl.part").write_bytes(b"a leftover of an interrupted download")

    calls: list[object] = []
    real = engine_module.load_model
    monkeypatch.setattr(engine_module, "load_model", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    monkeypatch.setattr(engine_module, "_shared", OrderedDict())
    for name in ("hd", "4.6"):
        for _ in range(3):
            Interpolator(name, device="cpu", precision="fp32")
    assert [c[0] for c in calls] == ["hd", "4.6"]
