"""GPU (or CPU dry-run) throughput: the model alone and the full VapourSynth path.

Targets (issue "Speed"): a 4.6-architecture model (random weights), 1920x1080 RGBH, 2x, through
vspipe: >= 1000 output fps and <= 2 GB GPU memory on one H100; 4.25 and v3.6 reported too.
Per model it reports: interpolations/s of the network alone, eager and with CUDA graphs (and
whether both give the same pixels); output fps of the filter in-process (frames requested
concurrently, as vspipe does) and through ``vspipe`` itself; peak GPU memory. A pass-through
``ModifyFrame`` that only copies frames gives the ceiling of VapourSynth's Python callbacks at
that frame size. ``--compile`` adds ``torch_compile=True`` runs (network, filter, vspipe; the compile
time is reported as ``first_call_s`` / ``first_frame_s``). Writes one JSON file:
``python benchmarks/gpu_bench.py --out out/gpu_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vsrife.arch import build_network
from vsrife.engine import Interpolator, PreparedFrame
from vsrife.models import get_model, load_model

_VPY = """\
import vapoursynth as vs
from vsrife.filter import RIFE
clip = vs.core.std.BlankClip(format=vs.RGBH, width={w}, height={h}, length={n}, fpsnum=24, color=[0.2, 0.5, 0.8])
RIFE(clip, model={model!r}, model_path={path!r}, device={device!r}, torch_compile={compile!r}).set_output()
"""


# Network-alone variants: eager NCHW (a plain port) -> graphs NCHW -> the default (graphs + channels_last
# + inference layout on CUDA); the official widths (v3.6: 90, not 96; ResConv gains apart); compiled.
_PLAIN = {"inference_layout": False}
_VARIANTS: dict[str, dict[str, Any]] = {
    "eager_nchw": {"cuda_graphs": False, "channels_last": False, **_PLAIN},
    "graphs_nchw": {"cuda_graphs": True, "channels_last": False, **_PLAIN},
    "default": {},
    "default_official_layout": _PLAIN,
    "default_cudnn_benchmark": {},
    "compiled": {"torch_compile": True},
    "tensorrt": {"trt": True},  # with --trt only (extra trt): the first run builds the engine (minutes)
}
_OPT_IN = ("compiled", "tensorrt")


def random_checkpoint(version: str, folder: Path) -> Path:
    """Official-layout checkpoint with seeded random weights (speed does not depend on values)."""
    torch.manual_seed(0)
    net = build_network(get_model(version).spec)
    path = folder / f"flownet_v{version}.pkl"
    torch.save({f"module.{k}": v for k, v in net.flownet.state_dict().items()}, path)
    return path


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _prepared_pair(engine: Interpolator, width: int, height: int) -> tuple[PreparedFrame, PreparedFrame]:
    """Two seeded random frames 8 px apart, uploaded and padded by ``engine``."""
    a = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(engine.device)
    return engine.prepare(a, key="a"), engine.prepare(torch.roll(a, 8, 3), key="b")


def model_alone(engine: Interpolator, width: int, height: int, frames: int) -> dict[str, Any]:
    """Network-only throughput on prepared (uploaded, padded) frames at t = 0.5."""
    dev = engine.device
    f0, f1 = _prepared_pair(engine, width, height)
    start = time.perf_counter()
    first = engine.interpolate_prepared(f0, f1, 0.5)  # warm-up (graph capture, compile)
    _sync(dev)
    warmup_s = time.perf_counter() - start
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(frames):
        engine.interpolate_prepared(f0, f1, 0.5)
    _sync(dev)
    elapsed = time.perf_counter() - start
    out: dict[str, Any] = {"interpolations_per_s": round(frames / elapsed, 2), "cuda_graphs": engine.cuda_graphs,
                           "torch_compile": engine.torch_compile, "tensorrt": engine.tensorrt,
                           "first_call_s": round(warmup_s, 2)}  # fmt: skip
    if dev.type == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    out["_first"] = first
    return out


def kernel_profile(engine: Interpolator, width: int, height: int, iters: int = 10, top: int = 20) -> dict[str, Any]:
    """Where the GPU time of one eager interpolation goes: the ``top`` kernels by device time per call."""
    from torch.profiler import ProfilerActivity, profile

    dev = engine.device
    f0, f1 = _prepared_pair(engine, width, height)
    engine.interpolate_prepared(f0, f1, 0.5)
    _sync(dev)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            engine.interpolate_prepared(f0, f1, 0.5)
        _sync(dev)
    rows = []
    for ev in prof.key_averages():
        us = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
        if us and ev.key and not ev.key.startswith("ProfilerStep"):
            rows.append((us / iters, ev.count / iters, ev.key))
    rows.sort(reverse=True)
    kernels = [r for r in rows if not r[2].startswith("aten::")] or rows
    total = sum(r[0] for r in kernels)
    return {
        "device_ms_per_interpolation": round(total / 1000, 3),
        "top": [{"kernel": k[:110], "calls": round(c, 1), "ms": round(us / 1000, 3), "share": round(us / total, 3)}
                for us, c, k in kernels[:top]],
    }  # fmt: skip


def passthrough_ceiling(width: int, height: int, frames: int) -> dict[str, Any]:
    """Output fps of a ModifyFrame that copies each frame and writes every plane (no model)."""
    try:
        import numpy as np
        import vapoursynth as vs
    except ImportError:
        return {"skipped": "vapoursynth is not installed"}
    clip = vs.core.std.BlankClip(format=vs.RGBH, width=width, height=height, length=frames)

    def copy(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), np.asarray(f[p]))
        return out

    node = vs.core.std.ModifyFrame(clip, clip, copy)
    start = time.perf_counter()
    for _ in node.frames():
        pass
    return {"output_fps": round(frames / (time.perf_counter() - start), 1)}


def filter_path(
    model_path: Path, model: str, width: int, height: int, frames: int, device: str, fmt: str = "RGBH",
    torch_compile: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The filter in-process; frames requested concurrently (``VideoNode.frames`` prefetches like vspipe)."""
    try:
        import vapoursynth as vs
    except ImportError:
        return {"skipped": "vapoursynth is not installed"}
    from vsrife.filter import RIFE

    clip = vs.core.std.BlankClip(format=getattr(vs, fmt), width=width, height=height, length=frames // 2 + 8, fpsnum=24)
    out = RIFE(clip, model=model, model_path=str(model_path), device=device, torch_compile=torch_compile)
    start = time.perf_counter()
    out.get_frame(1)  # warm-up: model load, graph capture, compile
    warmup_s = time.perf_counter() - start
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    n = min(frames, out.num_frames)
    start = time.perf_counter()
    for _ in out[2:n].frames():
        pass
    elapsed = time.perf_counter() - start
    res: dict[str, Any] = {"output_fps": round((n - 2) / elapsed, 1), "output_frames": n - 2,
                           "first_frame_s": round(warmup_s, 2)}  # fmt: skip
    if torch.cuda.is_available():
        res["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return res


def vspipe_path(
    model_path: Path, model: str, width: int, height: int, frames: int, device: str, torch_compile: bool = False
) -> dict[str, Any]:
    """``vspipe script.vpy --`` (no output): the whole path as users run it, model load included once.

    With ``torch_compile`` the in-process runs before it have filled inductor's on-disk cache (as an
    earlier render of the same model and size would): vspipe loads the compiled kernels."""
    vspipe = shutil.which("vspipe") or str(Path(sys.executable).with_name("vspipe"))
    if not Path(vspipe).exists():
        return {"skipped": "vspipe not found"}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.vpy"
        n = 2 * frames + 8
        script.write_text(
            _VPY.format(w=width, h=height, n=n, model=model, path=str(model_path), device=device, compile=torch_compile)
        )
        results: dict[str, Any] = {}
        for label, count in (("short", max(frames // 4, 2)), ("long", max(4 * frames, 4))):
            cmd = [vspipe, "-e", str(count - 1), str(script), "--"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                return {"error": proc.stderr.strip()[-800:]}
            m = re.search(r"Output (\d+) frames in ([\d.]+) seconds \(([\d.]+) fps\)", proc.stderr)
            results[label] = {"frames": count, "wall_s": round(wall, 3), "vspipe_fps": float(m.group(3)) if m else None}
        # The difference of two runs cancels start-up (Python, torch import, model load, graph capture).
        dn = results["long"]["frames"] - results["short"]["frames"]
        dt = results["long"]["wall_s"] - results["short"]["wall_s"]
        results["steady_output_fps"] = round(dn / dt, 1) if dt > 0 else None
        return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--frames", type=int, default=300, help="output frames per measurement")
    ap.add_argument("--models", default="4.6,4.25,3.6")
    ap.add_argument("--no-vspipe", action="store_true")
    ap.add_argument("--vspipe-models", default=None, help="models also run through vspipe (default: all)")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True, help="kernel table (CUDA)")
    ap.add_argument("--repeats", type=int, default=1, help="CUDA: alternate run-ahead on/off this many times")
    ap.add_argument("--variants", default=",".join(k for k in _VARIANTS if k not in _OPT_IN),
                    help=f"network-alone variants on CUDA (of {', '.join(_VARIANTS)})")  # fmt: skip
    ap.add_argument("--compile", action="store_true",
                    help="also torch_compile=True: network, filter, vspipe (compile time reported apart)")  # fmt: skip
    ap.add_argument("--trt", action="store_true", help="also trt=True on the network alone (needs torch-tensorrt)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_bench.json"))
    args = ap.parse_args()
    try:
        import vsrife.filter.rife as rife_module
    except ImportError:  # no VapourSynth: the filter parts report "skipped"
        rife_module = None  # type: ignore[assignment]
    cuda = torch.cuda.is_available() and args.device != "cpu"
    results: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "size": [args.width, args.height],
        "frames": args.frames,
        "passthrough_ceiling": passthrough_ceiling(args.width, args.height, args.frames),
        "models": {},
    }
    print("passthrough", results["passthrough_ceiling"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.models.split(","):
            path = random_checkpoint(version, Path(tmp)) if version != "3.6" else load_model("3.6").paths[0]
            entry: dict[str, Any] = {"random_weights": version != "3.6"}
            try:
                runs = {}
                chosen = args.variants.split(",") if cuda else ["default"]
                if args.compile and "compiled" not in chosen:
                    chosen.append("compiled")
                if args.trt and cuda and "tensorrt" not in chosen:
                    chosen.append("tensorrt")
                variants = {k: v for k, v in _VARIANTS.items() if k in chosen}
                for mode, kwargs in variants.items():
                    torch.backends.cudnn.benchmark = mode.endswith("cudnn_benchmark")
                    engine = Interpolator(version, model_path=str(path), device=args.device, **kwargs)
                    if mode == "default":
                        entry["precision"] = str(engine.dtype)
                        entry["channels_last"] = engine.channels_last
                        entry["inference_layout"] = engine.inference_layout
                    runs[mode] = model_alone(engine, args.width, args.height, args.frames // 2)
                    del engine
                torch.backends.cudnn.benchmark = False
                if "eager_nchw" in runs:
                    for mode in ("graphs_nchw", "default", "default_official_layout", "compiled"):
                        if mode in runs:
                            diff = (runs[mode]["_first"] - runs["eager_nchw"]["_first"]).abs().max()
                            entry[f"{mode}_vs_eager_nchw_max_abs"] = float(diff)
                for fast in ("compiled", "tensorrt"):
                    if fast in runs and "default" in runs:
                        diff = (runs[fast]["_first"] - runs["default"]["_first"]).abs().max()
                        entry[f"{fast}_vs_default_max_abs"] = float(diff)
                entry["model"] = {k: {kk: vv for kk, vv in v.items() if kk != "_first"} for k, v in runs.items()}
                del runs
                if cuda and args.profile:
                    try:
                        eager = Interpolator(version, model_path=str(path), device=args.device, cuda_graphs=False)
                        entry["profile_eager_default"] = kernel_profile(eager, args.width, args.height)
                        del eager
                    except Exception as exc:  # the profiler is a diagnostic: never lose the numbers for it
                        entry["profile_eager_default"] = f"{type(exc).__name__}: {exc}"
                entry["filter"] = filter_path(path, version, args.width, args.height, args.frames, args.device)
                if args.compile:
                    entry["filter_compiled"] = filter_path(
                        path, version, args.width, args.height, args.frames, args.device, torch_compile=True
                    )
                if cuda and rife_module is not None and args.repeats > 1:
                    # Alternate with and without the run-ahead: host noise (other tenants) hits both alike.
                    pairs: dict[str, list[float]] = {"run_ahead": [], "no_run_ahead": []}
                    for _ in range(args.repeats):
                        for label, pipeline in (("run_ahead", None), ("no_run_ahead", False)):
                            rife_module._PIPELINE = pipeline
                            try:
                                fps = filter_path(path, version, args.width, args.height, args.frames, args.device)
                            finally:
                                rife_module._PIPELINE = None
                            pairs[label].append(fps["output_fps"])
                    entry["filter_alternating_output_fps"] = pairs
                if cuda and rife_module is not None:
                    # Without the run-ahead (next pair computed before this frame is written), and without
                    # the look-ahead too (source frame i + 2 staged while the GPU works).
                    for label, lookahead, pipeline in (("no_run_ahead", None, False), ("no_lookahead", False, None)):
                        rife_module._LOOKAHEAD, rife_module._PIPELINE = lookahead, pipeline
                        try:
                            entry[f"filter_{label}"] = filter_path(
                                path, version, args.width, args.height, args.frames, args.device
                            )
                        finally:
                            rife_module._LOOKAHEAD, rife_module._PIPELINE = None, None
                    if version == "4.6":
                        entry["filter_yuv420p8"] = filter_path(
                            path, version, args.width, args.height, args.frames, args.device, "YUV420P8"
                        )
                if not args.no_vspipe and (args.vspipe_models is None or version in args.vspipe_models.split(",")):
                    entry["vspipe"] = vspipe_path(path, version, args.width, args.height, args.frames, args.device)
                    if args.compile:
                        entry["vspipe_compiled"] = vspipe_path(
                            path, version, args.width, args.height, args.frames, args.device, torch_compile=True
                        )
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
            results["models"][version] = entry
            print(version, json.dumps(entry), flush=True)
            args.out.write_text(json.dumps(results, indent=2))  # partial results survive a timeout
            if cuda:
                torch.cuda.empty_cache()
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
