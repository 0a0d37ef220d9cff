"""The native ``core.rife`` / ``core.vsrife`` shim (vsrife/_shim) and its Python bridge (vsrife._bridge).

Needs the package installed (``pip install -e .``), which builds the shim into VapourSynth's plugin
folder. Tests that need the real ``vsrife.filter.RIFE`` skip until it exists; the forwarding itself
is checked with a stand-in ``vsrife.filter`` module.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

vs = pytest.importorskip("vapoursynth")

REPO = Path(__file__).resolve().parents[1]
SHIM_SOURCE = REPO / "vsrife" / "_shim" / "rife_shim.c"
IDENTIFIERS = {"rife": "com.vsrife.rife", "vsrife": "com.vsrife.vsrife"}

# The public contract of core.rife.RIFE: (name, type, optional), in order.
EXPECTED_ARGS = [
    ("clip", "vnode", False),
    ("model", "data", True),
    ("model_path", "data", True),
    ("factor_num", "float", True),
    ("factor_den", "float", True),
    ("fps_num", "float", True),
    ("fps_den", "float", True),
    ("scale", "float", True),
    ("ensemble", "float", True),
    ("sc", "float", True),
    ("sc_threshold", "float", True),
    ("sc_method", "data", True),
    ("on_cut", "data", True),
    ("skip", "float", True),
    ("skip_threshold", "float", True),
    ("device", "data", True),
    ("precision", "data", True),
    ("timestep_mode", "data", True),
    ("threads", "float", True),
    ("torch_compile", "float", True),
    ("trt", "float", True),
    ("trt_cache_dir", "data", True),
]

# A stand-in vsrife.filter for subprocess scripts: doubles the frame rate, fails on factor_num=7.
STUB_MODULE = """
import sys, types
import vapoursynth as vs

def _stub_rife(clip, factor_num=2, **kwargs):
    if factor_num == 7:
        raise ValueError("stub refuses factor 7")
    return clip.std.AssumeFPS(fpsnum=clip.fps.numerator * factor_num, fpsden=clip.fps.denominator)

sys.modules["vsrife.filter"] = types.SimpleNamespace(RIFE=_stub_rife)
"""


def parse_signature(signature: str) -> list[tuple[str, str, bool]]:
    """``"a:int:opt;b:vnode;"`` -> ``[("a", "int", True), ("b", "vnode", False)]``."""
    args = []
    for part in filter(None, signature.split(";")):
        name, kind, *flags = part.split(":")
        args.append((name, kind, "opt" in flags))
    return args


def shim(namespace: str) -> vs.Plugin:
    """The installed shim plugin for ``namespace``; skips if another plugin owns that namespace."""
    plugins = {plugin.namespace: plugin for plugin in vs.core.plugins()}
    plugin = plugins.get(namespace)
    if plugin is None:
        pytest.fail(f"no VapourSynth plugin in namespace {namespace!r}: install vsrife with `pip install -e .`")
    if plugin.identifier != IDENTIFIERS[namespace]:
        pytest.skip(f"namespace {namespace!r} is owned by {plugin.identifier} ({plugin.plugin_path})")
    return plugin


def real_rife() -> Callable[..., Any]:
    """``vsrife.filter.RIFE``; skips while it does not exist yet."""
    try:
        module = importlib.import_module("vsrife.filter")
    except ImportError as error:
        pytest.skip(f"vsrife.filter is not importable yet ({error})")
    if not callable(getattr(module, "RIFE", None)):
        pytest.skip("vsrife.filter has no RIFE yet")
    return module.RIFE


@pytest.fixture
def stub_filter(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace ``vsrife.filter`` with a stand-in whose RIFE records its arguments and doubles the fps."""
    calls: list[dict[str, Any]] = []

    def rife(clip: vs.VideoNode, **kwargs: Any) -> Any:
        calls.append({"clip": clip, **kwargs})
        if kwargs.get("model") == "raise-vs-error":
            raise vs.Error("stub: unknown model raise-vs-error")
        if kwargs.get("model") == "raise-value-error":
            raise ValueError("stub: factor must be positive")
        if kwargs.get("model") == "return-int":
            return 42
        return clip.std.AssumeFPS(fpsnum=clip.fps.numerator * 2, fpsden=clip.fps.denominator)

    monkeypatch.setitem(sys.modules, "vsrife.filter", types.SimpleNamespace(RIFE=rife))
    return calls


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this interpreter in a fresh process."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def run_vspipe(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``vspipe --info`` on ``script`` (a .vpy body), with VSScript configured in a private config dir."""
    vspipe = Path(sys.executable).with_name("vspipe")
    if not vspipe.exists():
        vspipe = Path(shutil.which("vspipe") or "vspipe")
    if not vspipe.exists():
        pytest.skip("vspipe not found")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    subprocess.run([sys.executable, "-m", "vapoursynth", "config"], env=env, check=True, capture_output=True)
    path = tmp_path / "script.vpy"
    path.write_text(textwrap.dedent(script))
    return subprocess.run([str(vspipe), "--info", str(path), "-"], capture_output=True, text=True, timeout=600, env=env)


