"""``vsrife eval VIDEO``: interpolation quality on real footage by the triplet protocol (see :mod:`vsrife.quality`).

For k = start, start+step, ... with k+2 inside the first N frames, frame k+1 is predicted from k
and k+2 at t = 1/2 by each chosen model (torch :class:`~vsrife.engine.Interpolator`) and by three
baselines (the neighbours' average, repeating frame k, MVTools FlowFPS), and compared with the
real frame k+1 (PSNR, SSIM on 8-bit RGB). Triplets whose neighbours are near-duplicates or a cut
are skipped and counted. All frames come from one BestSource clip converted to RGB24 by
VapourSynth, so every method sees (and is judged against) identical pixels; predictions are
rounded to 8 bits like a rendered video would be.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from vsrife.cli.args import add_device_options, parse_positive_int
from vsrife.cli.common import check_engine_options, check_model, info, input_file, open_source, progress_bar, warn
from vsrife.cli.errors import CliError, UsageError
from vsrife.cli.output import check_report, write_text_atomically

__all__ = ["PSNR_CAP", "add_parser", "evaluate", "run"]

PSNR_CAP = 100.0
"""PSNR of identical images (infinite) is reported as this, so the JSON stays standard."""
AVERAGE, REPEAT, MVTOOLS = "average", "repeat", "mvtools"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="quality report: predict real frames from their neighbours (PSNR/SSIM vs baselines)",
        description="Triplet protocol: predict frame k+1 from k and k+2 with each model and with baselines "
        "(average, repeat, MVTools FlowFPS), compare with the real frame. Writes an HTML report and/or JSON.",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--model", action="append", help="model version (repeatable; default 3.6)")
    p.add_argument("--start", type=int, default=0, help="first frame of the evaluated range (default 0)")
    p.add_argument("--frames", type=parse_positive_int, default=100, help="evaluate within N frames (default 100)")
    p.add_argument("--step", type=parse_positive_int, default=2, help="distance between triplets (default 2)")
    p.add_argument("--scale", type=float, default=1.0, help="flow resolution factor for the models")
    add_device_options(p, threads=True)
    p.add_argument("--no-mvtools", dest="mvtools", action="store_false", help="skip the MVTools baseline")
    p.add_argument("--out", metavar="HTML", help="write a self-contained HTML report")
    p.add_argument("--json", metavar="JSON", help="write all numbers as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


# ------------------------------------------------------------------ frames


def _rgb_clip(clip: Any) -> Any:
    """The clip as RGB24 (matrix from the props, else BT.709 for HD and BT.601 below)."""
    import vapoursynth as vs

    fmt = clip.format
    if fmt.color_family == vs.RGB:
        return clip if fmt.id == vs.RGB24 else vs.core.resize.Point(clip, format=vs.RGB24)
    if fmt.color_family == vs.GRAY:
        gray = vs.core.resize.Point(clip, format=vs.GRAY8)
        return vs.core.std.ShufflePlanes(gray, planes=[0, 0, 0], colorfamily=vs.RGB)
    matrix = clip.get_frame(0).props.get("_Matrix", 2)
    kwargs = {} if matrix not in (2, 3) else {"matrix_in": 1 if clip.height > 576 else 6}
    return vs.core.resize.Bicubic(clip, format=vs.RGB24, **kwargs)


def _tensor(frame: Any) -> Any:
    import numpy as np
    import torch

    planes = np.stack([np.asarray(frame[p]) for p in range(3)])
    return torch.from_numpy(planes).unsqueeze(0).float().div_(255.0)


def _quantize(x: Any) -> Any:
    return x.clamp(0.0, 1.0).mul(255.0).round_().div_(255.0)


def _mvtools_predictions(clip: Any, ks: list[int]) -> Any:
    """RGB24 clip whose frame j is MVTools FlowFPS' t = 1/2 frame between ``clip[ks[j]]`` and ``clip[ks[j] + 2]``.

    The pairs are spliced into one clip (k0, k0+2, k1, k1+2, ...); FlowFPS at twice the rate puts the
    midpoint of pair j at output frame 4j + 1.
    """
    import vapoursynth as vs

    core = vs.core
    pairs = core.std.Splice([f for k in ks for f in (clip[k], clip[k + 2])])
    if not pairs.fps_num:
        pairs = core.std.AssumeFPS(pairs, fpsnum=25, fpsden=1)
    blk = 16 if clip.width >= 1280 else 8
    sup = core.mv.Super(pairs, pel=2)
    bw = core.mv.Analyse(sup, isb=True, blksize=blk, overlap=blk // 2)
    fw = core.mv.Analyse(sup, isb=False, blksize=blk, overlap=blk // 2)
    flow = core.mv.FlowFPS(pairs, sup, bw, fw, num=2 * pairs.fps_num, den=pairs.fps_den)
    mids = core.std.SelectEvery(flow, cycle=4, offsets=[1])
    return _rgb_clip(mids)


# ------------------------------------------------------------------ protocol


def evaluate(
    path: Path,
    models: list[str],
    *,
    start: int = 0,
    frames: int = 100,
    step: int = 2,
    scale: float = 1.0,
    device: str = "auto",
    precision: str = "auto",
    mvtools: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the triplet protocol on ``path`` and return all numbers (the JSON report)."""
    import vapoursynth as vs

    from vsrife.engine import Interpolator
    from vsrife.quality import CUT_DB, DUPLICATE_DB, SSIM_WINDOW, psnr, ssim

    clip = open_source(path)
    if start < 0 or start >= clip.num_frames:
        raise UsageError(f"--start {start} is outside the video's {clip.num_frames} frames")
    end = min(clip.num_frames, start + frames)
    if end - start < 3:
        raise UsageError(f"the range {start}..{end - 1} has fewer than 3 frames; a triplet needs 3")
    if min(clip.width, clip.height) < SSIM_WINDOW:
        side = SSIM_WINDOW
        raise UsageError(f"{path} is {clip.width}x{clip.height}; SSIM needs frames of at least {side}x{side}")
    if mvtools and not hasattr(vs.core, "mv"):
        warn("MVTools (core.mv) is not installed; skipping its baseline (pip install vapoursynth-mvtools)")
        mvtools = False
    rgb = _rgb_clip(clip)
    ks = list(range(start, end - 2, step))
    frame_cache: dict[int, Any] = {}

    def frame(n: int) -> Any:
        if n not in frame_cache:
            frame_cache[n] = _tensor(rgb.get_frame(n))
        return frame_cache[n]

    triplets: list[dict[str, Any]] = []
    for k in ks:
        p = psnr(frame(k), frame(k + 2))
        kind = "duplicate" if p > DUPLICATE_DB else "cut" if p < CUT_DB else "ok"
        triplets.append({"k": k, "neighbours_psnr": min(p, PSNR_CAP), "kind": kind, "scores": {}})
    usable = [t for t in triplets if t["kind"] == "ok"]
    methods = [f"rife-{m}" for m in models] + [AVERAGE, REPEAT] + ([MVTOOLS] if mvtools else [])
    seconds: dict[str, float] = dict.fromkeys(methods, 0.0)

    def score(t: dict[str, Any], method: str, pred: Any) -> None:
        truth = frame(t["k"] + 1)
        pred = _quantize(pred)
        t["scores"][method] = {"psnr": min(psnr(pred, truth), PSNR_CAP), "ssim": ssim(pred, truth)}

    for t in usable:
        a, b = frame(t["k"]), frame(t["k"] + 2)
        score(t, AVERAGE, (a + b) / 2)
        score(t, REPEAT, a)
    if mvtools and usable:
        began = time.perf_counter()
        preds = _mvtools_predictions(clip, [t["k"] for t in usable])
        for j, t in enumerate(usable):
            score(t, MVTOOLS, _tensor(preds.get_frame(j)))
        seconds[MVTOOLS] = time.perf_counter() - began
    device_name = "cpu"
    bar = progress_bar(len(usable) * len(models), "evaluating", enabled=progress, unit="triplet")
    try:
        for m in models:
            try:
                engine = Interpolator(m, device=device, precision=precision, scale=scale)
            except (ValueError, RuntimeError) as exc:  # ModelLoadError, FetchError
                raise CliError(f"model {m}: {exc}") from None
            for t in usable:
                a, b = frame(t["k"]), frame(t["k"] + 2)
                began = time.perf_counter()
                pred = engine.interpolate(a.to(engine.device), b.to(engine.device), 0.5).cpu()
                seconds[f"rife-{m}"] += time.perf_counter() - began
                score(t, f"rife-{m}", pred)
                bar.update(1)
            device_name = str(engine.device)
            del engine
    finally:
        bar.close()

    means: dict[str, dict[str, float]] = {}
    for method in methods:
        vals = [t["scores"][method] for t in usable]
        means[method] = {
            "psnr": sum(v["psnr"] for v in vals) / len(vals) if vals else math.nan,
            "ssim": sum(v["ssim"] for v in vals) / len(vals) if vals else math.nan,
        }
    margins = {
        m: {"psnr": means[m]["psnr"] - means[AVERAGE]["psnr"], "ssim": means[m]["ssim"] - means[AVERAGE]["ssim"]}
        for m in methods
    }
    return {
        "video": str(path),
        "size": [clip.width, clip.height],
        "fps": f"{clip.fps_num}/{clip.fps_den}",
        "start": start,
        "end": end,
        "step": step,
        "models": models,
        "device": device_name,
        "methods": methods,
        "thresholds": {"duplicate_db": DUPLICATE_DB, "cut_db": CUT_DB, "psnr_cap": PSNR_CAP},
        "triplets": triplets,
        "evaluated": len(usable),
        "skipped": {
            "duplicate": sum(t["kind"] == "duplicate" for t in triplets),
            "cut": sum(t["kind"] == "cut" for t in triplets),
        },
        "means": means,
        "margins_over_average": margins,
        "seconds_per_frame": {m: (seconds[m] / len(usable) if usable else 0.0) for m in methods},
    }


