"""``vsrife bench``: throughput of the model alone and of the full VapourSynth path, with peak memory.

``model``: the torch :class:`~vsrife.engine.Interpolator` on two frames (random, or the first two of
``--input`` resized), each interpolation preparing one new source frame as the filter does.
``filter``: ``core.rife.RIFE`` at 2x on a BlankClip (or ``--input`` resized) rendered to nowhere
through ``clip.output`` (the path ``vsrife interpolate`` takes, minus encoding). One warm-up
interpolation is excluded from the timings. Memory: the process's peak RSS after each phase
(getrusage; it only grows), current RSS (psutil, if installed), and CUDA's peak allocation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import time
from pathlib import Path
from typing import Any

from vsrife.cli.args import (
    add_backend_options,
    add_device_options,
    add_model_options,
    check_backend_options,
    parse_positive_int,
)
from vsrife.cli.common import check_engine_options, check_model, input_file, open_source, progress_bar
from vsrife.cli.errors import CliError
from vsrife.cli.output import check_report, write_text_atomically

__all__ = ["add_parser", "run"]


def _plain(text: str) -> str:
    """reStructuredText of a docstring as plain text for ``--help`` (``x``, :class:`~a.B` -> x, B)."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", r"\1", text)
    return text.replace("``", "")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure interpolation speed and memory (model alone and full filter)",
        description=_plain(__doc__.split("\n\n", 1)[1]) if __doc__ else None,
    )
    add_model_options(p)
    p.add_argument("--width", type=parse_positive_int, default=1280)
    p.add_argument("--height", type=parse_positive_int, default=720)
    add_device_options(p, threads=True)
    p.add_argument("--scale", type=float, default=1.0, help="flow resolution factor")
    add_backend_options(
        p,
        "torch.compile the network (the compile is in the warm-up, reported as warmup_s)",
        "TensorRT engines (CUDA; build or cached load in the warm-up)",
    )
    p.add_argument("--frames", type=parse_positive_int, default=10, help="timed interpolations per path (default 10)")
    p.add_argument("--path", choices=("model", "filter", "both"), default="both", help="what to time (default both)")
    p.add_argument("--input", metavar="VIDEO", help="use real frames from VIDEO (resized) instead of synthetic ones")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


def _memory(device: Any) -> dict[str, float | None]:
    out: dict[str, float | None] = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        import psutil

        out["rss_mib"] = psutil.Process(os.getpid()).memory_info().rss / 2**20
    except ImportError:
        out["rss_mib"] = None
    if device is not None and device.type == "cuda":
        import torch

        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def _sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _source(args: argparse.Namespace, length: int) -> Any:
    """A clip of ``length`` frames at the benchmark size: ``--input`` resized, or a BlankClip."""
    import vapoursynth as vs

    core = vs.core
    if args.input:
        clip = open_source(input_file(args.input))
        if clip.num_frames < 2:
            raise CliError(f"{args.input} has fewer than 2 frames")
        while clip.num_frames < length:
            clip = clip + clip
        clip = clip[:length]
        fmt = clip.format
        if (args.width % (1 << fmt.subsampling_w)) or (args.height % (1 << fmt.subsampling_h)):
            clip = core.resize.Bicubic(clip, format=vs.YUV444P8 if fmt.color_family == vs.YUV else fmt.id)
        return core.resize.Bicubic(clip, width=args.width, height=args.height)
    fmt = vs.YUV420P8 if args.width % 2 == 0 and args.height % 2 == 0 else vs.YUV444P8
    return core.std.BlankClip(
        format=fmt, width=args.width, height=args.height, length=length, fpsnum=24, fpsden=1, color=[96, 128, 128]
    )