# ---- installation ----------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", IDENTIFIERS)
def test_shim_is_autoloaded_from_plugin_dir(namespace: str) -> None:
    plugin = shim(namespace)
    assert Path(plugin.plugin_path).parent == Path(vs.get_plugin_dir())
    assert {function.name for function in plugin.functions()} == {"RIFE", "Bind"}


def test_shim_files_are_in_record() -> None:
    """Uninstalling vsrife removes the shim libraries because they are listed in its RECORD."""
    files = {Path(file.locate()).resolve() for file in importlib.metadata.files("vsrife") or []}
    for namespace in IDENTIFIERS:
        plugin = {p.identifier: p for p in vs.core.plugins()}.get(IDENTIFIERS[namespace])
        if plugin is not None:
            assert Path(plugin.plugin_path).resolve() in files


# ---- signature ----------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", IDENTIFIERS)
def test_signature_is_exact(namespace: str) -> None:
    function = shim(namespace).RIFE
    assert parse_signature(function.signature) == EXPECTED_ARGS
    assert function.return_signature == "clip:vnode;"


def test_installed_shim_matches_source() -> None:
    """Catches a stale build (e.g. an editable install older than rife_shim.c): reinstall to fix."""
    match = re.search(r"#define RIFE_ARGS((?:.*\\\n)*.*)", SHIM_SOURCE.read_text())
    assert match, "RIFE_ARGS not found in rife_shim.c"
    source_signature = "".join(re.findall(r'"([^"]*)"', match.group(1)))
    assert source_signature == shim("vsrife").RIFE.signature


def test_signature_matches_python_filter() -> None:
    parameters = inspect.signature(real_rife()).parameters
    names = [name for name, _, _ in parse_signature(shim("vsrife").RIFE.signature)]
    assert [name for name in names if name not in parameters] == []
    required = [
        name
        for name, parameter in parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    assert required == ["clip"], "the shim can only pass `clip` unconditionally"


# ---- forwarding (stand-in filter) ------------------------------------------------------------------


@pytest.mark.parametrize("namespace", IDENTIFIERS)
def test_forwards_arguments_and_returns_clip(namespace: str, stub_filter: list[dict[str, Any]]) -> None:
    clip = vs.core.std.BlankClip(width=64, height=48, length=5, fpsnum=24)
    out = shim(namespace).RIFE(clip, model="4.22", model_path=b"/tmp/x.pkl", factor_num=3, scale=0.5)
    assert isinstance(out, vs.VideoNode)
    assert (out.fps, out.num_frames, out.width) == (48, 5, 64)
    assert out.get_frame(4).width == 64
    (call,) = stub_filter
    received = call.pop("clip")
    assert isinstance(received, vs.VideoNode) and received.num_frames == 5
    assert call == {"model": "4.22", "model_path": "/tmp/x.pkl", "factor_num": 3, "scale": 0.5}


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("raise-vs-error", "stub: unknown model raise-vs-error"),
        ("raise-value-error", "ValueError: stub: factor must be positive"),
        ("return-int", "vsrife.filter.RIFE returned int, expected a VideoNode"),
    ],
)
def test_python_errors_surface_as_vs_error(model: str, message: str, stub_filter: list[dict[str, Any]]) -> None:
    with pytest.raises(vs.Error) as info:
        shim("rife").RIFE(vs.core.std.BlankClip(length=2), model=model)
    assert str(info.value).startswith("rife.RIFE: ")
    assert message in str(info.value)


def test_missing_filter_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vsrife.filter", types.SimpleNamespace())
    with pytest.raises(vs.Error, match=r"vsrife\.RIFE: (.|\n)*cannot import vsrife\.filter\.RIFE") as info:
        shim("vsrife").RIFE(vs.core.std.BlankClip(length=2))
    assert "Traceback" not in str(info.value)  # a broken install is a user's problem to fix, said plainly


