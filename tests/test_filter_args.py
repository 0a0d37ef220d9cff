"""Argument checking of the filter: every bad argument raises ``vs.Error`` naming the parameter and what it
accepts, through the Python entry point (``vsrife.RIFE``) and the registered plugin (``core.rife.RIFE``).

No network runs here: the errors are raised while the graph is built (the ensemble case loads a random
4.22 checkpoint written by the test).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

vs = pytest.importorskip("vapoursynth")

import vsrife  # noqa: E402
from vsrife._bridge import WHOLE  # noqa: E402
from vsrife.filter import rife as filter_rife  # noqa: E402

core = vs.core


def _python(clip: Any, **kwargs: Any) -> Any:
    return vsrife.RIFE(clip, **kwargs)


def _plugin(clip: Any, **kwargs: Any) -> Any:
    if not hasattr(core, "rife") or core.rife.identifier != "com.vsrife.rife":
        pytest.skip("core.rife is not vsrife's shim")
    return core.rife.RIFE(clip, **kwargs)


def _plugin_vsrife(clip: Any, **kwargs: Any) -> Any:
    if not hasattr(core, "vsrife"):
        pytest.skip("core.vsrife is not installed")
    return core.vsrife.RIFE(clip, **kwargs)


ENTRY_POINTS = [pytest.param(_python, id="vsrife.RIFE"), pytest.param(_plugin, id="core.rife.RIFE")]


def _clip(**kwargs: Any) -> Any:
    args = {"width": 64, "height": 48, "format": vs.YUV420P8, "length": 10, "fpsnum": 25, "fpsden": 1, **kwargs}
    return core.std.BlankClip(**args)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """model_path fixtures: a garbage file, a state dict of the wrong network, a random 4.22 checkpoint."""
    from vsrife.arch import build_network
    from vsrife.models.registry import get_model

    root = tmp_path_factory.mktemp("models")
    garbage = root / "garbage.pkl"
    garbage.write_bytes(b"this is not a checkpoint\x00\x01\x02" * 10)
    wrong = root / "wrong.pkl"
    torch.save({"module.conv.weight": torch.zeros(3, 3, 3, 3)}, wrong)
    v422 = root / "flownet_422.pkl"
    torch.manual_seed(0)
    net = build_network(get_model("4.22").spec)
    torch.save({"module." + k: v for k, v in net.flownet.state_dict().items()}, v422)
    return {"garbage": garbage, "wrong": wrong, "v422": v422, "missing": root / "does-not-exist.pkl"}


# (id, kwargs or a callable of the files fixture, clip factory, substrings the message must contain)
CASES: list[tuple[str, Any, Callable[[], Any], list[str]]] = [
    ("model-unknown", {"model": "9.99"}, _clip, ["model", "'9.99'", "3.6", "4.6", "4.22"]),
    ("model-path-missing", lambda f: {"model_path": str(f["missing"])}, _clip, ["model_path", "does-not-exist.pkl"]),
    ("model-path-garbage", lambda f: {"model_path": str(f["garbage"])}, _clip, ["garbage.pkl"]),
    ("model-path-wrong-network", lambda f: {"model_path": str(f["wrong"])}, _clip, ["wrong.pkl"]),
    ("factor_num-0", {"factor_num": 0}, _clip, ["factor_num", "positive integer", "got 0"]),
    ("factor_num-neg", {"factor_num": -1}, _clip, ["factor_num", "positive integer", "got -1"]),
    ("factor_den-0", {"factor_den": 0}, _clip, ["factor_den", "positive integer", "got 0"]),
    ("factor-1/1", {"factor_num": 1, "factor_den": 1}, _clip, ["factor_num/factor_den", "greater than 1"]),
    ("factor-2/3", {"factor_num": 2, "factor_den": 3}, _clip, ["factor_num/factor_den", "2/3", "greater than 1"]),
    ("factor-4/4", {"factor_num": 4, "factor_den": 4}, _clip, ["factor_num/factor_den", "greater than 1"]),
    ("fps_num-alone", {"fps_num": 50}, _clip, ["fps_num", "fps_den", "together"]),
    ("fps_den-alone", {"fps_den": 1}, _clip, ["fps_num", "fps_den", "together"]),
    ("fps_num-0", {"fps_num": 0, "fps_den": 1}, _clip, ["fps_num", "positive integer"]),
    ("fps_num-huge", {"fps_num": 10**15, "fps_den": 1}, _clip, ["fps_num", "up to 2147483647"]),
    ("factor_num-huge", {"factor_num": 2**40}, _clip, ["factor_num", "up to 2147483647"]),
    ("fps-equal", {"fps_num": 25, "fps_den": 1}, _clip, ["fps_num/fps_den", "higher than", "25"]),
    ("fps-lower", {"fps_num": 24000, "fps_den": 1001}, _clip, ["fps_num/fps_den", "higher than", "25"]),
    (
        "fps-on-fps0-clip",
        {"fps_num": 50, "fps_den": 1},
        lambda: _clip(fpsnum=0, fpsden=1),
        ["fps_num/fps_den", "fps 0", "factor_num/factor_den"],
    ),
    ("scale-0.3", {"scale": 0.3}, _clip, ["scale", "0.25", "0.5", "1.0", "2.0", "4.0", "0.3"]),
    ("scale-0", {"scale": 0.0}, _clip, ["scale", "0.25", "4.0"]),
    ("sc_threshold-0", {"sc_threshold": 0.0}, _clip, ["sc_threshold", "(0.0, 1.0]"]),
    ("sc_threshold-2", {"sc_threshold": 2.0}, _clip, ["sc_threshold", "(0.0, 1.0]"]),
    ("skip_threshold-0", {"skip_threshold": 0.0}, _clip, ["skip_threshold", "(0.0, 200.0]"]),
    ("sc_method", {"sc_method": "magic"}, _clip, ["sc_method", "'auto'", "'builtin'", "'props'", "magic"]),
    ("on_cut", {"on_cut": "fade"}, _clip, ["on_cut", "'repeat'", "'blend'", "fade"]),
    ("precision", {"precision": "fp8"}, _clip, ["precision", "'auto'", "'fp32'", "'fp16'", "'bf16'", "fp8"]),
    (
        "timestep_mode",
        {"timestep_mode": "cubic"},
        _clip,
        ["timestep_mode", "'auto'", "'native'", "'linear'", "'bisect'", "cubic"],
    ),
    ("device", {"device": "tpu"}, _clip, ["device", "auto", "cpu", "cuda", "cuda:N", "tpu"]),
    ("threads-neg", {"threads": -1}, _clip, ["threads", "non-negative", "-1"]),
    ("threads-huge", {"threads": 100000}, _clip, ["threads", "up to 1024", "100000"]),
    ("model_path-empty", {"model_path": "  "}, _clip, ["model_path", "empty"]),
    ("factor-and-fps", {"factor_num": 3, "fps_num": 60, "fps_den": 1}, _clip, ["factor_num/factor_den (3/1)", "both"]),
    ("ensemble-2", {"ensemble": 2}, _clip, ["ensemble", "boolean"]),
    ("torch_compile-2", {"torch_compile": 2}, _clip, ["torch_compile", "boolean"]),
    ("trt-2", {"trt": 2}, _clip, ["trt", "boolean"]),
    ("trt-on-cpu", {"trt": 1, "device": "cpu"}, _clip, ["trt needs a CUDA device", "'cpu'"]),
    ("trt-and-compile", {"trt": 1, "torch_compile": 1}, _clip, ["trt and torch_compile exclude each other"]),
    (
        "ensemble-on-4.22",
        lambda f: {"model": "4.22", "model_path": str(f["v422"]), "ensemble": True},
        _clip,
        ["ensemble", "4.22", "4.21"],
    ),
    (
        "ensemble-on-inferred-4.2x",
        lambda f: {"model_path": str(f["v422"]), "ensemble": True},
        _clip,
        ["ensemble", "4.21"],
    ),
    (
        "variable-format-blank",
        {},
        lambda: core.std.BlankClip(varformat=True, width=64, height=48, length=5),
        ["clip", "constant format", "variable-format"],
    ),
    (
        "variable-format-splice",
        {},
        lambda: core.std.Splice([_clip(), _clip(format=vs.RGB24)], mismatch=True),
        ["clip", "constant format", "variable-format"],
    ),
    (
        "variable-size-blank",
        {},
        lambda: core.std.BlankClip(varsize=True, format=vs.YUV420P8, length=5),
        ["clip", "constant format and size", "variable-size"],
    ),
    (
        "variable-size-splice",
        {},
        lambda: core.std.Splice([_clip(), _clip(width=32)], mismatch=True),
        ["clip", "variable-size"],
    ),
    (
        "format-int32",
        {},
        lambda: _clip(format=core.query_video_format(vs.YUV, vs.INTEGER, 32, 0, 0).id),
        ["unsupported format", "YUV444P32", "16 bits"],
    ),
    (
        "format-gray20",
        {},
        lambda: _clip(format=core.query_video_format(vs.GRAY, vs.INTEGER, 20, 0, 0).id),
        ["unsupported format", "20", "16 bits"],
    ),
    (
        "format-subsampling-8x",
        {},
        lambda: _clip(format=core.query_video_format(vs.YUV, vs.INTEGER, 8, 3, 3).id),
        ["unsupported format", "subsampling"],
    ),
]
if not torch.cuda.is_available():
    CASES.append(("device-cuda-without-gpu", {"device": "cuda"}, _clip, ["device", "cuda", "not available"]))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(("kwargs", "make_clip", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_argument_raises_vs_error_naming_it(
    entry: Callable[..., Any], kwargs: Any, make_clip: Callable[[], Any], expected: list[str], files: dict[str, Path]
) -> None:
    if callable(kwargs):
        kwargs = kwargs(files)
    clip = make_clip()
    with pytest.raises(vs.Error) as info:
        entry(clip, **kwargs)
    message = str(info.value)
    missing = [s for s in expected if s not in message]
    assert not missing, f"message lacks {missing}: {message[-600:]}"
    # The plugin glue prepends a traceback; the filter's own message must be its last line either way.
    last = message.strip().splitlines()[-1]
    assert "RIFE: " in last and all(s in last for s in expected), last


@pytest.mark.parametrize("entry", [_plugin, _plugin_vsrife], ids=["rife", "vsrife"])
def test_plugin_takes_whole_numbers_only(entry: Callable[..., Any]) -> None:
    """VapourSynth would truncate a float given for an int argument (2.5 -> 2x): the plugin declares them float
    and refuses fractions, naming the parameter; whole floats are the same as ints."""
    clip = _clip()
    for kwargs, name in (({"factor_num": 2.5}, "factor_num"), ({"factor_den": 1.5}, "factor_den"),
                         ({"fps_num": 59.94, "fps_den": 1}, "fps_num"), ({"threads": 1.9}, "threads"),
                         ({"ensemble": 0.9}, "ensemble"), ({"sc": 0.5}, "sc"), ({"skip": 1.5}, "skip")):  # fmt: skip
        with pytest.raises(vs.Error, match=f"{name} must be a whole number"):
            entry(clip, **kwargs)
    out = entry(clip, factor_num=5.0, factor_den=2, sc=1.0)
    assert out.num_frames == 25 and out.fps == 62.5


def test_python_only_type_errors_name_the_parameter() -> None:
    """Arguments VapourSynth would convert or refuse itself, given straight to the Python function."""
    clip = _clip()
    for kwargs, name in (
        ({"factor_num": 2.5}, "factor_num"),
        ({"fps_num": 50.0, "fps_den": 1}, "fps_num"),
        ({"threads": 1.5}, "threads"),
        ({"sc": "yes"}, "sc"),
        ({"model": 3.6}, "model"),
        ({"model_path": b"\xff/x.pkl"}, "model_path must be UTF-8"),
        ({"skip_threshold": 10**400}, "skip_threshold"),  # beyond float's range
        ({"sc_threshold": -(10**400)}, "sc_threshold"),
    ):
        with pytest.raises(vs.Error, match=name):
            vsrife.RIFE(clip, **kwargs)
    with pytest.raises(vs.Error, match="clip"):
        vsrife.RIFE(None)  # type: ignore[arg-type]


def test_python_takes_what_the_plugin_takes() -> None:
    """Paths as ``os.PathLike`` and integers of numpy's types, as ``core.rife.RIFE`` converts them: the Python
    function refused them ("model_path must be a string, got PosixPath(...)")."""
    import numpy as np

    from vsrife.models import store

    clip = _clip()
    out = vsrife.RIFE(clip, factor_num=np.int64(3), factor_den=np.int32(1), threads=np.uint8(1), scale=np.float32(0.5))
    assert out.num_frames == 30 and out.fps == 75
    out = vsrife.RIFE(clip, fps_num=np.int64(50), fps_den=np.int16(1), sc_threshold=np.float32(0.1))
    assert out.num_frames == 20
    folder = store.locate("3.6")
    if folder is not None:
        assert vsrife.RIFE(clip, model_path=Path(folder) / "flownet.pkl").num_frames == 20
    with pytest.raises(vs.Error, match="model_path must be a path, got an empty string"):
        vsrife.RIFE(clip, model_path="")
    with pytest.raises(vs.Error, match="factor_num must be a positive integer"):
        vsrife.RIFE(clip, factor_num=np.float64(2.0))  # a float stays a float, as for int arguments
    with pytest.raises(vs.Error, match="threads must be"):
        vsrife.RIFE(clip, threads=np.True_)


def test_valid_arguments_build_through_both_entry_points() -> None:
    """The checks are not over-eager: bytes for strings, 0/1 for booleans, upper case, a valid fps target."""
    clip = _clip()
    for entry in (_python, _plugin, _plugin_vsrife):
        out = entry(
            clip,
            factor_num=5,
            factor_den=2,
            sc_method="Builtin",
            on_cut="blend",
            ensemble=0,
            sc=1,
            precision="fp32",
            device="cpu",
            timestep_mode="linear",
            threads=1,
            scale=0.5,
        )
        assert out.num_frames == 25 and out.fps == vs.core.std.BlankClip(fpsnum=125, fpsden=2).fps
        out = entry(clip, fps_num=60, fps_den=1)
        assert (out.fps.numerator, out.fps.denominator) == (60, 1)
        # an empty cache folder (an unset environment variable passed on) means the default one
        assert entry(clip, trt_cache_dir="").num_frames == 20


@pytest.mark.parametrize("namespace", ["rife", "vsrife"])
def test_registered_signature_has_every_python_parameter(namespace: str) -> None:
    plugin = getattr(core, namespace, None)
    if plugin is None:
        pytest.skip(f"core.{namespace} is not installed")
    if namespace == "rife" and plugin.identifier != "com.vsrife.rife":
        pytest.skip("core.rife belongs to another plugin")
    registered = {}
    for item in plugin.RIFE.signature.strip(";").split(";"):
        name, kind, *flags = item.split(":")
        registered[name] = (kind, "opt" in flags)
    params = inspect.signature(filter_rife.RIFE).parameters
    assert list(registered) == list(params), "the plugin's argument order differs from vsrife.filter.RIFE"
    kinds = {int: "float", float: "float", bool: "float", str: "data"}  # numbers as float: see _bridge.WHOLE
    for name, param in params.items():
        kind, optional = registered[name]
        assert optional == (param.default is not inspect.Parameter.empty), name
        if name == "clip":
            assert kind == "vnode"
            continue
        default = param.default
        whole = type(default) in (int, bool) or name in ("fps_num", "fps_den")
        assert (name in WHOLE) == whole, f"{name}: integer arguments must be checked as whole numbers"
        expected = kinds[type(default)] if default is not None else None
        if expected is not None:
            assert kind == expected, f"{name}: registered {kind}, Python default {default!r}"
        else:  # None defaults: the annotation tells (model, model_path, trt_cache_dir strings; fps_* integers)
            assert kind == ("data" if "str" in str(param.annotation) else "float"), (name, param.annotation)


def test_allocator_tuned_for_mid_size_clips_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """720p-1080p CPU clips tune glibc when the filter is made (before VapourSynth's threads allocate)."""
    from vsrife.engine import devices

    calls: list[int] = []
    monkeypatch.setattr(devices, "keep_freed_memory", lambda: bool(calls.append(1)) or True)
    vsrife.RIFE(_clip(width=640, height=360), device="cpu")
    vsrife.RIFE(_clip(width=3840, height=2160), device="cpu")
    assert calls == []
    vsrife.RIFE(_clip(width=1280, height=720), device="cpu")
    assert calls == [1]


def test_out_of_memory_names_the_frame_and_what_to_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device running out of memory inside the network (4K on a small GPU) is reported for the frame,
    with what to change, instead of a bare torch traceback."""

    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    monkeypatch.setattr(filter_rife.Interpolator, "interpolate_prepared", exhausted)
    clip = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=3)
    out = filter_rife.RIFE(core.std.Splice([clip[0], core.std.Invert(clip[1]), clip[2]]), device="cpu", sc=False)
    out.get_frame(0)  # source frames need no network
    with pytest.raises(vs.Error, match=r"RIFE: frame 1: out of CPU memory at 64x48 \(CUDA out of memory.*scale=0\.5"):
        out.get_frame(1)