def _bench_model(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from vsrife.engine import Interpolator

    began = time.perf_counter()
    try:
        engine = Interpolator(
            args.model, model_path=args.model_path, device=args.device, precision=args.precision, scale=args.scale,
            torch_compile=args.torch_compile, trt=args.trt, trt_cache_dir=args.trt_cache_dir,
        )  # fmt: skip
    except (ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    load = time.perf_counter() - began
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(engine.device)
    if args.input:
        import numpy as np

        clip = _source(args, 2)
        import vapoursynth as vs

        rgb = (
            vs.core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="709")
            if clip.format.color_family != vs.RGB
            else clip
        )
        images = [
            torch.from_numpy(np.stack([np.asarray(f[p]) for p in range(3)])).unsqueeze(0).float() / 255
            for f in (rgb.get_frame(0), rgb.get_frame(1))
        ]
    else:
        gen = torch.Generator().manual_seed(0)
        images = [torch.rand(1, 3, args.height, args.width, generator=gen) for _ in range(2)]
    images = [im.to(engine.device) for im in images]

    def step(i: int) -> None:
        f0 = engine.prepare(images[i % 2], key=i)
        f1 = engine.prepare(images[(i + 1) % 2], key=i + 1)
        engine.interpolate_prepared(f0, f1, 0.5)

    warm = time.perf_counter()
    step(-1)  # warm-up (and the compile)
    _sync(engine.device)
    warmup = time.perf_counter() - warm
    bar = progress_bar(args.frames, "model", enabled=args.progress)
    began = time.perf_counter()
    for i in range(args.frames):
        step(i)
        _sync(engine.device)
        bar.update(1)
    elapsed = time.perf_counter() - began
    bar.close()
    return {
        "path": "model",
        "model": engine.name,
        "device": str(engine.device),
        "dtype": str(engine.dtype).split(".")[-1],
        "load_s": load,
        "warmup_s": warmup,
        "torch_compile": engine.torch_compile,
        "tensorrt": engine.tensorrt,
        "winograd": engine.winograd,
        "interpolations": args.frames,
        "seconds": elapsed,
        "fps": args.frames / elapsed,
        **_memory(engine.device),
    }


def _model_label(args: argparse.Namespace) -> str:
    """The version the filter ran: ``--model``, else the one ``--model-path``'s layout names, else the default."""
    from vsrife.models import DEFAULT_MODEL, ModelLoadError, infer_model, read_state_dict
    from vsrife.models.loading import resolve_files

    if args.model or not args.model_path:
        return str(args.model or DEFAULT_MODEL)
    paths = resolve_files(args.model_path)
    read = {name: read_state_dict(path) for name, path in paths.items()}
    meta = read["flownet.pkl"][1]
    if "spec" in meta:  # a vsrife-trained network
        return str(meta.get("name", "custom"))
    try:
        states = {name: state for name, (state, _) in read.items()}
        return infer_model(states, str(args.model_path), paths["flownet.pkl"].name)[0].name
    except ModelLoadError:
        return Path(args.model_path).name


def _bench_filter(args: argparse.Namespace) -> dict[str, Any]:
    import vapoursynth as vs

    from vsrife.engine import resolve_device

    clip = _source(args, args.frames + 2)
    kwargs: dict[str, Any] = {
        "device": args.device,
        "precision": args.precision,
        "scale": args.scale,
        "threads": args.threads,
        "torch_compile": int(args.torch_compile),
        "trt": int(args.trt),
    }
    if args.trt_cache_dir:
        kwargs["trt_cache_dir"] = args.trt_cache_dir
    if args.model:
        kwargs["model"] = args.model
    if args.model_path:
        kwargs["model_path"] = args.model_path
    began = time.perf_counter()
    try:
        rife = vs.core.rife.RIFE(clip, **kwargs)
        rife.get_frame(1)  # warm-up: model loaded, first interpolation done
    except vs.Error as exc:
        raise CliError(str(exc)) from None
    load = time.perf_counter() - began
    device = resolve_device(args.device)
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    timed = rife[2 : 2 + 2 * args.frames]  # output frames 2..: `frames` interpolations and `frames` copies
    bar = progress_bar(timed.num_frames, "filter", enabled=args.progress)
    began = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        try:
            timed.output(sink, progress_update=lambda done, _total: bar.update(done - bar.n))
        except vs.Error as exc:
            raise CliError(f"rendering failed: {exc}") from None
    elapsed = time.perf_counter() - began
    bar.close()
    return {
        "path": "filter",
        "model": _model_label(args),
        "device": str(device),
        "load_s": load,
        "interpolations": args.frames,
        "output_frames": timed.num_frames,
        "seconds": elapsed,
        "fps": args.frames / elapsed,
        "output_fps": timed.num_frames / elapsed,
        "source": args.input or "BlankClip",
        **_memory(device),
    }


def run(args: argparse.Namespace) -> int:
    check_backend_options(args)
    if args.model is not None:
        args.model = check_model(args.model)
    check_engine_options(args.device, args.precision, args.scale, args.threads)
    inputs = (input_file(args.input),) if args.input else ()
    if args.json:
        check_report(Path(args.json), "--json", inputs=inputs)
    results = []
    if args.path in ("model", "both"):
        results.append(_bench_model(args))
    if args.path in ("filter", "both"):
        results.append(_bench_filter(args))
    print(f"{args.width}x{args.height}, {args.frames} interpolations per path")
    for r in results:
        extra = f", {r['output_fps']:.2f} output fps" if "output_fps" in r else ""
        if "warmup_s" in r:
            extra += f"; warm-up {r['warmup_s']:.1f} s"
        mem = f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        if r.get("cuda_peak_mib") is not None:
            mem += f", CUDA peak {r['cuda_peak_mib']:.0f} MiB"
        print(
            f"{r['path']:7} {r['model']:8} {r['device']:7} {r['fps']:8.2f} interpolations/s "
            f"({1000 / r['fps']:.1f} ms each){extra}; load {r['load_s']:.1f} s; {mem}"
        )
    if args.json:
        write_text_atomically(
            Path(args.json),
            json.dumps({"width": args.width, "height": args.height, "results": results}, indent=2) + "\n",
        )
    return 0