@pytest.mark.parametrize(
    ("path", "shown"),
    [(b"/nonexistent\xff", "/nonexistent\\udcff"), ("/a\x00b", "/a\\x00b")],
    ids=["undecodable-bytes", "nul"],
)
def test_messages_with_odd_characters_arrive_whole(path: bytes | str, shown: str) -> None:
    """A path of bytes that are no UTF-8 (it turned the message into a traceback) or with a NUL (a C string
    cut it there): the whole message arrives, those characters escaped."""
    with pytest.raises(vs.Error) as info:
        shim("rife").RIFE(vs.core.std.BlankClip(length=2), model_path=path)
    assert str(info.value) == f"rife.RIFE: model_path {shown} does not exist"


def test_bind_is_internal() -> None:
    """Bind receives RIFE's entry point; called directly (from a thread that then ends) it parked the
    function for the life of the process."""
    import threading
    import weakref

    def entry(**kwargs: Any) -> dict[str, Any]:
        return {}

    ref, held = weakref.ref(entry), [entry]
    errors: list[str] = []

    def call() -> None:
        try:
            shim("rife").Bind(func=held[0])
        except vs.Error as exc:
            errors.append(str(exc))

    worker = threading.Thread(target=call)
    worker.start()
    worker.join()
    assert errors and "internal to RIFE" in errors[0]
    held.clear()
    del entry
    import gc

    gc.collect()
    assert ref() is None


def test_vspipe_forwards_without_import(tmp_path: Path) -> None:
    shim("rife")
    result = run_vspipe(
        STUB_MODULE
        + """
from vapoursynth import core
clip = core.std.BlankClip(width=64, height=48, length=4, fpsnum=24)
core.rife.RIFE(clip, factor_num=3).set_output(0)
try:
    core.rife.RIFE(clip, factor_num=7)
except vs.Error as error:
    assert "ValueError: stub refuses factor 7" in str(error), error
else:
    raise AssertionError("no error")
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"FPS: 72/1", result.stdout), result.stdout


def test_each_environment_binds_its_own_core() -> None:
    """Several VapourSynth environments (editors, vsscript) each get RIFE bound to their own core."""
    shim("rife")
    result = run_python(
        STUB_MODULE
        + """
class Policy(vs.EnvironmentPolicy):
    def on_policy_registered(self, api):
        self.api, self.current = api, None
    def get_current_environment(self):
        return self.current
    def set_environment(self, env):
        old, self.current = self.current, env
        return old

policy = Policy()
vs.register_policy(policy)
data = [policy.api.create_environment() for _ in range(2)]
envs = [policy.api.wrap_environment(d) for d in data]
cores = []
for env in envs:
    with env.use():
        cores.append(vs.core.core)
        out = vs.core.rife.RIFE(vs.core.std.BlankClip(length=3, fpsnum=24))
        assert out.fps == 48 and out.get_frame(2).width == 640
with envs[1].use():
    try:
        cores[0].rife.RIFE(cores[0].std.BlankClip(length=3))
    except vs.Error as error:
        assert "not the current VapourSynth Python environment's core" in str(error), error
    else:
        raise AssertionError("a foreign core was accepted")
for d in data:
    policy.api.destroy_environment(d)
print("ok")
"""
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr


# ---- forwarding (real vsrife.filter.RIFE) -----------------------------------------------------------


def test_vspipe_uses_vsrife_filter(tmp_path: Path) -> None:
    """A .vpy without `import vsrife` reaches vsrife.filter.RIFE, or says clearly that it is missing."""
    shim("rife")
    result = run_vspipe(
        """
import vapoursynth as vs
from vapoursynth import core
clip = core.std.BlankClip(width=64, height=64, length=4, fpsnum=24, format=vs.RGBS)
core.rife.RIFE(clip, factor_num=2).set_output(0)
""",
        tmp_path,
    )
    try:
        rife = importlib.import_module("vsrife.filter").RIFE
    except (ImportError, AttributeError):
        assert result.returncode != 0
        assert "rife.RIFE" in result.stderr and "cannot import vsrife.filter.RIFE" in result.stderr
        return
    clip = vs.core.std.BlankClip(width=64, height=64, length=4, fpsnum=24, format=vs.RGBS)
    try:
        expected = rife(clip, factor_num=2)
    except Exception as error:  # the shim must report the same failure
        assert result.returncode != 0
        assert str(error).strip().splitlines()[-1] in result.stderr
        return
    assert result.returncode == 0, result.stderr
    assert f"Frames: {expected.num_frames}" in result.stdout
    assert f"FPS: {expected.fps.numerator}/{expected.fps.denominator}" in result.stdout


def test_real_filter_errors_keep_their_message() -> None:
    rife = real_rife()
    clip = vs.core.std.BlankClip(width=64, height=64, length=2, format=vs.RGBS)
    try:
        rife(clip, model="no-such-rife-model")
    except Exception as error:
        expected = str(error).strip().splitlines()[-1]
    else:
        pytest.skip("vsrife.filter.RIFE accepted model='no-such-rife-model'")
    with pytest.raises(vs.Error) as info:
        shim("rife").RIFE(clip, model="no-such-rife-model")
    assert expected in str(info.value)


# ---- hosts and namespace clashes -----------------------------------------------------------------


def build_with_hook(tmp_path: Path, namespace: str, identifier: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Compile the current rife_shim.c with hatch_build.py's helpers (skips without a compiler)."""
    pytest.importorskip("hatchling")
    monkeypatch.setenv("CFLAGS", f"'-DVSRIFE_IDENTIFIER=\"{identifier}\"'")
    sys.path.insert(0, str(REPO))
    try:
        hatch_build = importlib.import_module("hatch_build")
    finally:
        sys.path.remove(str(REPO))
    compiler, include = hatch_build.find_compiler(), hatch_build.find_vapoursynth_include()
    if compiler is None or include is None:
        pytest.skip("no C compiler or VapourSynth headers")
    output = tmp_path / f"libshim_{namespace}.so"
    hatch_build.compile_shim(compiler, include, SHIM_SOURCE, output, namespace)
    return output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="C host test is Linux-only")