def _summary(results: dict[str, Any]) -> str:
    lines = [
        f"{results['evaluated']} triplets evaluated; skipped: {results['skipped']['duplicate']} near-duplicate, "
        f"{results['skipped']['cut']} cut"
    ]
    lines.append(f"{'method':14} {'PSNR dB':>8} {'SSIM':>7} {'vs avg dB':>10}")
    for m in results["methods"]:
        mean, margin = results["means"][m], results["margins_over_average"][m]
        lines.append(f"{m:14} {mean['psnr']:8.2f} {mean['ssim']:7.4f} {margin['psnr']:+10.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vsrife.models import DEFAULT_MODEL

    src = input_file(args.video)
    models = [check_model(m) for m in (args.model or [DEFAULT_MODEL])]
    models = list(dict.fromkeys(models))
    check_engine_options(args.device, args.precision, args.scale, args.threads)
    for option, target in (("--out", args.out), ("--json", args.json)):
        if target is not None:
            check_report(Path(target), option, inputs=(src,))
    if args.out and args.json and Path(args.out).absolute() == Path(args.json).absolute():
        raise UsageError(f"--out and --json are the same file {args.out}; the HTML report would replace the JSON")
    results = evaluate(
        src,
        models,
        start=args.start,
        frames=args.frames,
        step=args.step,
        scale=args.scale,
        device=args.device,
        precision=args.precision,
        mvtools=args.mvtools,
        progress=args.progress,
    )
    if results["evaluated"] == 0:
        raise CliError(
            f"no usable triplets in frames {results['start']}..{results['end'] - 1} "
            f"({results['skipped']['duplicate']} near-duplicate, {results['skipped']['cut']} cut)"
        )
    print(_summary(results))
    if args.json:
        write_text_atomically(Path(args.json), json.dumps(results, indent=2, allow_nan=False) + "\n")
        info(f"wrote {args.json}")
    if args.out:
        from vsrife.cli.report import render_html

        write_text_atomically(Path(args.out), render_html(results))
        info(f"wrote {args.out}")
    return 0
