"""Hatchling build hook: compile the native ``rife`` / ``vsrife`` namespace shim into the wheel.

``vsrife/_shim/rife_shim.c`` is compiled once per namespace with the system C compiler and placed
at ``vapoursynth/plugins/<name>`` inside the wheel (regular and editable), i.e. in the folder the
VapourSynth PyPI wheel autoloads; being in the wheel's RECORD, uninstalling removes it again.

Headers (``VapourSynth4.h``) are looked up in ``$VSRIFE_VS_INCLUDE``, the ``vapoursynth`` package
importable by the build (it is a build requirement, so pip's isolated build env has the wheel and
its ``include/``), ``pkg-config vapoursynth``, then the usual system include folders.
Environment: ``CC``, ``CFLAGS``, ``LDFLAGS`` are honoured; ``VSRIFE_NO_SHIM=1`` skips the shim;
``VSRIFE_SHIM_NAMESPACES=vsrife`` builds only the listed namespaces (comma-separated; default
``rife,vsrife``), e.g. to leave ``rife`` to the ncnn-Vulkan plugin (vsrife/_shim/NAMESPACE_NOTES.md).
Without a compiler or headers the wheel is built without the shim and a warning is shown.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from packaging.version import Version

SOURCE = Path("vsrife") / "_shim" / "rife_shim.c"
PLUGIN_DIR = "vapoursynth/plugins"
# plugin namespace -> library stem; "vsrife" stays usable when another plugin owns "rife"
NAMESPACES = {"rife": "libvsrife_shim", "vsrife": "libvsrife_shim_vsrife"}


def find_vapoursynth_include() -> Path | None:
    """Return a folder containing ``VapourSynth4.h``, or None."""
    candidates: list[Path] = []
    if override := os.environ.get("VSRIFE_VS_INCLUDE"):
        candidates.append(Path(override))
    spec = importlib.util.find_spec("vapoursynth")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / "include" for location in spec.submodule_search_locations]
    if pkg_config := shutil.which("pkg-config"):
        result = subprocess.run(
            [pkg_config, "--cflags-only-I", "vapoursynth"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            for flag in shlex.split(result.stdout):
                candidates += [Path(flag[2:]), Path(flag[2:]) / "vapoursynth"]
    for prefix in (sys.prefix, "/usr/local", "/usr"):
        candidates.append(Path(prefix) / "include" / "vapoursynth")
    return next((folder for folder in candidates if (folder / "VapourSynth4.h").is_file()), None)


def find_compiler() -> list[str] | None:
    """Return the C compiler command (``$CC`` or the first of cc, gcc, clang), or None."""
    if compiler := os.environ.get("CC"):
        return shlex.split(compiler)
    found = next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)
    return [found] if found else None


def compile_shim(
    compiler: list[str], include: Path, source: Path, output: Path, namespace: str, version: tuple[int, int] = (0, 0)
) -> None:
    """Compile ``source`` into the shared library ``output`` registering ``namespace`` at plugin ``version``."""
    link = ["-dynamiclib"] if sys.platform == "darwin" else ["-shared"]
    command = [
        *compiler,
        "-std=c11",
        "-O2",
        "-fPIC",
        "-pthread",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        *shlex.split(os.environ.get("CFLAGS", "")),
        f"-I{include}",
        f'-DVSRIFE_NAMESPACE="{namespace}"',
        f"-DVSRIFE_VERSION_MAJOR={version[0]}",
        f"-DVSRIFE_VERSION_MINOR={version[1]}",
        *link,
        "-o",
        str(output),
        str(source),
        *shlex.split(os.environ.get("LDFLAGS", "")),
        "-ldl",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        error = result.stderr if result.returncode else ""
    except OSError as exc:
        error = str(exc)
    if error:
        raise RuntimeError(f"building the vsrife VapourSynth shim failed:\n{shlex.join(command)}\n{error}")


class ShimBuildHook(BuildHookInterface):
    """Adds the compiled shim libraries to wheel and editable builds."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compile the shims and map them to ``vapoursynth/plugins/`` in the wheel."""
        self._workdir: str | None = None
        if self.target_name != "wheel" or os.environ.get("VSRIFE_NO_SHIM", "0") not in ("", "0"):
            return
        wanted = {ns.strip() for ns in os.environ.get("VSRIFE_SHIM_NAMESPACES", ",".join(NAMESPACES)).split(",")}
        if unknown := wanted - set(NAMESPACES) - {""}:
            raise ValueError(f"VSRIFE_SHIM_NAMESPACES: unknown {sorted(unknown)}, choose from {list(NAMESPACES)}")
        compiler, include = find_compiler(), find_vapoursynth_include()
        if sys.platform == "win32" or compiler is None or include is None:
            reason = "Windows is not supported" if sys.platform == "win32" else "no C compiler or VapourSynth4.h found"
            self.app.display_warning(f"vsrife: not building the core.rife shim ({reason}); use vsrife.RIFE()")
            return

        self._workdir = tempfile.mkdtemp(prefix="vsrife-shim-")
        suffix = ".dylib" if sys.platform == "darwin" else ".so"
        major, minor, *_ = (*Version(self.metadata.version).release, 0)
        built: dict[str, str] = {}
        try:
            for namespace in sorted(wanted & NAMESPACES.keys()):
                output = Path(self._workdir) / f"{NAMESPACES[namespace]}{suffix}"
                compile_shim(compiler, include, Path(self.root) / SOURCE, output, namespace, (major, minor))
                built[str(output)] = f"{PLUGIN_DIR}/{output.name}"
        except Exception:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise
        if not built:
            return
        self.app.display_info(f"vsrife: built the VapourSynth shim ({', '.join(built.values())}) with {include}")

        build_data["force_include_editable" if version == "editable" else "force_include"].update(built)
        build_data["pure_python"] = False
        if version != "editable":  # the shim does not link libpython: any CPython 3, this platform
            build_data["tag"] = "py3-none-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the temporary build folder."""
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