def test_host_without_python_gets_an_error(tmp_path: Path) -> None:
    """A C program using libvapoursynth without Python gets an error from RIFE, not a crash."""
    shim("vsrife")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    source = tmp_path / "host.c"
    source.write_text(
        textwrap.dedent(
            """
            #include <dlfcn.h>
            #include <stdio.h>
            #include "VapourSynth4.h"
            int main(int argc, char **argv) {
                void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
                if (!lib) { fprintf(stderr, "%s\\n", dlerror()); return 2; }
                const VSAPI *vsapi = ((VSGetVapourSynthAPI)dlsym(lib, "getVapourSynthAPI"))(VAPOURSYNTH_API_VERSION);
                VSCore *core = vsapi->createCore(0);
                VSMap *args = vsapi->createMap();
                VSMap *blank = vsapi->invoke(vsapi->getPluginByID("com.vapoursynth.std", core), "BlankClip", args);
                vsapi->mapConsumeNode(args, "clip", vsapi->mapGetNode(blank, "clip", 0, NULL), maReplace);
                for (int i = 2; i < argc; i++) {
                    VSMap *out = vsapi->invoke(vsapi->getPluginByNamespace(argv[i], core), "RIFE", args);
                    printf("%s\\n", vsapi->mapGetError(out) ? vsapi->mapGetError(out) : "no error");
                    vsapi->freeMap(out);
                }
                vsapi->freeMap(blank);
                vsapi->freeMap(args);
                vsapi->freeCore(core);
                return 0;
            }
            """
        )
    )
    host = tmp_path / "host"
    subprocess.run([compiler, f"-I{vs.get_include()}", "-o", str(host), str(source), "-ldl"], check=True)
    library = Path(vs.__file__).with_name("libvapoursynth.so.4")
    result = subprocess.run([str(host), str(library), "vsrife"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "vsrife.RIFE: vsrife needs the VapourSynth Python module loaded in this process "
        "(run the script with vspipe or from Python)"
    )


def test_namespace_clash_and_forcens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second `rife` plugin is refused; LoadPlugin(forcens=...) still works and binds correctly."""
    shim("rife")
    library = build_with_hook(tmp_path, "rife", "com.example.other.rife", monkeypatch)
    result = run_python(
        STUB_MODULE
        + f"""
from vapoursynth import core
try:
    core.std.LoadPlugin({str(library)!r})
except vs.Error as error:
    assert "namespace rife already populated" in str(error), error
else:
    raise AssertionError("second rife namespace accepted")
core.std.LoadPlugin({str(library)!r}, forcens="rife2")
assert core.rife2.identifier == "com.example.other.rife"
assert core.rife2.RIFE(core.std.BlankClip(length=2, fpsnum=24)).fps == 48
try:
    core.rife2.RIFE(core.std.BlankClip(length=2), factor_num=7)
except vs.Error as error:
    assert str(error).startswith("rife2.RIFE: "), error
print("ok")
"""
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
